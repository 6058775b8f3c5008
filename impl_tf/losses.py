"""The loss of every head, as the PyTorch reference defines it: a scalar mean over the counted
positions (clause family ``loss.*`` of spec/data/losses.yaml).

Every mean is a sum over the counted positions divided by their count. Under a tf.distribute
strategy with several replicas, Keras' train and test steps run inside ``replica_shares()``: there a
mean divides this replica's sum by the count summed over all replicas, so the replicas' losses (and
gradients) add up to the mean over the whole global batch, as on one device, even when the replicas
hold different numbers of counted positions (a mean of per-replica means would not).

Shape keys: B batch, S sequence, V vocab_size, K num_labels, C choices.
"""
from __future__ import annotations

import contextlib
import threading

import tensorflow as tf

from spec import load_spec

IGNORE_INDEX = load_spec().losses.ignore_index  # -100 (loss.ignore_index)

_sharing = threading.local()  # MirroredStrategy runs each replica's step in its own thread


@contextlib.contextmanager
def replica_shares():
    """Within: each loss computed in a replica context of a strategy with more than one replica is the
    replica's share of the global mean (its sum / the count over all replicas)."""
    before = getattr(_sharing, "active", False)
    _sharing.active = True
    try:
        yield
    finally:
        _sharing.active = before


def replicas_here() -> int:
    """The number of replicas in sync with this replica context (1 in a cross-replica context)."""
    if tf.distribute.in_cross_replica_context():
        return 1
    return tf.distribute.get_replica_context().num_replicas_in_sync


def sharing_replicas() -> int:
    """The number of replicas whose shares make up a loss computed here (1: the loss is a plain mean)."""
    return replicas_here() if getattr(_sharing, "active", False) else 1


def _mean(total: tf.Tensor, count: tf.Tensor) -> tf.Tensor:
    """total / count, where count is summed over the replicas when they share the loss."""
    if sharing_replicas() > 1:
        count = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(count))
    return total / count


def _mean_all(values: tf.Tensor) -> tf.Tensor:
    """The mean of every entry of ``values`` (float32)."""
    if sharing_replicas() > 1:
        return _mean(tf.reduce_sum(values), tf.cast(tf.size(values), values.dtype))
    return tf.reduce_mean(values)


def _mean_cross_entropy(logits: tf.Tensor, labels: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """logits (..., K), labels (...) int, keep (...) bool -> mean CE over kept positions (nan if none)."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    safe = tf.where(keep, labels, tf.zeros_like(labels))
    per_position = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    keep = tf.cast(keep, tf.float32)
    return _mean(tf.reduce_sum(per_position * keep), tf.reduce_sum(keep))


def ignore_index_cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """logits (..., K), labels (...) with -100 = ignored -> scalar mean (masked LM, token classification)."""
    labels = tf.cast(labels, tf.int32)
    return _mean_cross_entropy(logits, labels, tf.not_equal(labels, IGNORE_INDEX))


def causal_lm_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """logits (B,S,V), labels (B,S): position i predicts labels[i + 1]; -100 ignored."""
    return ignore_index_cross_entropy(logits[:, :-1], labels[:, 1:])


def pretraining_loss(logits: tf.Tensor, labels: tf.Tensor, attention_mask: tf.Tensor | None) -> tf.Tensor:
    """logits (B,S), labels (B,S) 1 = replaced; binary cross-entropy averaged over the positions with
    attention_mask == 1 (all positions without a mask)."""
    logits = tf.cast(logits, tf.float32)
    per_position = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits)
    if attention_mask is None:
        return _mean_all(per_position)
    mask = tf.cast(tf.equal(tf.cast(attention_mask, tf.int32), 1), tf.float32)
    mask = mask[:, -tf.shape(logits)[1]:]
    return _mean(tf.reduce_sum(per_position * mask), tf.reduce_sum(mask))


def sequence_classification_problem(config, labels: tf.Tensor) -> str:
    """config.problem_type, or inferred: regression when num_labels == 1, single-label for integer
    labels, multi-label otherwise."""
    if config.problem_type is not None:
        return config.problem_type
    if config.num_labels == 1:
        return "regression"
    return "single_label_classification" if labels.dtype.is_integer else "multi_label_classification"


def sequence_classification_loss(config, logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """logits (B,K); labels (B,) int, (B,) float (regression) or (B,K) multi-hot -> scalar."""
    logits = tf.cast(logits, tf.float32)
    problem = sequence_classification_problem(config, labels)
    if problem == "regression":
        target = tf.cast(labels, tf.float32)
        if config.num_labels == 1:
            return _mean_all(tf.square(tf.reshape(logits, [-1]) - tf.reshape(target, [-1])))
        return _mean_all(tf.square(logits - target))
    if problem == "single_label_classification":
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return ignore_index_cross_entropy(logits, labels)
    return _mean_all(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits))


def multiple_choice_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """logits (B,C), labels (B,) choice index -> scalar mean CE."""
    return ignore_index_cross_entropy(logits, tf.reshape(labels, [-1]))


def question_answering_loss(start_logits, end_logits, start_positions, end_positions) -> tf.Tensor:
    """start/end logits (B,S), positions (B,): positions are clamped to [0, S]; S (outside the sequence)
    is not counted. (CE(start) + CE(end)) / 2."""
    seq = tf.shape(start_logits)[1]

    def one(logits, positions):
        positions = tf.clip_by_value(tf.reshape(tf.cast(positions, tf.int32), [-1]), 0, seq)
        return _mean_cross_entropy(logits, positions, tf.not_equal(positions, seq))

    return (one(start_logits, start_positions) + one(end_logits, end_positions)) / 2.0
