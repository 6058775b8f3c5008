"""impl_flax.sharding: partition rules (pure, in this process) and sharded runs on 8 CPU devices.

jax sees 8 devices only with XLA_FLAGS=--xla_force_host_platform_device_count=8 set before it is
imported, so the mesh checks run once in a subprocess (``CHECKS_SCRIPT``) that asserts inside and
writes one verdict per check ("ok" or the failure) to a JSON file; each test below reads its verdicts.
Tiny config: vocab 50, hidden 16, 2 heads, 2 layers, intermediate 32, embedding 8.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import optax
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import impl_flax
from impl_flax import ElectraConfig
from impl_flax.sharding import (LAYOUTS, make_mesh, partition_spec, shard_params, sharded_train_step,
                                sharded_value_and_grad)
from spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(vocab_size=50, hidden_size=16, num_attention_heads=2, num_hidden_layers=2, intermediate_size=32,
            embedding_size=8, max_position_embeddings=16)
FLAX_CLASSES = tuple(c.name for c in load_spec().classes_for("flax"))
MESHES = {"data": (8, 1), "tensor": (2, 4), "fsdp": (8, 1)}
MESH_CLASSES = ("FlaxElectraModel", "FlaxElectraForMaskedLM")
LOSS_CLASS = "FlaxElectraForMaskedLM"


# -- partition rules: pure -------------------------------------------------------------------------
L0 = "electra.encoder.layer.0."
RULE_CASES = [  # (name, shape, layout, axis sizes, expected spec)
    (L0 + "attention.self.query.kernel", (16, 16), "tensor", {"data": 2, "model": 4}, P(None, "model")),
    (L0 + "attention.self.value.bias", (16,), "tensor", {"data": 2, "model": 4}, P("model")),
    (L0 + "attention.output.dense.kernel", (16, 16), "tensor", {"data": 2, "model": 4}, P("model", None)),
    (L0 + "attention.output.dense.bias", (16,), "tensor", {"data": 2, "model": 4}, P()),
    (L0 + "intermediate.dense.kernel", (16, 32), "tensor", {"data": 2, "model": 4}, P(None, "model")),
    (L0 + "intermediate.dense.bias", (32,), "tensor", {"data": 2, "model": 4}, P("model")),
    (L0 + "output.dense.kernel", (32, 16), "tensor", {"data": 2, "model": 4}, P("model", None)),
    (L0 + "output.dense.bias", (16,), "tensor", {"data": 2, "model": 4}, P()),
    (L0 + "output.LayerNorm.scale", (16,), "tensor", {"data": 2, "model": 4}, P()),
    (L0 + "crossattention.self.key.kernel", (16, 16), "tensor", {"data": 1, "model": 2}, P(None, "model")),
    (L0 + "crossattention.output.dense.kernel", (16, 16), "tensor", {"data": 1, "model": 2}, P("model", None)),
    ("encoder.layer.1.attention.self.query.kernel", (16, 16), "tensor", {"model": 2}, P(None, "model")),  # no prefix
    ("electra.embeddings.word_embeddings.embedding", (50, 8), "tensor", {"model": 2}, P("model", None)),
    ("electra.embeddings.word_embeddings.embedding", (50, 8), "tensor", {"model": 4}, P()),  # 50 % 4: fallback
    ("generator_lm_head.bias", (50,), "tensor", {"model": 2}, P("model")),
    ("generator_lm_head.bias", (50,), "tensor", {"model": 4}, P()),
    ("generator_lm_head.kernel", (8, 50), "tensor", {"model": 2}, P(None, "model")),
    ("electra.embeddings.position_embeddings.embedding", (16, 8), "tensor", {"model": 2}, P()),
    ("electra.embeddings_project.kernel", (8, 16), "tensor", {"model": 2}, P()),
    ("classifier.dense.kernel", (16, 16), "tensor", {"model": 2}, P()),
    (L0 + "intermediate.dense.kernel", (16, 30), "tensor", {"model": 4}, P()),  # I = 30: fallback
    (L0 + "attention.self.query.kernel", (16, 16), "tensor", None, P(None, "model")),  # no sizes: the table
    # canonical PyTorch names, PT (out, in) layout
    (L0 + "attention.self.query.weight", (16, 16), "tensor", {"model": 4}, P("model", None)),
    (L0 + "output.dense.weight", (16, 32), "tensor", {"model": 4}, P(None, "model")),
    ("electra.embeddings.word_embeddings.weight", (50, 8), "tensor", {"model": 2}, P("model", None)),
    (L0 + "output.LayerNorm.weight", (16,), "tensor", {"model": 2}, P()),
    # data: everything replicated
    (L0 + "attention.self.query.kernel", (16, 16), "data", {"data": 8, "model": 1}, P()),
    ("electra.embeddings.word_embeddings.embedding", (50, 8), "data", {"data": 2}, P()),
    # fsdp: first axis the data size divides, else replicated
    (L0 + "attention.self.query.kernel", (16, 16), "fsdp", {"data": 8}, P("data", None)),
    ("electra.embeddings.word_embeddings.embedding", (50, 8), "fsdp", {"data": 8}, P(None, "data")),
    ("electra.embeddings.token_type_embeddings.embedding", (2, 8), "fsdp", {"data": 8}, P(None, "data")),
    ("generator_lm_head.bias", (50,), "fsdp", {"data": 8}, P()),
    ("classifier.out_proj.kernel", (16, 3), "fsdp", {"data": 8}, P("data", None)),
    ("classifier.out_proj.bias", (3,), "fsdp", {"data": 2}, P()),
    ("classifier.out_proj.bias", (3,), "fsdp", {"data": 1}, P("data")),
    ("some.scalar", (), "fsdp", {"data": 8}, P()),
]


@pytest.mark.parametrize("name,shape,layout,sizes,expected", RULE_CASES,
                         ids=[f"{c[2]}-{c[0].replace(L0, '')}-{c[1]}-{c[3]}" for c in RULE_CASES])
def test_partition_rule(name, shape, layout, sizes, expected):
    actual = partition_spec(name, shape, layout, axis_sizes=sizes)
    assert actual == expected, f"{layout} {name} {shape} on {sizes}: expected {expected}, got {actual}"


WIDE = dict(TINY, add_cross_attention=True, is_decoder=True, position_embedding_type="relative_key",
            tie_word_embeddings=False, summary_use_proj=True)
TENSOR_SPLIT = ("self.query.", "self.key.", "self.value.", "intermediate.dense.", "output.dense.kernel",
                "word_embeddings", "generator_lm_head")


@pytest.mark.parametrize("class_name", FLAX_CLASSES)
def test_every_parameter_of_every_class_gets_a_dividing_spec(class_name):
    """Every leaf of every class (cross-attention, relative positions and an untied LM head included) gets
    a spec of at most its rank whose splits divide, in every layout; tensor splits exactly the rule names."""
    extra = dict(num_labels=2) if class_name == "FlaxElectraForQuestionAnswering" else {}
    model = getattr(impl_flax, class_name)(ElectraConfig(**WIDE, **extra), _do_init=False)
    leaves = jax.tree_util.tree_leaves_with_path(model.params_shape_tree)
    for sizes in ({"data": 8, "model": 1}, {"data": 2, "model": 4}, {"data": 4, "model": 2}):
        for layout in LAYOUTS:
            for path, leaf in leaves:
                name = jax.tree_util.keystr(path, simple=True, separator=".")
                spec = partition_spec(name, leaf.shape, layout, axis_sizes=sizes)
                assert len(spec) <= len(leaf.shape), f"{name} {leaf.shape}: spec {spec} longer than the rank"
                for axis, dim in zip(spec, leaf.shape):
                    assert axis is None or dim % sizes[axis] == 0, \
                        f"{layout} {name} {leaf.shape} on {sizes}: {spec} splits {dim} over {axis}={sizes[axis]}"
                if layout == "data":
                    assert spec == P(), f"data layout: {name} should be replicated, got {spec}"
                if layout == "tensor" and sizes["model"] == 2:  # every dim of a split rule is even here
                    split = any(part in name for part in TENSOR_SPLIT) and not name.endswith("output.dense.bias")
                    assert (spec != P()) == split, f"tensor layout: {name} {leaf.shape} got {spec}"


def test_bad_layout_is_refused():
    with pytest.raises(ValueError, match="layout must be one of .*'pipeline'"):
        partition_spec("electra.embeddings.word_embeddings.embedding", (50, 8), "pipeline")


def test_misuse_is_refused_by_name():
    """On a 1 x 1 mesh of this process: a class without a loss, a batch without labels, a tensor layout on
    a mesh without a "model" axis."""
    mesh = make_mesh(jax.devices()[:1], 1, 1)
    config = ElectraConfig(**TINY)
    with pytest.raises(ValueError, match="FlaxElectraModel computes no loss"):
        sharded_train_step(impl_flax.FlaxElectraModel(config, _do_init=False), optax.adam(1e-3), mesh, "data")
    mlm = impl_flax.FlaxElectraForMaskedLM(config, _do_init=False)
    with pytest.raises(ValueError, match=r"missing \['labels'\], unknown \['label'\]"):
        sharded_value_and_grad(mlm, mesh, "data")({}, {"input_ids": np.ones((2, 3), int), "label": 0})
    axes = r"layout 'tensor' needs mesh axes \('data', 'model'\), the mesh has \('data',\)"
    with pytest.raises(ValueError, match=axes):
        shard_params({"w": np.ones(2)}, Mesh(np.asarray(jax.devices()[:1]), ("data",)), "tensor")
    with pytest.raises(ValueError, match="needs 9 devices, got 1"):
        make_mesh(jax.devices()[:1], 3, 3)


# -- sharded runs on 8 CPU devices: subprocess -----------------------------------------------------
CHECKS_SCRIPT = textwrap.dedent('''
    import json, sys, tempfile, time, traceback
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import PartitionSpec as P
    import impl_flax
    from impl_flax import ElectraConfig, losses
    from impl_flax import sharding as shd

    TINY, MESHES, MESH_CLASSES, LOSS_CLASS = json.loads(sys.argv[2])
    ATOL = 1e-5
    results, timings, started = {}, {}, time.time()
    assert len(jax.devices()) == 8, f"expected 8 CPU devices, got {jax.devices()}"


    def run(check, fn):
        """Record "ok" or the failure of one check."""
        t = time.time()
        try:
            fn()
            results[check] = "ok"
            timings[check] = round(time.time() - t, 2)
        except Exception:
            results[check] = "FAIL: " + traceback.format_exc(limit=3)


    def leaves(tree):
        return {jax.tree_util.keystr(p, simple=True, separator="."): x
                for p, x in jax.tree_util.tree_leaves_with_path(tree)}


    def assert_same(actual, expected, what):
        """The one comparison of every check: same tree, same shapes, |actual - expected| <= ATOL."""
        a, e = leaves(actual), leaves(expected)
        assert a.keys() == e.keys(), f"{what}: fields {sorted(a)} != {sorted(e)}"
        for key in e:
            x, y = np.asarray(a[key], np.float64), np.asarray(e[key], np.float64)
            assert x.shape == y.shape, f"{what}.{key}: shape {x.shape}, expected {y.shape}"
            err = float(np.max(np.abs(x - y))) if x.size else 0.0
            assert err <= ATOL, f"{what}.{key}: max |sharded - single device| = {err:.3g} > atol {ATOL}"


    def assert_replicated(tree, what):
        for key, x in leaves(tree).items():
            assert x.sharding.is_fully_replicated, f"{what}.{key} is not gathered: {x.sharding}"


    rng = np.random.default_rng(0)
    B, S = 8, 6
    ids = rng.integers(1, TINY["vocab_size"], (B, S))
    mask = np.ones((B, S), np.int32)
    mask[5:, 4:] = 0                                   # padded tails
    types = rng.integers(0, 2, (B, S))
    labels = rng.integers(0, TINY["vocab_size"], (B, S))
    for row in range(B):                               # row r counts r % 5 + 1 tokens: uneven per shard
        labels[row, row % 5 + 1:] = -100
    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    batch = dict(inputs, labels=labels)
    dropout = jax.random.PRNGKey(7)
    models = {name: getattr(impl_flax, name)(ElectraConfig(**TINY)) for name in MESH_CLASSES}
    meshes = {layout: shd.make_mesh(jax.devices(), *shape) for layout, shape in MESHES.items()}


    def expected_specs(layout, prefix):
        """Hand-written spec and per-device shard shape of a few leaves (the module docstring's table)."""
        layer = prefix + "encoder.layer.0."
        if layout == "data":
            return {layer + "attention.self.query.kernel": (P(), (16, 16)),
                    prefix + "embeddings.word_embeddings.embedding": (P(), (50, 8))}
        if layout == "tensor":  # model axis 4: 50 % 4 != 0 keeps the vocab replicated
            return {layer + "attention.self.query.kernel": (P(None, "model"), (16, 4)),
                    layer + "attention.self.key.bias": (P("model"), (4,)),
                    layer + "attention.output.dense.kernel": (P("model", None), (4, 16)),
                    layer + "attention.output.dense.bias": (P(), (16,)),
                    layer + "intermediate.dense.kernel": (P(None, "model"), (16, 8)),
                    layer + "intermediate.dense.bias": (P("model"), (8,)),
                    layer + "output.dense.kernel": (P("model", None), (8, 16)),
                    layer + "output.LayerNorm.scale": (P(), (16,)),
                    prefix + "embeddings.word_embeddings.embedding": (P(), (50, 8))}
        return {layer + "attention.self.query.kernel": (P("data", None), (2, 16)),   # fsdp, data axis 8
                layer + "intermediate.dense.bias": (P("data"), (4,)),
                prefix + "embeddings.word_embeddings.embedding": (P(None, "data"), (50, 1)),
                prefix + "embeddings.token_type_embeddings.embedding": (P(None, "data"), (2, 1)),
                prefix + "embeddings.LayerNorm.scale": (P("data"), (1,))}


    def check_placement(params, layout, prefix, what):
        flat = leaves(params)
        for key, (spec, shard) in expected_specs(layout, prefix).items():
            x = flat[key]
            assert x.sharding.spec == spec, f"{what} {key}: spec {x.sharding.spec}, expected {spec}"
            shapes = {tuple(s.data.shape) for s in x.addressable_shards}
            assert shapes == {shard}, f"{what} {key}: device shards {shapes}, expected {shard}"


    for name, model in models.items():
        prefix = "" if name == "FlaxElectraModel" else "electra."
        single = model(**inputs, output_hidden_states=True, output_attentions=True)
        for layout, mesh in meshes.items():
            tag = f"{name}-{layout}"
            sharded_params = shd.shard_params(model.params, mesh, layout)
            run(f"placement[{tag}]", lambda: check_placement(sharded_params, layout, prefix, tag))
            apply = shd.sharded_apply(model, mesh, layout, output_hidden_states=True, output_attentions=True)

            def outputs():
                out = apply(sharded_params, **inputs)
                assert_replicated(out, tag)
                assert_same(out, single, tag)
            run(f"outputs[{tag}]", outputs)

            def save_load():
                with tempfile.TemporaryDirectory() as folder:
                    model.save_pretrained(folder, params=sharded_params)  # gathers every shard
                    loaded = type(model).from_pretrained(folder)
                for key, x in leaves(loaded.params).items():
                    assert len(x.devices()) == 1, f"loaded {key} lies on {x.devices()}"
                assert_same(loaded.params, model.params, f"{tag} loaded params")
                assert_same(loaded(**inputs, output_hidden_states=True, output_attentions=True),
                            apply(sharded_params, **inputs), f"{tag} reloaded vs sharded outputs")
            run(f"save_load[{tag}]", save_load)

    model = models[LOSS_CLASS]


    def reference_loss(params, batch, rng):
        """The single-device loss; rng None: no dropout."""
        out = model(**inputs, params=params, dropout_rng=rng, train=rng is not None)
        return losses.masked_lm(out.logits, batch["labels"])


    single_grad = jax.jit(jax.value_and_grad(reference_loss))
    optimizer = optax.adam(1e-3)


    @jax.jit
    def single_step(params, opt_state, batch, rng):
        loss, grads = jax.value_and_grad(reference_loss)(params, batch, rng)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss


    ref_loss, ref_grads = single_grad(model.params, batch, None)  # gradients without, the step with dropout
    ref_params, _, ref_step_loss = single_step(model.params, optimizer.init(model.params), batch, dropout)
    for layout, mesh in meshes.items():
        tag = f"{LOSS_CLASS}-{layout}"
        sharded_params = shd.shard_params(model.params, mesh, layout)

        def grads():
            loss, g = shd.sharded_value_and_grad(model, mesh, layout)(sharded_params, batch)
            assert_same({"loss": loss}, {"loss": ref_loss}, f"{tag} loss")
            assert_same(g, ref_grads, f"{tag} grads")
            check_placement(g, layout, "electra.", f"{tag} grads")
        run(f"grads[{tag}]", grads)

        def train_step():
            step = shd.sharded_train_step(model, optimizer, mesh, layout)
            # the state of single-device params: the step moves it into the layout
            params, opt_state, loss = step(sharded_params, optimizer.init(model.params), batch, dropout)
            assert_same({"loss": loss}, {"loss": ref_step_loss}, f"{tag} loss")
            assert_same(params, ref_params, f"{tag} params after one adam step")
            check_placement(params, layout, "electra.", f"{tag} updated params")
            check_placement(opt_state[0].mu, layout, "electra.", f"{tag} adam mu")
            params, opt_state, _ = step(params, opt_state, batch, dropout)  # the outputs feed the next step
            check_placement(opt_state[0].nu, layout, "electra.", f"{tag} adam nu after two steps")
        run(f"train_step[{tag}]", train_step)


    def batch_not_divisible():
        mesh = meshes["data"]
        six = {k: v[:6] for k, v in batch.items()}
        calls = {"sharded_apply": lambda: shd.sharded_apply(models["FlaxElectraModel"], mesh, "data")(
                     models["FlaxElectraModel"].params, **{k: six[k] for k in inputs}),
                 "sharded_train_step": lambda: shd.sharded_train_step(model, optimizer, mesh, "data")(
                     model.params, optimizer.init(model.params), six, dropout),
                 "sharded_value_and_grad": lambda: shd.sharded_value_and_grad(model, mesh, "data")(
                     model.params, six)}
        for what, call in calls.items():
            try:
                call()
            except ValueError as e:
                assert "batch size 6" in str(e) and "axis size 8" in str(e), f"{what}: message {e}"
            else:
                raise AssertionError(f"{what} accepted a batch of 6 on a data axis of 8")
    run("batch_not_divisible", batch_not_divisible)


    def make_mesh_mismatch():
        try:
            shd.make_mesh(jax.devices(), 3, 3)
        except ValueError as e:
            assert "needs 9 devices" in str(e) and "got 8" in str(e), f"message {e}"
        else:
            raise AssertionError("make_mesh(8 devices, 3, 3) was accepted")
    run("make_mesh_mismatch", make_mesh_mismatch)


    def planted_local_loss_is_flagged():
        """A real sharding bug: each data shard averages the loss over its own counted tokens and the shard
        means are averaged (pmean), instead of one mean over all counted tokens. assert_same must flag it."""
        mesh = meshes["data"]

        def local(params, ids, mask, types, labels):
            out = model(ids, mask, types, params=params)
            return jax.lax.pmean(losses.masked_lm(out.logits, labels), "data")
        planted = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P("data"), P("data"), P("data"), P("data")),
                                        out_specs=P()))
        bad = planted(shd.shard_params(model.params, mesh, "data"), ids, mask, types, labels)
        try:
            assert_same({"loss": bad}, {"loss": ref_loss}, "planted local-mean loss")
        except AssertionError as e:
            assert "max |sharded - single device|" in str(e), f"flagged for another reason: {e}"
        else:
            raise AssertionError(f"the planted bug went unnoticed: {float(bad)} vs {float(ref_loss)}")
    run("planted_local_loss_is_flagged", planted_local_loss_is_flagged)

    results["seconds"] = round(time.time() - started, 1)
    results["slowest"] = sorted(timings.items(), key=lambda item: -item[1])[:3]
    with open(sys.argv[1], "w") as f:
        json.dump(results, f, indent=1)
''')


def _check_names() -> list[str]:
    names = [f"{kind}[{c}-{layout}]" for c in MESH_CLASSES for layout in MESHES
             for kind in ("placement", "outputs", "save_load")]
    names += [f"{kind}[{LOSS_CLASS}-{layout}]" for layout in MESHES for kind in ("grads", "train_step")]
    return names + ["batch_not_divisible", "make_mesh_mismatch", "planted_local_loss_is_flagged"]


@pytest.fixture(scope="module")
def mesh_results(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sharding")
    script, out = folder / "checks.py", folder / "results.json"
    script.write_text(CHECKS_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "--xla_backend_optimization_level=0")
                          + " --xla_force_host_platform_device_count=8"))
    started = time.time()
    done = subprocess.run([sys.executable, str(script), str(out), json.dumps([TINY, MESHES, MESH_CLASSES, LOSS_CLASS])],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and out.exists(), \
        f"the 8-device check script failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
    results = json.loads(out.read_text())
    print(f"8-device checks: {results.pop('seconds')} s inside, {time.time() - started:.1f} s with start-up; "
          f"slowest {results.pop('slowest')}")
    return results


@pytest.mark.slow  # one subprocess with 8 devices, about 55 s of CPU; the conformance distribution family checks the same
@pytest.mark.parametrize("check", _check_names())
def test_on_eight_devices(mesh_results, check):
    assert check in mesh_results, f"check {check} did not run; ran {sorted(mesh_results)}"
    assert mesh_results[check] == "ok", f"{check}: {mesh_results[check]}"
