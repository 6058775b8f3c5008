"""Interchange with transformers 4.57.6: its PT, Flax and TF classes' names, shapes and files.

The reference runs in subprocesses (this file's ``__main__``): the PT/Flax one with USE_TF=0, the TF
one with TF_USE_LEGACY_KERAS=1 (transformers' TF classes run on tf-keras, our impl_tf on Keras 3).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from electra_core import ElectraConfig
from electra_core.checkpoint import expected_shapes, load_state, pt_to_tf, save_state, tf_to_pt_name
from electra_core.checkpoint.names import flax_path_to_pt_name
from electra_core.checkpoint.param_spec import params_data
from spec import load_spec

pytestmark = pytest.mark.reference

TINY = dict(vocab_size=32, embedding_size=8, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=16, max_position_embeddings=16)
CONFIGS = {
    "projected": {},
    "square_relative": dict(embedding_size=12, position_embedding_type="relative_key_query"),
    "cross_attention": dict(is_decoder=True, add_cross_attention=True),
    "untied_no_summary_proj": dict(tie_word_embeddings=False, summary_use_proj=False, num_labels=3),
}
# The TF and Flax reference classes have no relative positions.
FRAMEWORK_CONFIGS = {"pt": list(CONFIGS), "flax": ["projected", "cross_attention", "untied_no_summary_proj"],
                     "tf": ["projected"]}
MLM_CONFIG = "projected"
# transformers' Flax init passes encoder_hidden_states only to the classes whose __call__ takes them.
FLAX_CROSS_ATTENTION_CLASSES = ["FlaxElectraModel", "FlaxElectraForCausalLM"]


def classes_of(framework, config_name=None):
    """Classes of params.yaml that transformers has (not the spec's extensions) and can build for the config."""
    extensions = {c.name for c in load_spec().classes.values() if c.extension}
    found = [c for c, e in params_data()["classes"].items() if e["framework"] == framework and c not in extensions]
    if framework == "flax" and config_name == "cross_attention":
        found = [c for c in found if c in FLAX_CROSS_ATTENTION_CLASSES]
    if framework != "pt" and config_name is not None and config_kwargs(config_name).get("num_labels", 2) != 2:
        found = [c for c in found if not c.endswith("QuestionAnswering")]  # its split needs 2 labels to build
    return found


def config_kwargs(name):
    return {**TINY, **CONFIGS[name]}


def run_reference(mode, out):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.update({"USE_TF": "0", "USE_TORCH": "1"} if mode == "pt" else {"TF_USE_LEGACY_KERAS": "1"})
    proc = subprocess.run([sys.executable, __file__, mode, str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Run the PT/Flax reference, write our files from its state, then run the TF reference on them."""
    out = tmp_path_factory.mktemp("reference")
    run_reference("pt", out)
    pt_state = load_state(out / "pt_mlm").state
    config = ElectraConfig(**config_kwargs(MLM_CONFIG))
    save_state(out / "ours_mlm", pt_state, config, formats=("h5",))
    base = {n[len("electra."):]: v for n, v in pt_state.items() if n.startswith("electra.")}
    save_state(out / "ours_base", base, config, formats=("h5",))
    run_reference("tf", out)
    return out


def npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def assert_same_state(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("framework", ["pt", "flax", "tf"])
def test_expected_shapes_equal_what_transformers_stores(reference, framework):
    stored = json.loads((reference / f"{framework}_shapes.json").read_text())
    for config_name in FRAMEWORK_CONFIGS[framework]:
        config = ElectraConfig(**config_kwargs(config_name))
        for class_name in classes_of(framework, config_name):
            want = {n: tuple(s) for n, s in stored[config_name][class_name].items()}
            assert expected_shapes(class_name, config) == want, (config_name, class_name)


def test_pt_state_dict_differs_from_the_file_only_by_the_tied_projection(reference):
    stored = json.loads((reference / "pt_shapes.json").read_text())
    state_dict = json.loads((reference / "pt_state_dict_keys.json").read_text())
    tied = params_data()["tied"]["name"]
    for config_name, classes in state_dict.items():
        tie = ElectraConfig(**config_kwargs(config_name)).tie_word_embeddings
        for class_name, keys in classes.items():
            dropped = set(keys) - set(stored[config_name][class_name])
            assert dropped == ({tied} if tie and tied in keys else set()), (config_name, class_name)


def test_pt_safetensors_reads_back_as_the_state_dict(reference):
    loaded = load_state(reference / "pt_mlm")
    assert loaded.metadata.get("format") == "pt"
    want = npz(reference / "pt_mlm_state.npz")
    del want[params_data()["tied"]["name"]]
    assert_same_state(loaded.state, want)


def test_flax_msgpack_from_transformers_reads_as_its_param_tree(reference):
    loaded = load_state(reference / "flax_mlm", formats=("msgpack",))
    renames = {"kernel": "weight", "scale": "weight", "embedding": "weight", "bias": "bias"}
    want = {}
    for path, value in npz(reference / "flax_mlm_tree.npz").items():
        *modules, leaf = path.split("/")
        want[".".join([*modules, renames[leaf]])] = value.T if leaf == "kernel" else value
    assert "electra.encoder.layer.1.attention.self.query.weight" in want
    assert_same_state(loaded.state, want)


def test_tf_h5_from_transformers_reads_as_the_pt_state(reference):
    pt_state = npz(reference / "pt_mlm_state.npz")
    del pt_state[params_data()["tied"]["name"]]
    assert_same_state(load_state(reference / "tf_mlm", formats=("h5",)).state, pt_state)
    base = {n[len("electra."):]: v for n, v in pt_state.items() if n.startswith("electra.")}
    assert_same_state(load_state(reference / "tf_base", formats=("h5",)).state, base)


@pytest.mark.parametrize("which,scope", [("ours_mlm", "tf_electra_for_masked_lm"), ("ours_base", "tf_electra_model")])
def test_our_h5_loads_into_transformers_tf_with_identical_weights(reference, which, scope):
    info = json.loads((reference / f"{which}_loading_info.json").read_text())
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": []}
    # Weight names start with the model object's name, which Keras numbers per process (..._3): drop it.
    loaded_by_tf = {n.split("/", 1)[1]: v for n, v in npz(reference / f"{which}_tf_weights.npz").items()}
    ours = pt_to_tf(load_state(reference / which, formats=("h5",)).state, None)
    assert_same_state(loaded_by_tf, ours)
    with h5py.File(reference / which / params_data()["files"]["h5"], "r") as f:
        assert all(n.startswith(scope + "/") for n in f["electra"].attrs["weight_names"])


# -- the reference side (runs in a subprocess) ----------------------------------------------------
def _pt_reference(out: Path) -> None:
    import tempfile

    import torch
    import transformers
    from safetensors import safe_open

    shapes, state_keys = {}, {}
    for config_name in FRAMEWORK_CONFIGS["pt"]:
        config = transformers.ElectraConfig(**config_kwargs(config_name))
        shapes[config_name], state_keys[config_name] = {}, {}
        for class_name in classes_of("pt"):
            model = getattr(transformers, class_name)(config)
            with tempfile.TemporaryDirectory() as d:
                model.save_pretrained(d)
                with safe_open(f"{d}/model.safetensors", "np") as f:
                    shapes[config_name][class_name] = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
            state_keys[config_name][class_name] = list(model.state_dict())
    (out / "pt_shapes.json").write_text(json.dumps(shapes))
    (out / "pt_state_dict_keys.json").write_text(json.dumps(state_keys))

    import functools

    import jax
    from flax.traverse_util import flatten_dict

    flax_shapes = {}
    for config_name in FRAMEWORK_CONFIGS["flax"]:
        config = transformers.ElectraConfig(**config_kwargs(config_name))
        flax_shapes[config_name] = {}
        for class_name in classes_of("flax", config_name):
            model = getattr(transformers, class_name)(config, _do_init=False)
            init = functools.partial(model.init_weights, input_shape=model.input_shape)
            params = jax.eval_shape(init, jax.random.PRNGKey(0))  # shapes only, nothing computed
            found = {}
            for path, leaf in flatten_dict(params).items():
                name, transposed = flax_path_to_pt_name(path)
                found[name] = list(leaf.shape)[::-1] if transposed else list(leaf.shape)
            flax_shapes[config_name][class_name] = found
    (out / "flax_shapes.json").write_text(json.dumps(flax_shapes))

    config = transformers.ElectraConfig(**config_kwargs(MLM_CONFIG))
    torch.manual_seed(0)
    model = transformers.ElectraForMaskedLM(config)
    with torch.no_grad():  # random LayerNorm and bias values, so that any mix-up shows
        for p in model.parameters():
            p.normal_()
    model.save_pretrained(out / "pt_mlm")
    np.savez(out / "pt_mlm_state.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
    flax_model = transformers.FlaxElectraForMaskedLM(config, seed=3)
    flax_model.save_pretrained(out / "flax_mlm")
    # (ElectraForMaskedLM.from_pretrained(..., from_flax=True) leaves meta tensors in 4.57.6, so the
    # expectation is built from the flattened tree instead.)
    np.savez(out / "flax_mlm_tree.npz",
             **{"/".join(path): np.asarray(v) for path, v in flatten_dict(flax_model.params).items()})


def _tf_reference(out: Path) -> None:
    import tempfile

    import transformers

    shapes = {}
    for config_name in FRAMEWORK_CONFIGS["tf"]:
        config = transformers.ElectraConfig(**config_kwargs(config_name))
        shapes[config_name] = {}
        for class_name in classes_of("tf", config_name):
            model = getattr(transformers, class_name)(config)
            model(model.dummy_inputs)
            found = {}
            for w in model.weights:
                name = tf_to_pt_name(w.name)
                if class_name == "TFElectraModel":
                    name = name[len("electra."):]
                found[name] = list(w.shape)[::-1] if name.endswith("weight") and len(w.shape) == 2 and (
                    "kernel" in w.name) else list(w.shape)
            shapes[config_name][class_name] = found
    (out / "tf_shapes.json").write_text(json.dumps(shapes))

    for cls, target in [("TFElectraForMaskedLM", "tf_mlm"), ("TFElectraModel", "tf_base")]:
        getattr(transformers, cls).from_pretrained(out / "pt_mlm", from_pt=True).save_pretrained(out / target)
    for cls, which in [("TFElectraForMaskedLM", "ours_mlm"), ("TFElectraModel", "ours_base")]:
        model, info = getattr(transformers, cls).from_pretrained(out / which, output_loading_info=True)
        (out / f"{which}_loading_info.json").write_text(json.dumps({k: sorted(v) for k, v in info.items()}))
        np.savez(out / f"{which}_tf_weights.npz", **{w.name: w.numpy() for w in model.weights})
    del tempfile


if __name__ == "__main__":
    {"pt": _pt_reference, "tf": _tf_reference}[sys.argv[1]](Path(sys.argv[2]))
