"""electra-conformance differences: what one implementation lacks or does differently, from a report."""
from __future__ import annotations

import pytest

from conformance.differences import DifferencesError, markdown
from tests.test_capabilities import BARE


def _result(test, outcome, clauses, failed=(), measurements=(), message=""):
    return {"test_id": test, "test": test, "impl": "bare", "outcome": outcome, "clauses": list(clauses),
            "failed_clauses": list(failed), "measurements": list(measurements), "message": message}


def _document(capabilities=True) -> dict:
    info = {"name": "bare", "framework": "flax", "version": "1.0", "framework_versions": {"jax": "0.4"}}
    if capabilities:
        info["capabilities"] = BARE.as_dict()
    error = {"clause": "architecture.feed_forward", "max_abs_err": 0.031, "atol": 1e-4, "rtol": 1e-4,
             "field": "last_hidden_state"}
    return {
        "run_info": {"implementations": [info], "spec_version": "9", "profile": {"name": "ci"}},
        "results": [
            _result("test_whole_model_recomputed[FlaxElectraModel]", "xfailed", ["architecture.feed_forward"],
                    ["architecture.feed_forward"], [error, dict(error, max_abs_err=0.002)]),
            _result("test_bad_input_raises[FlaxElectraModel-error.x]", "failed", ["error.x"], ["error.x"],
                    message="conformance.checks.ClauseFailure: [error.x] no error was raised"),
            _result("test_output_shapes[FlaxElectraModel]", "passed", ["FlaxElectraModel.output.x"]),
        ],
        "summary": {"validation": {"bare": {"verdict": "NOT OK", "reference_comparisons": 12, "clauses_validated": 3,
                                            "unsupported": {"not supported by bare: flag output_attentions": 7}}}},
        "expectations": {"entries": [{"impl": "bare", "clause": "architecture.feed_*",
                                      "test": "test_whole_model_recomputed[*]",
                                      "reason": "approximate gelu in the feed-forward block"}], "stale": []},
    }


def test_lists_what_it_lacks_what_differs_and_what_failed():
    text = markdown(_document(), "bare")
    assert "verdict: NOT OK: 12 numeric comparisons" in text
    lacks = text.split("## Not offered")[1].split("## Behaves differently")[0]
    assert "`FlaxElectraForMaskedLM`" in lacks and "`FlaxElectraModel`" not in lacks  # classes it lacks only
    assert "`token_type_ids`" in lacks and "`input_ids`" not in lacks
    assert "`output_attentions`" in lacks and "`hidden_states`" in lacks and "`msgpack`" in lacks
    assert "config `hidden_act`: only `'relu'`" in lacks
    row = next(ln for ln in text.splitlines() if ln.startswith("| `architecture.feed_*`"))  # a pattern
    assert "| 1 |" in row and "max abs error 0.031" in row and "approximate gelu" in row  # the worst measured
    assert "`test_bad_input_raises[FlaxElectraModel-error.x]` `error.x`: conformance.checks.ClauseFailure" in text
    assert "- 7 tests: not supported by bare: flag output_attentions" in text


def test_refuses_a_report_that_cannot_answer():
    with pytest.raises(DifferencesError, match="no implementation 'other'"):
        markdown(_document(), "other")
    with pytest.raises(DifferencesError, match="predates declared capabilities"):
        markdown(_document(capabilities=False), "bare")
