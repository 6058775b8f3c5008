"""Family 6, losses (losses.yaml): the loss an implementation returns equals a NumPy recomputation
from the logits it returned and the labels — definition, reduction, scalar shape, ignore index,
QA clamping, the sequence-classification problem types, the discriminator's attention-mask
weighting and the causal shift.

TF classes compute the loss in ``call`` (labels among the inputs). Flax classes take no labels;
their losses are standalone functions (loss.flax_functions), reached through the optional adapter
method ``loss(handle, outputs, inputs) -> array`` (outputs: the RunResult fields; inputs: the label
arguments plus attention_mask)."""
from __future__ import annotations

import builtins

import numpy as np
import pytest
from hypothesis import given, strategies as st

from conformance import numpy_ref as ref
from conformance import strategies as S
from conformance.tests._helpers import REFERENCE_KIND, build, examples, run, spec_class
from conformance.tests._losses import LOSSES, IGNORE, expected_loss
from spec import load_spec

def _loss_of(adapter, caps, model_cache, handle, class_name, inputs):
    """(outputs fields, loss) — from the call for TF, from adapter.loss for Flax."""
    sc = spec_class(class_name)
    label_names = set(LOSSES["losses"][sc.loss]["labels"])
    if adapter.framework == "tf":
        fields = run(model_cache, handle, inputs).fields
        return fields, fields.get("loss")
    caps.skip_unless("method:loss")  # loss.<head> is checked on the TF classes through their loss output
    fields = run(model_cache, handle, {k: v for k, v in inputs.items() if k not in label_names}).fields
    loss_inputs = {k: v for k, v in inputs.items() if k in label_names or k == "attention_mask"}
    return fields, adapter.loss(handle, fields, loss_inputs)


def _head(class_name: str) -> str:
    head = spec_class(class_name).loss
    if head is None:
        pytest.skip(f"the spec gives {class_name} no loss")
    return head


#: decisions.yaml ids whose decided behaviour the loss recomputation checks, by loss head and framework
#: (None: both): the returned loss must exist and equal the reference definition.
_LOSS_DECISIONS = {
    ("pretraining", "tf"): "decision.tf_pretraining_loss",
    ("sequence_classification", "tf"): "decision.tf_sequence_classification_loss",
    ("causal_lm", "tf"): "decision.tf_causal_lm_extension",
}


def _decisions(head: str, framework: str) -> list[str]:
    return [d for (h, fw), d in _LOSS_DECISIONS.items() if h == head and fw in (None, framework)]


#: the problem types of loss.sequence_classification, each checked in every example of that head
_PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")


@examples(3)
@given(data=st.data())
def test_loss_equals_numpy_recomputation(check, adapter, caps, class_name, model_cache, data):
    head = _head(class_name)
    if head == "sequence_classification":
        pytest.skip("checked once per problem type by test_sequence_classification_problem_types")
    _check_loss(check, adapter, caps, class_name, model_cache, data, head, None)


@examples(1)
@given(data=st.data())
def test_sequence_classification_problem_types(check, adapter, caps, class_name, model_cache, data):
    """Each example checks every problem type of loss.sequence_classification (regression,
    single-label, multi-label), so none depends on what a draw happens to pick."""
    head = _head(class_name)
    if head != "sequence_classification":
        pytest.skip(f"problem types bind loss.sequence_classification, not loss.{head}")
    for problem in _PROBLEM_TYPES:
        _check_loss(check, adapter, caps, class_name, model_cache, data, head, problem)


def _check_loss(check, adapter, caps, class_name, model_cache, data, head, problem) -> None:
    overrides = {"num_labels": 1} if problem == "regression" else {}
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "attention_mask", "token_type_ids"),
                             overrides=overrides))
    cfg = case.config
    if problem is not None and problem != "regression" and cfg["num_labels"] == 1:
        cfg = dict(cfg, num_labels=2)  # a classification problem needs two labels at least
    case.inputs.update(S.draw_labels(data.draw, class_name, cfg, case.lead, case.dims["seq"], problem_type=problem))
    handle = build(model_cache, class_name, cfg)
    fields, loss = _loss_of(adapter, caps, model_cache, handle, class_name, case.inputs)
    expected, rules = expected_loss(head, fields, case.inputs, cfg)
    check.clause(*rules, "loss.scalar", "decision.loss_shape", *_decisions(head, adapter.framework))
    if adapter.framework == "flax":
        check.clause("loss.flax_functions")  # the standalone function of the head computed this loss
    check.that(loss is not None, clause=f"loss.{head}", message="labels were given but no loss was returned")
    check.equal(np.shape(loss), (), clause="loss.scalar", what="loss shape")
    check.that(np.asarray(loss).dtype == np.float32, clause="loss.float32",
               message=f"loss dtype {np.asarray(loss).dtype}, expected float32")
    check.allclose(loss, expected, clause=f"loss.{head}", kind=REFERENCE_KIND, field="loss")
    if head == "question_answering":
        positions = np.concatenate([case.inputs["start_positions"], case.inputs["end_positions"]])
        if np.any((positions < 0) | (positions >= case.dims["seq"])):  # the loss above clamped them
            check.clause("decision.qa_clamping")
    if head == "question_answering" and adapter.framework == "tf":
        _, half = _loss_of(adapter, caps, model_cache, handle, class_name,
                           {k: v for k, v in case.inputs.items() if k != "end_positions"})
        check.that(half is None, clause="loss.question_answering.both_required",
                   message=f"start_positions alone gave loss {half!r}; the spec needs both positions")


@examples(2)
@given(data=st.data())
def test_ignored_labels_do_not_count(check, adapter, caps, class_name, model_cache, data):
    """Labels of -100 everywhere but one position give exactly that position's cross-entropy; -100
    everywhere gives NaN for the masked LM (loss.masked_lm.all_ignored)."""
    head = _head(class_name)
    if head not in ("masked_lm", "token_classification", "causal_lm"):
        pytest.skip(f"loss.ignore_index does not apply to loss.{head}")
    case = data.draw(S.cases(caps, class_name, args=("input_ids",)))
    handle = build(model_cache, class_name, case.config)
    labels = S.draw_labels(data.draw, class_name, case.config, case.lead, case.dims["seq"])["labels"]
    keep = (0, 1) if head == "causal_lm" else (0, 0)  # the causal loss reads labels from position 1
    single = np.full_like(labels, IGNORE)
    single[keep] = max(int(labels[keep]), 0)
    fields, loss = _loss_of(adapter, caps, model_cache, handle, class_name, dict(case.inputs, labels=single))
    logits = np.asarray(fields["logits"])
    at = (keep[0], keep[1] - 1) if head == "causal_lm" else keep
    expected = ref.cross_entropy_terms(logits[at][None], np.asarray([single[keep]]))[0]
    check.allclose(loss, expected, clause="loss.ignore_index", kind=REFERENCE_KIND, field="loss")
    if head == "masked_lm":
        _, nan_loss = _loss_of(adapter, caps, model_cache, handle, class_name,
                               dict(case.inputs, labels=np.full_like(labels, IGNORE)))
        check.that(bool(np.isnan(nan_loss)), clause="loss.masked_lm.all_ignored",
                   message=f"every label -100 gave loss {nan_loss!r}; the spec says NaN")


@examples(1)
@given(data=st.data())
def test_pretraining_labels_have_no_ignore_index(check, adapter, caps, class_name, model_cache, data):
    """loss.pretraining.no_ignore_index: a pretraining label of -100 is not skipped but rejected like
    any label outside {0, 1} (error.labels.out_of_range naming labels and the value)."""
    if spec_class(class_name).loss != "pretraining":
        pytest.skip(f"loss.pretraining.no_ignore_index binds the pretraining head, not {class_name}")
    if adapter.framework != "tf":
        pytest.skip("Flax heads take no labels (loss.flax_functions); checked on the TF class")
    error = load_spec().errors["error.labels.out_of_range"]
    clause = "loss.pretraining.no_ignore_index"
    case = data.draw(S.cases(caps, class_name, args=("input_ids", "attention_mask"), buckets=(0,)))
    labels = S.draw_labels(data.draw, class_name, case.config, case.lead, case.dims["seq"])["labels"]
    labels.flat[0] = IGNORE
    handle = build(model_cache, class_name, case.config)
    exception = load_spec().exceptions.get(error.exception)
    expected_type = getattr(builtins, exception.base if exception else error.exception)
    with check.raises(expected_type, clause=clause, words=("labels", str(IGNORE))):
        fields, loss = _loss_of(adapter, caps, model_cache, handle, class_name, dict(case.inputs, labels=labels))
        check.that(False, clause=clause, message=f"a -100 label gave loss {loss!r} instead of an error")
