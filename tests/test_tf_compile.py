"""Graph execution: tf.function(jit_compile=True) equals eager; value checks become graph assertions
inside tf.function; a SavedModel with a serving signature (int32 input_ids, attention_mask,
token_type_ids of shape [None, None]) reloads and gives the same outputs."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import impl_tf
from tf_helpers import assert_close, tiny_config


@pytest.mark.parametrize("class_name", ["TFElectraForMaskedLM", "TFElectraForMultipleChoice"])
def test_xla_compiled_call_equals_eager(class_name):
    model = getattr(impl_tf, class_name)(tiny_config(position_embedding_type="relative_key"))
    lead = (2, 3) if class_name == "TFElectraForMultipleChoice" else (2,)
    rng = np.random.RandomState(0)
    ids = rng.randint(0, 40, lead + (6,)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[..., -1] = 0

    @tf.function(jit_compile=True)
    def compiled(ids, mask):
        out = model(ids, attention_mask=mask, output_hidden_states=True)
        return out.logits, out.hidden_states

    logits, hidden = compiled(tf.constant(ids), tf.constant(mask))
    eager = model(ids, attention_mask=mask, output_hidden_states=True)
    assert_close(logits, eager.logits, "logits", kind="compiled_vs_eager")
    for a, b in zip(hidden, eager.hidden_states):
        assert_close(a, b, "hidden_states", kind="compiled_vs_eager")


def test_out_of_range_ids_fail_inside_a_graph():
    model = impl_tf.TFElectraModel(tiny_config())
    graph_call = tf.function(lambda ids: model(ids).last_hidden_state,
                             input_signature=[tf.TensorSpec((None, None), tf.int32)])
    graph_call(tf.constant([[1, 2, 3]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids"):
        graph_call(tf.constant([[1, 99, 3]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_position_embeddings"):
        graph_call(tf.zeros((1, model.config.max_position_embeddings + 1), tf.int32))


def test_saved_model_serving_signature_round_trips(tmp_path):
    model = impl_tf.TFElectraForTokenClassification(tiny_config())
    tf.saved_model.save(model, str(tmp_path), signatures={"serving_default": model.serving_function()})
    serving = tf.saved_model.load(str(tmp_path)).signatures["serving_default"]
    rng = np.random.RandomState(1)
    for shape in ((2, 5), (3, 9)):  # dynamic batch and sequence
        ids = rng.randint(0, 40, shape).astype(np.int32)
        mask = np.ones_like(ids)
        mask[0, -2:] = 0
        types = rng.randint(0, 3, shape).astype(np.int32)
        out = serving(input_ids=tf.constant(ids), attention_mask=tf.constant(mask), token_type_ids=tf.constant(types))
        expected = model(ids, attention_mask=mask, token_type_ids=types).logits
        assert_close(out["logits"], expected, "logits", kind="compiled_vs_eager")
