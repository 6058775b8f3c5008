"""The NumPy loss of each losses.yaml head, shared by the losses and combinations families.

Shape keys: B batch, S sequence, K labels, V vocab."""
from __future__ import annotations

import numpy as np

from conformance import numpy_ref as ref
from spec import load_spec

LOSSES = load_spec().raw("losses")
IGNORE = LOSSES["ignore_index"]


def expected_loss(head: str, fields, inputs, config) -> tuple[float, list[str]]:
    """(NumPy loss, the rule clauses it exercises) for losses.yaml head ``head``."""
    rules = [f"loss.{head}", f"loss.{head}.reduction", f"loss.{head}.shape"]
    if head == "pretraining":
        rules.append("loss.pretraining.masked_positions")
        return ref.discriminator_loss(fields["logits"], inputs["labels"], inputs.get("attention_mask")), rules
    if head == "masked_lm":
        rules.append("loss.ignore_index")
        return ref.token_cross_entropy(fields["logits"], inputs["labels"], ignore_index=IGNORE), rules
    if head == "token_classification":
        rules += ["loss.ignore_index", "loss.token_classification.attention_mask_not_used"]
        return ref.token_cross_entropy(fields["logits"], inputs["labels"], ignore_index=IGNORE), rules
    if head == "causal_lm":
        rules += ["loss.ignore_index", "loss.causal_lm.shift"]
        return ref.causal_lm_loss(fields["logits"], inputs["labels"], ignore_index=IGNORE), rules
    if head == "multiple_choice":
        return ref.token_cross_entropy(fields["logits"], inputs["labels"], ignore_index=None), rules
    if head == "question_answering":
        rules.append("loss.question_answering.clamp")
        return ref.question_answering_loss(fields["start_logits"], fields["end_logits"], inputs["start_positions"],
                                           inputs["end_positions"], clamp=True, ignored_when_clamped=True), rules
    if head == "sequence_classification":
        labels = np.asarray(inputs["labels"])
        rules.append("loss.sequence_classification.problem_type_inference")
        problem = config.get("problem_type")
        if problem == "regression" or (problem is None and config["num_labels"] == 1):
            return ref.regression_loss(fields["logits"], labels), rules + ["loss.sequence_classification.regression"]
        if problem == "multi_label_classification" or (problem is None and labels.dtype.kind == "f"):
            return ref.multi_label_loss(fields["logits"], labels), rules + ["loss.sequence_classification.multi_label"]
        return ref.token_cross_entropy(fields["logits"], labels, ignore_index=None), \
            rules + ["loss.sequence_classification.single_label"]
    raise KeyError(f"no NumPy recomputation for loss head {head!r}")
