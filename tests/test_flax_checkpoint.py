"""impl_flax from_pretrained / save_pretrained behaviour: base <-> head loading with named missing and
unexpected keys, shape mismatches, _do_init=False, config overrides, hub ids offline, TF- and Flax-named
safetensors, and atomic saving."""
from __future__ import annotations

import os
import warnings

import jax
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

import impl_flax
from electra_core.checkpoint import CheckpointError, CheckpointNotFoundError, flax_to_pt, pt_to_tf
from electra_core.checkpoint.safetensors_io import safetensors_bytes
from flax_helpers import build, tiny_config
from hub_cache import HubCache

IDS = np.array([[1, 2, 3, 4]])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A FlaxElectraForMaskedLM saved in both formats, and a FlaxElectraModel saved as safetensors."""
    mlm = build("FlaxElectraForMaskedLM")
    mlm_dir = tmp_path_factory.mktemp("mlm")
    mlm.save_pretrained(mlm_dir)
    base = build("FlaxElectraModel", seed=3)
    base_dir = tmp_path_factory.mktemp("base")
    base.save_pretrained(base_dir, formats=("safetensors",))
    return mlm, mlm_dir, base, base_dir


def test_save_writes_config_and_both_formats(saved):
    _, mlm_dir, _, base_dir = saved
    assert sorted(os.listdir(mlm_dir)) == ["config.json", "flax_model.msgpack", "model.safetensors"]
    assert sorted(os.listdir(base_dir)) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("keep", ["flax_model.msgpack", "model.safetensors"])
def test_each_format_round_trips_exactly(saved, tmp_path, keep):
    mlm, mlm_dir, _, _ = saved
    for name in ("config.json", keep):
        (tmp_path / name).write_bytes((mlm_dir / name).read_bytes())
    loaded = impl_flax.FlaxElectraForMaskedLM.from_pretrained(tmp_path)
    for a, b in zip(jax.tree_util.tree_leaves(loaded.params), jax.tree_util.tree_leaves(mlm.params)):
        np.testing.assert_array_equal(a, b)


def test_base_weights_load_into_a_head_and_missing_keys_are_named(saved):
    _, _, base, base_dir = saved
    with pytest.warns(UserWarning, match=r"newly initialised.*discriminator_predictions\.dense\.weight"):
        head = impl_flax.FlaxElectraForPreTraining.from_pretrained(base_dir)
    np.testing.assert_array_equal(head.params["electra"]["encoder"]["layer"]["0"]["output"]["dense"]["kernel"],
                                  base.params["encoder"]["layer"]["0"]["output"]["dense"]["kernel"])


def test_head_checkpoint_loads_into_the_base_and_unexpected_keys_are_named(saved):
    mlm, mlm_dir, _, _ = saved
    with pytest.warns(UserWarning, match=r"does not use.*generator_lm_head\.bias"):
        base = impl_flax.FlaxElectraModel.from_pretrained(mlm_dir)
    np.testing.assert_array_equal(base.params["embeddings"]["word_embeddings"]["embedding"],
                                  mlm.params["electra"]["embeddings"]["word_embeddings"]["embedding"])


def test_shape_mismatch_is_an_error_unless_ignored(saved):
    _, mlm_dir, _, _ = saved
    with pytest.raises(CheckpointError, match=r"generator_lm_head\.bias.*\(40,\).*\(32,\)"):
        impl_flax.FlaxElectraForMaskedLM.from_pretrained(mlm_dir, vocab_size=40)
    with pytest.warns(UserWarning, match="word_embeddings"):
        model = impl_flax.FlaxElectraForMaskedLM.from_pretrained(mlm_dir, vocab_size=40, ignore_mismatched_sizes=True)
    assert model(IDS).logits.shape == (1, 4, 40)


def test_do_init_false_returns_model_and_params(saved):
    mlm, mlm_dir, _, _ = saved
    model, params = impl_flax.FlaxElectraForMaskedLM.from_pretrained(mlm_dir, _do_init=False)
    with pytest.raises(ValueError):
        _ = model.params
    np.testing.assert_array_equal(model(IDS, params=params).logits, mlm(IDS).logits)


def test_config_overrides_and_explicit_config(saved):
    _, mlm_dir, _, _ = saved
    model = impl_flax.FlaxElectraForMaskedLM.from_pretrained(mlm_dir, output_hidden_states=True)
    assert model.config.output_hidden_states and "hidden_states" in model(IDS)
    config = tiny_config(output_attentions=True)
    assert impl_flax.FlaxElectraForMaskedLM.from_pretrained(mlm_dir, config=config).config.output_attentions


def test_hub_id_resolves_offline_through_the_hub_cache(saved, tmp_path):
    mlm, mlm_dir, _, _ = saved
    cache = HubCache(tmp_path / "hub")
    cache.add("tiny/electra-mlm", mlm_dir)
    with cache.offline():
        model = impl_flax.FlaxElectraForMaskedLM.from_pretrained("tiny/electra-mlm", local_files_only=True)
        with pytest.raises(CheckpointNotFoundError):
            impl_flax.FlaxElectraForMaskedLM.from_pretrained("tiny/absent", local_files_only=True)
    np.testing.assert_array_equal(model(IDS).logits, mlm(IDS).logits)


@pytest.mark.parametrize("naming", ["tf", "flax"])
def test_tf_and_flax_named_safetensors_load_by_their_metadata(saved, tmp_path, naming):
    mlm, mlm_dir, _, _ = saved
    state = flax_to_pt(jax.tree_util.tree_map(np.asarray, mlm.params))
    if naming == "tf":
        arrays = pt_to_tf(state, "tf_electra_for_masked_lm")
    else:
        arrays = {".".join(k): np.asarray(v) for k, v in flatten_dict(mlm.params).items()}
    (tmp_path / "model.safetensors").write_bytes(safetensors_bytes(arrays, {"format": naming}))
    (tmp_path / "config.json").write_bytes((mlm_dir / "config.json").read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = impl_flax.FlaxElectraForMaskedLM.from_pretrained(tmp_path)
    np.testing.assert_allclose(model(IDS).logits, mlm(IDS).logits, atol=1e-6)


def test_failed_save_leaves_the_previous_checkpoint_intact(saved, tmp_path, monkeypatch):
    mlm, mlm_dir, _, _ = saved
    mlm.save_pretrained(tmp_path)
    before = {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)}
    broken = jax.tree_util.tree_map(lambda x: x, mlm.params)
    broken["generator_lm_head"]["bias"] = np.zeros(3)
    with pytest.raises(ValueError):
        mlm.save_pretrained(tmp_path, params=broken)
    from electra_core.checkpoint import msgpack_io

    def disk_full(tree):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(msgpack_io, "msgpack_bytes", disk_full)  # fails after safetensors was written
    with pytest.raises(OSError, match=str(tmp_path)):
        build("FlaxElectraForMaskedLM", seed=9).save_pretrained(tmp_path)
    assert {n: (tmp_path / n).read_bytes() for n in os.listdir(tmp_path)} == before


@pytest.mark.parametrize("safe, files", [(None, {"config.json", "model.safetensors", "flax_model.msgpack"}),
                                         (True, {"config.json", "model.safetensors"}),
                                         (False, {"config.json", "flax_model.msgpack"})])
def test_safe_serialization_selects_the_weight_file(tmp_path, safe, files):
    model = build("FlaxElectraModel")
    model.save_pretrained(tmp_path, **({} if safe is None else {"safe_serialization": safe}))
    assert {p.name for p in tmp_path.iterdir()} == files  # api.save_pretrained
    reloaded = impl_flax.FlaxElectraModel.from_pretrained(pretrained_model_name_or_path=str(tmp_path))
    assert flax_to_pt(reloaded.params).keys() == flax_to_pt(model.params).keys()
    for name, value in flax_to_pt(model.params).items():
        np.testing.assert_array_equal(flax_to_pt(reloaded.params)[name], value)
    with pytest.raises(ValueError, match="safe_serialization or formats"):
        model.save_pretrained(tmp_path, safe_serialization=True, formats=("msgpack",))
