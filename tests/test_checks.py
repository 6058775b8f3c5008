"""conformance.checks.Checker: ``within`` decides as ``allclose`` does, and records nothing."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conformance.checks import Checker, ClauseFailure, TestRecord as Record


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(-4, 4, width=32), min_size=1, max_size=6),
       scale=st.sampled_from([0.0, 5e-5, 1e-4, 2e-4, 1e-2]), nan_at=st.sampled_from([None, "both", "one"]))
def test_within_agrees_with_allclose_and_records_nothing(values, scale, nan_at):
    expected = np.array(values, np.float32)
    actual = expected + scale * np.linspace(-1, 1, expected.size, dtype=np.float32)
    if nan_at is not None:
        expected[0] = np.nan
        actual[0] = np.nan if nan_at == "both" else 0.0
    quiet, loud = Checker(Record()), Checker(Record())
    decided = quiet.within(actual, expected, kind="golden", field="logits")
    assert quiet.record.clauses == [] and quiet.record.measurements == []
    try:
        loud.allclose(actual, expected, clause="c", kind="golden", field="logits")
        passed = True
    except ClauseFailure:
        passed = False
    assert decided == passed


def test_within_is_false_for_another_shape():
    assert not Checker(Record()).within(np.zeros(3), np.zeros(4), kind="golden")
    with pytest.raises(ClauseFailure, match="shape"):
        Checker(Record()).allclose(np.zeros(3), np.zeros(4), clause="c", kind="golden")


def test_raises_records_each_edge_and_the_report_lists_met_and_missed_per_clause():
    from conformance.report import error_edges

    check = Checker(Record())
    with check.raises(ValueError, clause="error.x", words=("bound",), edge="at the bound"):
        raise ValueError("past the bound")
    with pytest.raises(ClauseFailure, match="nothing was raised"):
        with check.raises(ValueError, clause="error.x", edge="below zero"):
            pass
    with pytest.raises(ClauseFailure, match="lacks"):
        with check.raises(ValueError, clause="error.y", words=("vocab_size",), edge="rank 1"):
            raise ValueError("bad rank")
    with check.raises(ValueError, clause="error.z"):  # no edge named: nothing to report
        raise ValueError("z")
    assert check.record.edges == [{"clause": "error.x", "edge": "at the bound", "met": True},
                                  {"clause": "error.x", "edge": "below zero", "met": False},
                                  {"clause": "error.y", "edge": "rank 1", "met": False}]
    other = [{"clause": "error.x", "edge": "below zero", "met": True}, {"clause": "error.x", "edge": "past", "met": True}]
    results = [{"impl": "a", "edges": check.record.edges}, {"impl": "a", "edges": other}, {"impl": "b"}]
    assert error_edges(results) == {"a": {"error.x": {"met": ["at the bound", "past"], "missed": ["below zero"]},
                                          "error.y": {"met": [], "missed": ["rank 1"]}}}


@pytest.mark.parametrize("listing", [
    "Arguments received by TFElectraModel.call():\n  • input_ids=[[1, 2], [3]]\n  • attention_mask=None",  # Keras 3
    "Call arguments received by layer 'electra' (type TFElectraMainLayer):\n  • input_ids=tf.Tensor(shape=(3,))",
])  # tf-keras
def test_an_argument_named_only_in_keras_listing_of_the_call_is_not_named(listing):
    """Keras appends every argument of the failing call to the message: the word check reads the error's own
    text, so an error that names none (numpy's inhomogeneous shape) lacks the argument."""
    check = Checker(Record())
    own = "Exception encountered when calling X.call().\n\nsetting an array element with a sequence.\n\n"
    with pytest.raises(ClauseFailure, match="lacks \\['input_ids'\\]"):
        with check.raises(ValueError, clause="error.input.ragged", words=("input_ids",)):
            raise ValueError(own + listing)
    with check.raises(ValueError, clause="error.input.ragged", words=("input_ids",)):  # the error's own words
        raise ValueError(own.replace("setting", "input_ids: setting") + listing)
