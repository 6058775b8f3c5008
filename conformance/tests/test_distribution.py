"""Distribution (spec/data/distribution.yaml): a model split over a device mesh gives what it gives on one
device: outputs, losses, gradients, an optimizer step, its checkpoint; tensor parallelism divides exactly the
parameters params.yaml marks with ``split``.

Runs for each mesh of ``--devices`` (cpu:8, gpu:2, ...) and each layout the implementation declares
(Capabilities.layouts), on one small config with drawn weights: tensor parallelism uses a model axis of 2
(the config's 2 heads and its feed-forward width divide it), data and fsdp put every device on the data
axis. Each test compares the split run with the same model on one device (tolerance kind distribution).

Shape keys: B batch (one example per data shard, plus uneven ignored labels), S sequence, C choices.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import devices as _devices
from conformance.adapters.base import MeshSpec, MeshUnavailable
from conformance.tests._helpers import compare_outputs, drawn_weights
from conformance.tests._params import expected_params
from spec import load_spec

pytestmark = pytest.mark.family("distribution")

KIND = "distribution"
IGNORE = load_spec().losses.ignore_index
#: small enough to compile in seconds, large enough that every split divides: 2 heads of 8, width 32; no
#: dropout, so that a training step (which runs in training mode) is the same computation on every mesh
CONFIG = {"vocab_size": 64, "embedding_size": 8, "hidden_size": 16, "num_hidden_layers": 2,
          "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 24, "type_vocab_size": 2,
          "num_labels": 3, "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
SEQUENCE, CHOICES, TENSOR_MODEL_AXIS = 6, 2, 2
#: what each test runs: a class with tied LM weights and a loss over tokens, a class with (B, C, S)
#: inputs and a summary, the bare encoder
OUTPUT_CLASSES = ("ElectraForMaskedLM", "ElectraForMultipleChoice")
LOSS_CLASS = "ElectraForMaskedLM"
#: the optimizer steps' learning rate; the own loss of distribution.own_losses is PENALTY * sum(w**2) over the
#: word-embedding table (its step moves that table by LEARNING_RATE * 2 * PENALTY * w, about 5% of w)
LEARNING_RATE, PENALTY = 0.5, 0.05
WORD_EMBEDDINGS = "electra.embeddings.word_embeddings.weight"


def pytest_generate_tests(metafunc):
    """mesh x layout: the meshes of --devices, each with the layouts the spec defines (a layout the
    implementation does not declare is skipped as unsupported)."""
    if "mesh" not in metafunc.fixturenames:
        return
    requested = _devices.parse_devices(metafunc.config.getoption("devices"))
    layouts = tuple(load_spec().sections["distribution"].layouts)
    rows = [(MeshSpec(platform, n, *_axes(n, layout)), layout) for platform, n in _devices.meshes(requested)
            for layout in layouts]
    ids = [f"{mesh.id}-{layout}" for mesh, layout in rows]
    if not rows:  # no mesh requested: one skipped row per test says how to ask for one
        rows, ids = [(None, None)], ["no-mesh"]
    metafunc.parametrize("mesh,layout", rows, ids=ids)


def _axes(devices: int, layout: str) -> tuple[int, int]:
    """(data, model) axis sizes of a mesh of ``devices`` for ``layout``."""
    if layout == "tensor" and devices % TENSOR_MODEL_AXIS == 0:
        return devices // TENSOR_MODEL_AXIS, TENSOR_MODEL_AXIS
    return devices, 1


@pytest.fixture
def split(request, adapter, caps, mesh, layout):
    """Calls an adapter distribution method; skips when no mesh was requested, the layout is not declared or
    the process lacks the devices (fails instead under --require-devices)."""
    if mesh is None:
        pytest.skip("distribution family: no device mesh requested (--devices cpu:8, gpu:2, ...)")
    caps.skip_unless(f"layout:{layout}", "method:run_distributed")

    def call(method: str, *args):
        caps.skip_unless(f"method:{method}")
        try:
            return getattr(adapter, method)(*args)
        except MeshUnavailable as err:
            if request.config.getoption("require_devices"):
                pytest.fail(f"{err} (--require-devices)", pytrace=False)
            pytest.skip(str(err))

    return call


def _clause(name: str):
    return next(c for c in load_spec().sections["distribution"].clauses if c.id == f"distribution.{name}")


def _class(adapter, base: str) -> str:
    return ("TF" if adapter.framework == "tf" else "Flax") + base


def _model(model_cache, adapter, caps, base: str):
    """The class built from CONFIG with weights drawn at scale 0.5 (seed fixed per class)."""
    class_name = _class(adapter, base)
    caps.skip_unless(f"class:{class_name}")
    handle = model_cache.get(class_name, CONFIG)
    weights = drawn_weights(adapter.get_weights(handle), scale=0.5, seed=len(class_name))
    return model_cache.get(class_name, CONFIG, weights=weights)


def _inputs(class_name: str, batch: int, *, labels: bool = False, ignored: bool = True) -> dict[str, np.ndarray]:
    """(B, S) ids and a padding mask ((B, C, S) for multiple choice); masked-LM labels with ignored
    positions spread unevenly over the batch: example b keeps b % S + 1 of its S labels (``ignored`` False:
    every label counted)."""
    rng = np.random.default_rng(batch)
    shape = (batch, CHOICES, SEQUENCE) if "MultipleChoice" in class_name else (batch, SEQUENCE)
    ids = rng.integers(0, CONFIG["vocab_size"], shape).astype(np.int32)
    mask = np.ones(shape, np.int32)
    mask[..., -1] = 0  # the last position of every row is padding
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": (rng.random(shape) < 0.5).astype(np.int32)}
    if labels:
        keep = np.arange(SEQUENCE)[None, :] <= (np.arange(batch) % SEQUENCE)[:, None] if ignored else True
        inputs["labels"] = np.where(keep, ids, IGNORE).astype(np.int32)
    return inputs


def _batch(mesh: MeshSpec) -> int:
    return 2 * mesh.data  # two examples per data shard


@pytest.mark.parametrize("base", OUTPUT_CLASSES)
def test_outputs_equal_one_device(check, adapter, caps, model_cache, mesh, layout, split, base):
    handle = _model(model_cache, adapter, caps, base)
    inputs = _inputs(handle.class_name, _batch(mesh))
    check.clause("distribution.outputs")
    # JAX's split run is one jitted program: compare it with the jitted program on one device, so that the
    # difference measured is the split's, not XLA's fusion against op-by-op eager (the compiled.* clauses'
    # concern; 8e-5 on transformers' Flax classes here). TF's split run (predict: a graph without XLA) runs
    # the eager kernels.
    one = model_cache.run(handle, inputs, flags={}, compiled=adapter.framework == "flax")
    compare_outputs(check, split("run_distributed", handle, inputs, mesh, layout), one, handle.class_name,
                    clause="distribution.outputs", kind=KIND)


def test_loss_and_gradients_equal_one_device(check, adapter, caps, model_cache, mesh, layout, split):
    """The loss is the mean over the whole batch's non-ignored labels although the data shards hold
    different numbers of them; every gradient is reduced over the whole batch."""
    handle = _model(model_cache, adapter, caps, LOSS_CLASS)
    inputs = _inputs(handle.class_name, _batch(mesh), labels=True)
    caps.skip_unless("method:loss_gradients")
    loss, grads = adapter.loss_gradients(handle, inputs)
    got_loss, got_grads = split("distributed_loss_gradients", handle, inputs, mesh, layout)
    check.allclose(got_loss, loss, clause="distribution.loss", kind=KIND, field="loss")
    check.that(set(got_grads) == set(grads), clause="distribution.gradients",
               message=f"gradient names differ: {sorted(set(got_grads) ^ set(grads))[:5]}")
    for name in sorted(set(got_grads) & set(grads)):
        check.allclose(got_grads[name], grads[name], clause="distribution.gradients", kind=KIND)


def test_sgd_step_equals_one_device(check, adapter, caps, model_cache, mesh, layout, split):
    handle = _model(model_cache, adapter, caps, LOSS_CLASS)
    inputs = _inputs(handle.class_name, _batch(mesh), labels=True)
    before = adapter.get_weights(handle)
    got = split("sgd_step", handle, inputs, mesh, layout, LEARNING_RATE)
    want = adapter.sgd_step(handle, inputs, None, layout, LEARNING_RATE)
    check.that(any(not np.allclose(want[n], before[n]) for n in want), clause="distribution.optimizer_step",
               message="the one-device step changed no parameter: the comparison would show nothing")
    for name in sorted(want):
        check.allclose(got[name], want[name], clause="distribution.optimizer_step", kind=KIND)
    after = adapter.get_weights(handle)
    check.that(all(np.array_equal(after[n], before[n]) for n in before), clause="distribution.optimizer_step",
               message="sgd_step changed the handle's own weights")


def test_own_losses_count_once(check, adapter, caps, model_cache, mesh, layout, split):
    """A loss the model carries itself (an L2 penalty c * sum(w**2) on the word-embedding table w) is added
    once by a training step, on one device and split over the replicas. SGD is linear in the gradient, so the
    penalised step is the plain one-device step with lr * 2c * w taken off that table: the expectation needs
    no second implementation. Every label is counted: the replicas' equal shares of the class's loss keep
    this case apart from distribution.loss (uneven ignored labels), a deviation of its own."""
    binds = _clause("own_losses").frameworks
    if adapter.framework not in binds:
        pytest.skip(f"distribution.own_losses binds {', '.join(binds)}, not {adapter.framework}")
    handle = _model(model_cache, adapter, caps, LOSS_CLASS)
    inputs = _inputs(handle.class_name, _batch(mesh), labels=True, ignored=False)
    before = adapter.get_weights(handle)
    want = adapter.sgd_step(handle, inputs, None, layout, LEARNING_RATE)
    want[WORD_EMBEDDINGS] = want[WORD_EMBEDDINGS] - LEARNING_RATE * 2 * PENALTY * before[WORD_EMBEDDINGS]
    for where, mesh_or_none in (("one device", None), (mesh.id, mesh)):
        got = split("sgd_step_penalized", handle, inputs, mesh_or_none, layout, LEARNING_RATE, PENALTY)
        check.that(set(got) == set(want), clause="distribution.own_losses",
                   message=f"{where}: parameter names differ: {sorted(set(got) ^ set(want))[:5]}")
        for name in sorted(set(got) & set(want)):
            check.allclose(got[name], want[name], clause="distribution.own_losses", kind=KIND,
                           what=f"{name} ({where})")


def test_parameter_layout_follows_the_spec(check, adapter, caps, model_cache, mesh, layout, split):
    """tensor: a parameter with a params.yaml ``split`` is divided along that dimension when the model axis
    divides it, every other one is whole; fsdp: a parameter is whole only where no dimension divides."""
    handle = _model(model_cache, adapter, caps, LOSS_CLASS)
    placed = split("parameter_layout", handle, mesh, layout)
    weights = adapter.get_weights(handle)
    check.clause("distribution.parameter_layout")
    splits = {name: p.split for name, p in expected_params(handle.class_name, handle.config).items()}
    for name, shape in sorted((n, np.shape(w)) for n, w in weights.items()):
        got = placed.get(name, "missing")
        if layout == "tensor":
            dim = splits.get(name)
            want = dim if dim is not None and shape[dim] % mesh.model == 0 else None
        elif layout == "fsdp":  # divided along some dimension the data axis divides, the implementation's choice
            dividing = [d for d, size in enumerate(shape) if size % mesh.data == 0]
            check.that(got in dividing if dividing else got is None, clause="distribution.parameter_layout",
                       message=f"{name} {shape}: divided along {got}; expected one of {dividing or [None]}")
            continue
        else:
            want = None
        check.equal(got, want, clause="distribution.parameter_layout", what=f"divided dimension of {name} {shape}")


def test_checkpoint_saved_split_loads_on_one_device(check, adapter, caps, model_cache, mesh, layout, split,
                                                    tmp_path):
    handle = _model(model_cache, adapter, caps, LOSS_CLASS)
    caps.skip_unless("file:safetensors")
    split("save_distributed", handle, mesh, layout, str(tmp_path))
    loaded = adapter.load(handle.class_name, str(tmp_path))
    inputs = _inputs(handle.class_name, 2)
    check.clause("distribution.checkpoint")
    compare_outputs(check, adapter.run(loaded, inputs), model_cache.run(handle, inputs, flags={}),
                    handle.class_name, clause="distribution.checkpoint", kind=KIND)


def test_batch_the_data_axis_does_not_divide_raises(check, adapter, caps, model_cache, mesh, layout, split):
    if mesh.data < 2 or layout != "data":
        pytest.skip("checked once per mesh, on the data layout")
    binds = _clause("batch_divisibility").frameworks
    if adapter.framework not in binds:  # tf.distribute splits an uneven batch over the replicas: no error due
        pytest.skip(f"distribution.batch_divisibility binds {', '.join(binds)}, not {adapter.framework}")
    handle = _model(model_cache, adapter, caps, "ElectraModel")
    inputs = _inputs(handle.class_name, mesh.data + 1)
    with check.raises(ValueError, clause="distribution.batch_divisibility",
                      words=(str(mesh.data + 1), str(mesh.data))):
        split("run_distributed", handle, inputs, mesh, layout)
