"""Keras training: compile(optimizer) + fit trains every head on its own loss, with the labels inside
the input dict or given as y (numpy arrays or a tf.data.Dataset)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import impl_tf
from spec import load_spec
from tf_helpers import tiny_config

HEADS = [c for c in load_spec().classes_for("tf") if c.labels]


def _toy_task(class_name, config, n=16, seq=6):
    """Inputs and labels that are a simple function of the inputs."""
    rng = np.random.RandomState(0)
    lead = (n, 2) if class_name == "TFElectraForMultipleChoice" else (n,)
    ids = rng.randint(1, config.vocab_size, lead + (seq,))
    if class_name == "TFElectraForPreTraining":
        return ids, {"labels": (ids % 2).astype(np.int64)}
    if class_name in ("TFElectraForMaskedLM", "TFElectraForCausalLM"):
        return ids, {"labels": ids}
    if class_name == "TFElectraForTokenClassification":
        return ids, {"labels": ids % config.num_labels}
    if class_name == "TFElectraForSequenceClassification":
        return ids, {"labels": ids[:, 0] % config.num_labels}
    if class_name == "TFElectraForMultipleChoice":
        return ids, {"labels": (ids[:, 0, 0] > ids[:, 1, 0]).astype(np.int64)}
    return ids, {"start_positions": ids[:, 0] % seq, "end_positions": ids[:, 1] % seq}


def _model(class_name, run_eagerly=True):
    """Eager train steps (no graph tracing) keep these tests fast on tiny models."""
    overrides = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, summary_last_dropout=0.0,
                     num_hidden_layers=1)
    if class_name == "TFElectraForQuestionAnswering":
        overrides["num_labels"] = 2
    if class_name == "TFElectraForCausalLM":
        overrides["is_decoder"] = True
    model = getattr(impl_tf, class_name)(tiny_config(**overrides))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), jit_compile=False, run_eagerly=run_eagerly)
    return model


FAST_HEADS = ("TFElectraForSequenceClassification", "TFElectraForMaskedLM")  # the others are marked slow


@pytest.mark.parametrize("class_name", [c.name if c.name in FAST_HEADS else pytest.param(c.name, marks=pytest.mark.slow)
                                        for c in HEADS])
def test_fit_lowers_the_loss_with_labels_in_the_input_dict(class_name):
    model = _model(class_name)
    ids, labels = _toy_task(class_name, model.config)
    before = float(model({"input_ids": ids, **labels}).loss)
    model.fit({"input_ids": ids, **labels}, epochs=5, batch_size=8, shuffle=False, verbose=0)
    after = float(model({"input_ids": ids, **labels}).loss)
    assert after < 0.9 * before, (before, after)


def test_fit_takes_labels_as_y_from_numpy_and_from_a_dataset():
    model = _model("TFElectraForSequenceClassification", run_eagerly=False)  # also the graph train step
    ids, labels = _toy_task("TFElectraForSequenceClassification", model.config)
    y = labels["labels"]
    start = float(model(ids, labels=y).loss)
    first = model.fit(ids, y, epochs=3, batch_size=8, shuffle=False, verbose=0).history["loss"]
    dataset = tf.data.Dataset.from_tensor_slices(({"input_ids": ids}, y)).batch(8)
    second = model.fit(dataset, epochs=3, verbose=0).history["loss"]
    assert second[-1] < first[0] < start + 1e-3


@pytest.mark.slow
def test_fit_spreads_a_tuple_y_over_the_span_positions():
    model = _model("TFElectraForQuestionAnswering")
    ids, labels = _toy_task("TFElectraForQuestionAnswering", model.config)
    y = (labels["start_positions"], labels["end_positions"])
    history = model.fit(ids, y, epochs=5, batch_size=8, shuffle=False, verbose=0).history["loss"]
    assert history[-1] < history[0]
    internal = float(model({"input_ids": ids, **labels}).loss)
    assert float(model.evaluate(ids, y, batch_size=16, verbose=0)) == pytest.approx(internal, rel=1e-5)


def test_predict_returns_the_output_fields():
    model = _model("TFElectraForTokenClassification")
    ids, _ = _toy_task("TFElectraForTokenClassification", model.config)
    out = model.predict(ids, batch_size=8, verbose=0)
    np.testing.assert_allclose(out["logits"], model(ids).logits, atol=1e-5)
