"""Hostile call inputs (issue 14, items 14-15) in both implementations: masks that are not 0/1
(error.attention_mask.values / .dtype), empty sequences (error.sequence.empty), string, object and
ragged ids, and TF's reading of a Python list as the ids. Tiny models only."""
from __future__ import annotations

import numpy as np
import pytest

from electra_core.config import ElectraConfig
from electra_core.value_checks import check_mask_values

TINY = dict(vocab_size=32, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=20, max_position_embeddings=16)
IDS = np.array([[2, 5, 7, 3], [2, 9, 3, 0]], np.int32)
BAD_MASK_VALUES = [2, 3, -1, 0.5, float("nan"), float("inf")]


@pytest.fixture(scope="module", params=["flax", "tf"])
def models(request):
    """(framework, sequence-classification model, cross-attention decoder) of a tiny config."""
    cross = dict(TINY, is_decoder=True, add_cross_attention=True)
    if request.param == "flax":
        import impl_flax as impl

        return "flax", impl.FlaxElectraForSequenceClassification(ElectraConfig(**TINY)), \
            impl.FlaxElectraModel(ElectraConfig(**cross))
    import impl_tf as impl

    return "tf", impl.TFElectraForSequenceClassification(ElectraConfig(**TINY)), \
        impl.TFElectraModel(ElectraConfig(**cross))


# -- item 14 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", BAD_MASK_VALUES)
def test_attention_mask_value_not_0_or_1_is_rejected(models, value):
    _, model, _ = models
    mask = np.ones(IDS.shape, np.float32 if isinstance(value, float) else np.int32)
    mask[1, 2] = value
    with pytest.raises(ValueError, match=rf"attention_mask value {value}.* at index \(1, 2\) is not 0 or 1"):
        model(IDS, attention_mask=mask)


@pytest.mark.parametrize("mask", [np.full(IDS.shape, "1"), np.ones(IDS.shape, object),
                                  np.ones(IDS.shape, np.complex64)], ids=["str", "object", "complex"])
def test_attention_mask_of_a_non_numeric_dtype_is_a_type_error(models, mask):
    _, model, _ = models
    with pytest.raises(TypeError, match="attention_mask"):
        model(IDS, attention_mask=mask)


@pytest.mark.parametrize("mask", [np.array([[1, 1, 0, 0], [1, 1, 1, 0]], np.int64),
                                  np.array([[1, 1, 0, 0], [1, 1, 1, 0]], np.float32),
                                  np.array([[1, 1, 0, 0], [1, 1, 1, 0]], bool)], ids=["int", "float", "bool"])
def test_valid_masks_of_every_accepted_dtype_agree(models, mask):
    _, model, _ = models
    reference = np.asarray(model(IDS, attention_mask=mask.astype(np.int32)).logits)
    np.testing.assert_array_equal(np.asarray(model(IDS, attention_mask=mask).logits), reference)


@pytest.mark.parametrize("value", [2, -1, 0.5])
def test_encoder_attention_mask_is_checked_too(models, value):
    _, _, decoder = models
    states = np.zeros((2, 3, 16), np.float32)
    mask = np.ones((2, 3), np.float32)
    mask[0, 1] = value
    with pytest.raises(ValueError, match=rf"encoder_attention_mask value {value}"):
        decoder(IDS, encoder_hidden_states=states, encoder_attention_mask=mask)


def test_fractional_head_mask_stays_allowed(models):
    _, model, _ = models
    out = model(IDS, head_mask=np.array([0.5, 0.25], np.float32)).logits
    assert np.all(np.isfinite(np.asarray(out)))


def test_mask_check_fast_path_needs_no_search():
    check_mask_values("attention_mask", np.ones((4, 512), np.int64))
    check_mask_values("attention_mask", np.zeros((0, 3), np.float32))
    with pytest.raises(ValueError, match=r"attention_mask value 7 at index \(3, 511\)"):
        bad = np.ones((4, 512), np.int8)
        bad[3, 511] = 7
        check_mask_values("attention_mask", bad)


# -- item 15 ---------------------------------------------------------------------------------------
def test_empty_sequence_is_a_value_error_naming_input_ids(models):
    _, model, _ = models
    empty = IDS[:, :0]
    with pytest.raises(ValueError, match=r"input_ids has shape \(2, 0\).*empty"):
        model(empty)


@pytest.mark.parametrize("ids", [np.array([["a", "b"]]), np.array([[1, "b"]], object), np.array([[1.0, 2.0]])],
                         ids=["str", "object", "float"])
def test_string_object_and_float_ids_are_type_errors(models, ids):
    _, model, _ = models
    with pytest.raises(TypeError, match="input_ids"):
        model(ids)


def test_ragged_python_list_is_a_value_error_naming_input_ids(models):
    _, model, _ = models
    with pytest.raises(ValueError, match="input_ids"):
        model([[1, 2, 3], [4, 5]])


def test_python_list_of_ids_is_read_as_the_ids(models):
    """TF used to read [[1, 2, 3]] as the positional-list format ("input_ids has shape (3,)")."""
    _, model, _ = models
    expected = np.asarray(model(np.array([[1, 2, 3]], np.int32)).logits)
    np.testing.assert_array_equal(np.asarray(model([[1, 2, 3]]).logits), expected)
    np.testing.assert_array_equal(np.asarray(model(input_ids=[[1, 2, 3]], attention_mask=[[1, 1, 1]]).logits),
                                  expected)


def test_tf_positional_list_of_arrays_still_works():
    import impl_tf

    model = impl_tf.TFElectraModel(ElectraConfig(**TINY))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], np.int32)
    expected = np.asarray(model(IDS, attention_mask=mask).last_hidden_state)
    np.testing.assert_array_equal(np.asarray(model([IDS, mask]).last_hidden_state), expected)
