"""Loss functions of the heads (spec clauses ``loss.*`` of losses.yaml). Flax heads take no labels; these
take the head's logits as the model returns them and give the scalar float32 loss, usable under
jax.grad / jax.jit and with optax.

Shapes: B batch, S sequence, C choices, V vocab, K num_labels.
"""
from __future__ import annotations

import jax.numpy as jnp
import optax

from spec import load_spec

IGNORE_INDEX = load_spec().losses.ignore_index


def _float32(x):
    return jnp.asarray(x).astype(jnp.float32)


def _cross_entropy(logits, labels, ignore_index=IGNORE_INDEX):
    """Mean CE over entries whose label != ignore_index; logits (..., K), labels (...) int. 0/0 is NaN."""
    labels = jnp.asarray(labels)
    counted = jnp.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    safe = jnp.where(counted, labels, 0).astype(jnp.int32)
    per_item = optax.softmax_cross_entropy_with_integer_labels(_float32(logits), safe)
    return jnp.sum(jnp.where(counted, per_item, 0.0)) / jnp.sum(counted)


def pretraining(logits, labels, attention_mask=None):
    """Replaced-token detection: BCE of logits (B, S) vs labels (B, S) in {0, 1}, mean over positions with
    attention_mask == 1 (all positions without a mask). (loss.pretraining)"""
    per_item = optax.sigmoid_binary_cross_entropy(_float32(logits), _float32(labels))
    if attention_mask is None:
        return jnp.mean(per_item)
    counted = jnp.asarray(attention_mask) == 1
    return jnp.sum(jnp.where(counted, per_item, 0.0)) / jnp.sum(counted)


def masked_lm(logits, labels):
    """CE of logits (B, S, V) vs labels (B, S), ignoring -100. (loss.masked_lm)"""
    return _cross_entropy(logits, labels)


def token_classification(logits, labels):
    """CE of logits (B, S, K) vs labels (B, S), ignoring -100; attention_mask is not used.
    (loss.token_classification)"""
    return _cross_entropy(logits, labels)


def causal_lm(logits, labels):
    """Next-token CE: logits (B, S, V) at s predict labels (B, S) at s+1; -100 ignored. (loss.causal_lm)"""
    return _cross_entropy(jnp.asarray(logits)[:, :-1, :], jnp.asarray(labels)[:, 1:])


def multiple_choice(logits, labels):
    """CE of logits (B, C) vs the correct choice labels (B,). (loss.multiple_choice)"""
    return _cross_entropy(logits, labels, ignore_index=None)


def infer_problem_type(num_labels: int, labels) -> str:
    """regression when K == 1; else single-label for integer labels, multi-label for float labels."""
    if num_labels == 1:
        return "regression"
    return "single_label_classification" if jnp.issubdtype(jnp.asarray(labels).dtype, jnp.integer) \
        else "multi_label_classification"


def sequence_classification(logits, labels, problem_type: str | None = None):
    """logits (B, K); labels (B,) int (single label), (B,) / (B, K) float (regression) or (B, K) multi-hot.
    ``problem_type`` (config.problem_type) None infers it (loss.sequence_classification)."""
    logits = _float32(logits)
    problem_type = problem_type or infer_problem_type(logits.shape[-1], labels)
    if problem_type == "regression":
        if logits.shape[-1] == 1:
            return jnp.mean((logits[..., 0] - _float32(labels).reshape(logits.shape[:-1])) ** 2)
        return jnp.mean((logits - _float32(labels)) ** 2)
    if problem_type == "single_label_classification":
        return _cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    if problem_type == "multi_label_classification":
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, _float32(labels)))
    raise ValueError(f"unknown problem_type {problem_type!r}")


def question_answering(start_logits, end_logits, start_positions, end_positions):
    """(CE_start + CE_end) / 2 over logits (B, S); positions (B,) are clamped to [0, S] and S is ignored.
    (loss.question_answering)"""
    seq = jnp.asarray(start_logits).shape[-1]

    def term(logits, positions):
        positions = jnp.clip(jnp.asarray(positions).reshape(-1), 0, seq)
        return _cross_entropy(logits, positions, ignore_index=seq)

    return (term(start_logits, start_positions) + term(end_logits, end_positions)) / 2


#: the loss function of each Flax class, by spec class name (classes.yaml `loss`)
LOSS_OF_CLASS = {c.name: globals()[c.loss] for c in load_spec().classes_for("flax") if c.loss}

__all__ = ["pretraining", "masked_lm", "causal_lm", "token_classification", "multiple_choice",
           "sequence_classification", "question_answering", "infer_problem_type", "LOSS_OF_CLASS"]
