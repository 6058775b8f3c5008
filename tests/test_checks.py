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
