"""Canonical names <-> Flax tree paths / TF names, and the flax msgpack format (numpy + flax only)."""
import numpy as np
import pytest

from electra_core import ElectraConfig
from electra_core.checkpoint import (
    expected_shapes,
    flax_to_pt,
    pt_to_flax,
    pt_to_tf,
    pt_to_tf_name,
    tf_to_pt,
    tf_to_pt_name,
)
from electra_core.checkpoint.msgpack_io import decode_msgpack, msgpack_bytes
from electra_core.checkpoint.names import flatten_tree

TINY = dict(vocab_size=32, embedding_size=8, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=16, max_position_embeddings=16)


def random_state(class_name, **overrides):
    config = ElectraConfig(**{**TINY, **overrides})
    rng = np.random.default_rng(0)
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in expected_shapes(class_name, config).items()}


def assert_same_state(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].shape == want[name].shape, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("class_name", ["ElectraModel", "ElectraForMaskedLM", "ElectraForSequenceClassification",
                                        "ElectraForMultipleChoice", "ElectraForPreTraining"])
def test_pt_flax_pt_round_trip_is_exact(class_name):
    state = random_state(class_name, tie_word_embeddings=False)
    assert_same_state(flax_to_pt(pt_to_flax(state)), state)


@pytest.mark.parametrize("class_name", ["ElectraModel", "ElectraForMaskedLM", "ElectraForQuestionAnswering",
                                        "ElectraForTokenClassification"])
def test_pt_tf_pt_round_trip_is_exact(class_name):
    state = random_state(class_name)
    assert_same_state(tf_to_pt(pt_to_tf(state, "some_scope")), state)


def test_flax_paths_rename_and_transpose():
    state = random_state("ElectraForMaskedLM", tie_word_embeddings=False)
    flat = flatten_tree(pt_to_flax(state))
    query = state["electra.encoder.layer.0.attention.self.query.weight"]
    np.testing.assert_array_equal(flat[("electra", "encoder", "layer", "0", "attention", "self", "query", "kernel")],
                                  query.T)
    assert ("electra", "embeddings", "LayerNorm", "scale") in flat
    assert ("electra", "embeddings", "word_embeddings", "embedding") in flat
    assert flat[("generator_lm_head", "kernel")].shape == (8, 32)  # untied: a Dense (E, V)
    assert ("electra", "embeddings_project", "kernel") in flat


def test_tf_names_follow_the_hf_layout():
    assert (pt_to_tf_name("encoder.layer.1.attention.self.query.weight", "tf_electra_model")
            == "tf_electra_model/electra/encoder/layer_._1/attention/self/query/kernel:0")
    assert (pt_to_tf_name("electra.embeddings.word_embeddings.weight", "m")
            == "m/electra/embeddings/word_embeddings/weight:0")
    position = pt_to_tf_name("electra.embeddings.position_embeddings.weight", "m")
    assert position == "m/electra/embeddings/position_embeddings/embeddings:0"
    assert pt_to_tf_name("generator_predictions.LayerNorm.bias", "m") == "m/generator_predictions/LayerNorm/beta:0"
    assert (tf_to_pt_name("x/electra/encoder/layer_._0/output/LayerNorm/gamma:0")
            == "electra.encoder.layer.0.output.LayerNorm.weight")
    assert tf_to_pt_name("classifier/out_proj/kernel:0") == "classifier.out_proj.weight"


def test_tf_base_checkpoint_names_lose_the_prefix_head_checkpoint_keeps_it():
    base = tf_to_pt({"m/electra/embeddings/LayerNorm/gamma:0": np.ones(3, np.float32)})
    assert list(base) == ["embeddings.LayerNorm.weight"]
    head = tf_to_pt({"m/electra/embeddings/LayerNorm/gamma:0": np.ones(3, np.float32),
                     "m/qa_outputs/bias:0": np.ones(2, np.float32)})
    assert sorted(head) == ["electra.embeddings.LayerNorm.weight", "qa_outputs.bias"]


def test_unknown_leaves_are_rejected_with_the_name():
    with pytest.raises(ValueError, match="embeddings.LayerNorm.kernel"):
        flax_to_pt({"embeddings": {"LayerNorm": {"kernel": np.ones((2, 2))}}})
    with pytest.raises(ValueError, match="nothing_known"):
        tf_to_pt_name("scope/nothing_known/kernel:0")


def test_msgpack_matches_flax_serialization_both_ways():
    serialization = pytest.importorskip("flax.serialization")
    tree = pt_to_flax(random_state("ElectraForPreTraining"))
    tree["electra"]["extra_scalar"] = np.float32(1.5)
    tree["electra"]["half"] = np.arange(6, dtype=np.float16).reshape(2, 3)
    ours = msgpack_bytes(tree)
    theirs = serialization.msgpack_serialize(tree)
    assert ours == theirs
    restored = serialization.msgpack_restore(ours)
    decoded = decode_msgpack(theirs)
    for path, leaf in flatten_tree(tree).items():
        for other in (restored, decoded):
            node = other
            for key in path:
                node = node[key]
            np.testing.assert_array_equal(node, leaf)
            assert np.asarray(node).dtype == np.asarray(leaf).dtype


def test_msgpack_chunked_arrays_are_restored(monkeypatch):
    from electra_core.checkpoint import msgpack_io

    monkeypatch.setattr(msgpack_io, "CHUNK_BYTES", 64)
    array = np.arange(100, dtype=np.float32).reshape(10, 10)
    data = msgpack_io.msgpack_bytes({"a": {"kernel": array}})
    np.testing.assert_array_equal(decode_msgpack(data)["a"]["kernel"], array)
    serialization = pytest.importorskip("flax.serialization")
    np.testing.assert_array_equal(serialization.msgpack_restore(data)["a"]["kernel"], array)
