"""impl_flax.losses: each head's loss equals the PyTorch reference's loss for the same weights and labels
(loss.*), and a few optax steps with jax.grad through the model lower it on a toy batch."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from flax_helpers import assert_close, build, inputs_for, tiny_config, torch_call, torch_params, torch_reference
from impl_flax import losses
from spec import load_spec

SPEC = load_spec()
IGNORE = SPEC.raw("losses")["ignore_index"]


def labels_for(class_name, config, inputs, rng, problem="single"):
    """Label arguments of the PyTorch reference call, with ignored / clamped entries where the loss has them."""
    ids = inputs["input_ids"]
    batch, seq = ids.shape[0], ids.shape[-1]
    if class_name in ("FlaxElectraForMaskedLM", "FlaxElectraForCausalLM"):
        labels = rng.integers(0, config.vocab_size, (batch, seq))
        labels[0, 1] = IGNORE
        return {"labels": labels}
    if class_name == "FlaxElectraForTokenClassification":
        labels = rng.integers(0, config.num_labels, (batch, seq))
        labels[1, -1] = IGNORE
        return {"labels": labels}
    if class_name == "FlaxElectraForPreTraining":
        return {"labels": rng.integers(0, 2, (batch, seq))}
    if class_name == "FlaxElectraForMultipleChoice":
        return {"labels": rng.integers(0, ids.shape[1], (batch,))}
    if class_name == "FlaxElectraForQuestionAnswering":
        return {"start_positions": np.array([1, seq + 3]), "end_positions": np.array([-2, 3])}
    if problem == "regression":
        return {"labels": rng.normal(size=(batch,)).astype(np.float32)}
    if problem == "multi":
        return {"labels": rng.integers(0, 2, (batch, config.num_labels)).astype(np.float32)}
    return {"labels": rng.integers(0, config.num_labels, (batch,))}


def our_loss(class_name, config, outputs, inputs, labels):
    fn = losses.LOSS_OF_CLASS[class_name]
    if class_name == "FlaxElectraForQuestionAnswering":
        return fn(outputs.start_logits, outputs.end_logits, labels["start_positions"], labels["end_positions"])
    if class_name == "FlaxElectraForPreTraining":
        return fn(outputs.logits, labels["labels"], inputs["attention_mask"])
    if class_name == "FlaxElectraForSequenceClassification":
        return fn(outputs.logits, labels["labels"], config.problem_type)
    return fn(outputs.logits, labels["labels"])


CASES = [(c, {}, "single") for c in losses.LOSS_OF_CLASS] + [
    ("FlaxElectraForSequenceClassification", dict(num_labels=1), "regression"),
    ("FlaxElectraForSequenceClassification", dict(num_labels=3), "multi")]


@pytest.mark.reference
@pytest.mark.parametrize("class_name,overrides,problem", CASES, ids=[f"{c[12:]}-{p}" for c, _, p in CASES])
def test_loss_equals_the_pytorch_reference(class_name, overrides, problem):
    config = tiny_config(class_name, **overrides)
    pt_model = torch_reference(class_name, config)
    model = build(class_name, config, _do_init=False)
    model.params = torch_params(class_name, config, pt_model)
    inputs = inputs_for(class_name, config)
    labels = labels_for(class_name, config, inputs, np.random.default_rng(3), problem)
    reference = torch_call(pt_model, {**inputs, **labels}).loss.item()
    with jax.disable_jit():
        ours = our_loss(class_name, config, model(**inputs), inputs, labels)
    assert ours.shape == () and ours.dtype == jnp.float32
    assert_close(ours, reference, "loss")


def test_ignore_index_and_qa_clamping_rules():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 5)), jnp.float32)
    labels = np.array([[1, IGNORE, 2, IGNORE], [IGNORE] * 4])
    kept = losses.masked_lm(logits[:1, [0, 2]], labels[:1, [0, 2]])
    np.testing.assert_allclose(losses.masked_lm(logits, labels), kept, rtol=1e-6)
    assert np.isnan(losses.masked_lm(logits, np.full((2, 4), IGNORE)))  # loss.masked_lm.all_ignored
    start, end = logits[..., 0], logits[..., 1]
    clamped = losses.question_answering(start, end, np.array([0, 99]), np.array([1, 4]))
    only_first = (losses.question_answering(start[:1], end[:1], [0], [1])
                  + losses.question_answering(start, end, [0, 0], [1, 4])) / 2
    np.testing.assert_allclose(clamped, (losses.multiple_choice(start[:1], [0]) +
                                         losses.multiple_choice(end[:1], [1])) / 2, rtol=1e-6)
    assert np.isfinite(only_first)


@pytest.mark.parametrize("class_name", list(losses.LOSS_OF_CLASS))
def test_a_few_optax_steps_lower_the_loss(class_name):
    config = tiny_config(class_name, num_hidden_layers=1, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = build(class_name, config)
    inputs = inputs_for(class_name, config)
    labels = labels_for(class_name, config, inputs, np.random.default_rng(5))
    if class_name == "FlaxElectraForQuestionAnswering":
        labels = {"start_positions": np.array([1, 2]), "end_positions": np.array([3, 2])}
    optimizer = optax.adam(3e-2)

    def loss_fn(params):
        return our_loss(class_name, config, model(**inputs, params=params, train=True,
                                                  dropout_rng=jax.random.PRNGKey(0)), inputs, labels)

    @jax.jit
    def step(params, state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    params, state = model.params, optimizer.init(model.params)
    history = []
    for _ in range(6):
        params, state, loss = step(params, state)
        history.append(float(loss))
    assert np.isfinite(history).all()
    assert history[-1] < 0.8 * history[0], history
