"""from_pretrained / save_pretrained of impl_tf: round trips in both formats, base weights into head
models and back, missing/unexpected names reported, shape mismatches, hub ids through the
huggingface_hub cache, atomic saving; and resize_token_embeddings."""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

import impl_tf
from electra_core.checkpoint import CheckpointError, CheckpointNotFoundError
from impl_tf.weights import canonical_state
from tf_helpers import tiny_config

IDS = np.random.RandomState(0).randint(0, 40, (2, 6))


def _assert_same_weights(a, b):
    sa, sb = canonical_state(a), canonical_state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


@pytest.mark.parametrize("formats", [("safetensors",), ("h5",), ("safetensors", "h5")])
def test_save_and_load_round_trip(tmp_path, formats):
    model = impl_tf.TFElectraForMaskedLM(tiny_config(tie_word_embeddings=True))
    model.save_pretrained(tmp_path, formats=formats)
    names = {"safetensors": "model.safetensors", "h5": "tf_model.h5"}
    assert sorted(os.listdir(tmp_path)) == sorted(["config.json", *(names[f] for f in formats)])
    assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == 40
    loaded = impl_tf.TFElectraForMaskedLM.from_pretrained(tmp_path)
    _assert_same_weights(model, loaded)
    np.testing.assert_array_equal(loaded(IDS).logits, model(IDS).logits)


def test_untied_relative_model_round_trips(tmp_path):
    model = impl_tf.TFElectraForCausalLM(tiny_config(tie_word_embeddings=False, is_decoder=True,
                                                    position_embedding_type="relative_key"))
    model.save_pretrained(tmp_path)
    loaded = impl_tf.TFElectraForCausalLM.from_pretrained(tmp_path)
    _assert_same_weights(model, loaded)
    assert not loaded.config.tie_word_embeddings


def test_tf_named_safetensors_load_by_their_metadata(tmp_path):
    """transformers' TF classes write safetensors with TF weight names and metadata format "tf"."""
    from safetensors.numpy import save_file

    from electra_core.checkpoint import pt_to_tf

    model = impl_tf.TFElectraForQuestionAnswering(tiny_config(num_labels=2))
    model.config.save_pretrained(tmp_path)
    tf_named = pt_to_tf(canonical_state(model), "tf_electra_for_question_answering")
    assert all(name.startswith("tf_electra_for_question_answering/") for name in tf_named)
    save_file(tf_named, str(tmp_path / "model.safetensors"), metadata={"format": "tf"})
    loaded = impl_tf.TFElectraForQuestionAnswering.from_pretrained(tmp_path)
    _assert_same_weights(model, loaded)


def test_base_weights_go_into_head_models_and_back(tmp_path, caplog):
    base = impl_tf.TFElectraModel(tiny_config())
    base.save_pretrained(tmp_path / "base")
    with caplog.at_level(logging.WARNING, logger="impl_tf"):
        head = impl_tf.TFElectraForTokenClassification.from_pretrained(tmp_path / "base")
    assert "classifier.weight" in caplog.text and "newly initialised" in caplog.text
    np.testing.assert_allclose(head.electra(input_ids=IDS)["last_hidden_state"], base(IDS).last_hidden_state)
    head.save_pretrained(tmp_path / "head")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="impl_tf"):
        back = impl_tf.TFElectraModel.from_pretrained(tmp_path / "head")
    assert "classifier.bias" in caplog.text and "not used" in caplog.text
    np.testing.assert_array_equal(back(IDS).last_hidden_state, base(IDS).last_hidden_state)


def test_shape_mismatch_raises_unless_ignored(tmp_path, caplog):
    impl_tf.TFElectraForSequenceClassification(tiny_config(num_labels=3)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"classifier\.out_proj\.weight.*\(5, 16\).*\(3, 16\)"):
        impl_tf.TFElectraForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    with caplog.at_level(logging.WARNING, logger="impl_tf"):
        model = impl_tf.TFElectraForSequenceClassification.from_pretrained(tmp_path, num_labels=5,
                                                                           ignore_mismatched_sizes=True)
    assert model(IDS).logits.shape == (2, 5) and "out_proj" in caplog.text


def test_missing_and_corrupt_checkpoints_raise(tmp_path):
    with pytest.raises(CheckpointNotFoundError):
        impl_tf.TFElectraModel.from_pretrained(tmp_path)
    impl_tf.TFElectraModel(tiny_config()).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        impl_tf.TFElectraModel.from_pretrained(tmp_path)


def test_failed_save_leaves_the_existing_checkpoint(tmp_path, monkeypatch):
    model = impl_tf.TFElectraModel(tiny_config())
    model.save_pretrained(tmp_path)
    before = {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)}
    import electra_core.checkpoint.safetensors_io as io

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(io, "safetensors_bytes", broken)
    with pytest.raises(OSError):
        impl_tf.TFElectraModel(tiny_config()).save_pretrained(tmp_path)
    assert {p: (tmp_path / p).read_bytes() for p in os.listdir(tmp_path)} == before


def test_hub_id_resolves_through_the_huggingface_cache(tmp_path, monkeypatch):
    """A populated huggingface_hub cache serves `org/name` offline (the real hub code path)."""
    model = impl_tf.TFElectraForPreTraining(tiny_config())
    repo = tmp_path / "cache" / "models--someone--tiny-electra"
    snapshot = repo / "snapshots" / ("a" * 40)
    model.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = impl_tf.TFElectraForPreTraining.from_pretrained("someone/tiny-electra", cache_dir=tmp_path / "cache",
                                                             local_files_only=True)
    np.testing.assert_array_equal(loaded(IDS).logits, model(IDS).logits)


def test_resize_token_embeddings_keeps_old_rows_and_updates_the_head():
    model = impl_tf.TFElectraForMaskedLM(tiny_config())
    old_table = model.get_input_embeddings().table.numpy()
    old_logits = model(IDS).logits.numpy()
    model.resize_token_embeddings(50)
    assert model.config.vocab_size == 50
    table = model.get_input_embeddings().table.numpy()
    assert table.shape == (50, 12)
    np.testing.assert_array_equal(table[:40], old_table)
    assert model.get_output_embeddings().bias.shape == (50,)
    logits = model(IDS).logits.numpy()
    assert logits.shape == (2, 6, 50)
    np.testing.assert_allclose(logits[..., :40], old_logits, atol=1e-6)
    assert len(model.trainable_weights) == len({w.path for w in model.trainable_weights})
    model(np.array([[49]]))  # the new id is in range now
    model.resize_token_embeddings(30)
    with pytest.raises(ValueError, match="input_ids"):
        model(np.array([[35]]))


def test_resize_an_untied_head_and_save_it(tmp_path):
    model = impl_tf.TFElectraForMaskedLM(tiny_config(tie_word_embeddings=False))
    kernel = model.get_output_embeddings().kernel.numpy()
    model.resize_token_embeddings(44)
    np.testing.assert_array_equal(model.get_output_embeddings().kernel.numpy()[:, :40], kernel)
    model.save_pretrained(tmp_path)
    loaded = impl_tf.TFElectraForMaskedLM.from_pretrained(tmp_path)
    assert loaded.config.vocab_size == 44
    _assert_same_weights(model, loaded)


@pytest.mark.parametrize("safe, files", [(None, {"config.json", "model.safetensors"}),
                                         (True, {"config.json", "model.safetensors"}),
                                         (False, {"config.json", "tf_model.h5"})])
def test_safe_serialization_selects_the_weight_file(tmp_path, safe, files):
    model = impl_tf.TFElectraModel(tiny_config())
    model.save_pretrained(tmp_path, **({} if safe is None else {"safe_serialization": safe}))
    assert {p.name for p in tmp_path.iterdir()} == files  # api.save_pretrained
    reloaded = impl_tf.TFElectraModel.from_pretrained(pretrained_model_name_or_path=str(tmp_path))
    for name, value in canonical_state(model).items():
        np.testing.assert_array_equal(canonical_state(reloaded)[name], value)
    with pytest.raises(ValueError, match="safe_serialization or formats"):
        model.save_pretrained(tmp_path, safe_serialization=True, formats=("h5",))
