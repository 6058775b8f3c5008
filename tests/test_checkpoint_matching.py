"""match_state: base <-> head prefixes, the tied output projection, shape mismatches."""
import numpy as np
import pytest

from electra_core import ElectraConfig
from electra_core.checkpoint import CheckpointError, CheckpointShapeError, expected_shapes, match_state

CONFIG = ElectraConfig(vocab_size=32, embedding_size=8, hidden_size=12, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=16, max_position_embeddings=16)


def state_of(class_name, config=CONFIG):
    return {n: np.zeros(s, np.float32) for n, s in expected_shapes(class_name, config).items()}


def test_exact_match_has_nothing_missing_or_unexpected():
    expected = expected_shapes("FlaxElectraForPreTraining", CONFIG)
    result = match_state(expected, state_of("ElectraForPreTraining"))
    assert sorted(result.state) == sorted(expected)
    assert (result.missing, result.unexpected, result.mismatched) == ([], [], [])


def test_base_checkpoint_into_head_model_gets_the_prefix_and_misses_the_head():
    expected = expected_shapes("FlaxElectraForQuestionAnswering", CONFIG)
    result = match_state(expected, state_of("ElectraModel"))
    assert "electra.embeddings.word_embeddings.weight" in result.state
    assert sorted(result.missing) == ["qa_outputs.bias", "qa_outputs.weight"]
    assert result.unexpected == []


def test_head_checkpoint_into_base_model_drops_the_prefix_and_reports_the_head():
    expected = expected_shapes("TFElectraModel", CONFIG)
    result = match_state(expected, state_of("ElectraForSequenceClassification"))
    assert sorted(result.state) == sorted(expected)
    assert result.missing == []
    assert sorted(result.unexpected) == ["classifier.dense.bias", "classifier.dense.weight",
                                         "classifier.out_proj.bias", "classifier.out_proj.weight"]


def test_tied_output_projection_is_neither_missing_nor_unexpected():
    expected = expected_shapes("FlaxElectraForMaskedLM", CONFIG)
    assert "generator_lm_head.weight" not in expected
    with_tied = {**state_of("ElectraForMaskedLM"), "generator_lm_head.weight": np.zeros((32, 8), np.float32)}
    result = match_state(expected, with_tied)
    assert (result.missing, result.unexpected) == ([], [])


def test_untied_model_reports_the_absent_output_projection_missing():
    untied = ElectraConfig(**{**CONFIG.to_dict(), "tie_word_embeddings": False})
    expected = expected_shapes("FlaxElectraForMaskedLM", untied)
    result = match_state(expected, state_of("ElectraForMaskedLM"))
    assert result.missing == ["generator_lm_head.weight"]


def test_shape_mismatch_names_key_and_both_shapes():
    expected = expected_shapes("FlaxElectraForTokenClassification", CONFIG)
    state = state_of("ElectraForTokenClassification")
    state["classifier.weight"] = np.zeros((5, 12), np.float32)
    with pytest.raises(CheckpointShapeError) as info:
        match_state(expected, state)
    message = str(info.value)
    assert "classifier.weight" in message and "(2, 12)" in message and "(5, 12)" in message
    assert isinstance(info.value, CheckpointError) and isinstance(info.value, ValueError)


def test_ignore_mismatched_sizes_drops_and_reports_them():
    expected = expected_shapes("FlaxElectraForTokenClassification", CONFIG)
    state = state_of("ElectraForTokenClassification")
    state["classifier.weight"] = np.zeros((5, 12), np.float32)
    state["classifier.bias"] = np.zeros((5,), np.float32)
    result = match_state(expected, state, ignore_mismatched_sizes=True)
    assert sorted(result.mismatched) == [("classifier.bias", (2,), (5,)), ("classifier.weight", (2, 12), (5, 12))]
    assert "classifier.weight" not in result.state and result.missing == []


def test_position_ids_buffer_of_old_pt_checkpoints_is_ignored():
    expected = expected_shapes("FlaxElectraForPreTraining", CONFIG)
    state = {**state_of("ElectraForPreTraining"), "electra.embeddings.position_ids": np.arange(16)[None]}
    result = match_state(expected, state)
    assert (result.missing, result.unexpected) == ([], [])
    assert "electra.embeddings.position_ids" not in result.state


def test_integer_arrays_for_parameters_are_rejected_by_name():
    expected = expected_shapes("FlaxElectraForQuestionAnswering", CONFIG)
    state = state_of("ElectraForQuestionAnswering")
    state["qa_outputs.bias"] = np.zeros(2, np.int64)
    with pytest.raises(CheckpointError, match="qa_outputs.bias: int64"):
        match_state(expected, state)
