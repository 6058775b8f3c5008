"""Dtype and range checks of each head's labels, before any loss is computed (an out-of-range class
index would otherwise give a silent wrong loss on accelerators).

Shape keys: B batch, C choices, S sequence, K num_labels, V vocab_size.
"""
from __future__ import annotations

from impl_tf.call_arguments import CallArguments
from impl_tf.losses import IGNORE_INDEX
from impl_tf.validation import check_integer, check_range, check_shape, is_integer, static_shape


def _input_shape(a: CallArguments) -> tuple:
    if a.input_ids is not None:
        return static_shape(a.input_ids)
    return static_shape(a.inputs_embeds)[:-1]


def check_token_labels(a: CallArguments, classes: int, allow_ignore: bool, allow_float: bool = False) -> None:
    """labels (B,S) in [0, classes) (or -100 when ``allow_ignore``)."""
    labels = a.labels
    if labels is None:
        return
    check_shape("labels", labels, _input_shape(a), "(B, S), the shape of the inputs")
    if not (allow_float and not is_integer(labels)):
        check_integer("labels", labels)
    check_range("labels", labels, 0, classes, f"{classes} classes", allowed=(IGNORE_INDEX,) if allow_ignore else ())


def check_sequence_labels(config, a: CallArguments) -> None:
    """labels (B,) class index, (B,) float regression targets or (B,K) multi-hot targets."""
    labels = a.labels
    if labels is None:
        return
    batch, k = _input_shape(a)[0], config.num_labels
    shape = static_shape(labels)
    batch_ok = len(shape) in (1, 2) and (shape[0] is None or batch is None or shape[0] == batch)
    if not (batch_ok and (len(shape) == 1 or shape[1] in (None, k))):
        raise ValueError(f"labels has shape {shape}, expected (B,) or (B, K) with B = {batch}, K = num_labels = {k}")
    if is_integer(labels) and config.num_labels > 1 and config.problem_type in (None, "single_label_classification"):
        check_range("labels", labels, 0, config.num_labels, "num_labels", allowed=(IGNORE_INDEX,))


def check_choice_labels(a: CallArguments) -> None:
    """labels (B,) in [0, C)."""
    labels = a.labels
    if labels is None:
        return
    check_integer("labels", labels)
    lead = _input_shape(a)
    check_shape("labels", labels, lead[:1], "(B,)")
    if lead[1] is not None:
        check_range("labels", labels, 0, lead[1], "number of choices")


def check_span_positions(a: CallArguments) -> None:
    """start_positions, end_positions (B,) int; values outside the sequence are allowed (clamped, ignored)."""
    batch = _input_shape(a)[:1]
    for name, positions in (("start_positions", a.start_positions), ("end_positions", a.end_positions)):
        if positions is not None:
            check_integer(name, positions)
            check_shape(name, positions, batch, "(B,)")
