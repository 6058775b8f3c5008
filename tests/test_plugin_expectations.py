"""Expectations files: expected failures pass the run, unexpected passes and failures fail it, stale
entries are reported (pytester, fake adapter)."""
from __future__ import annotations

import pytest
from plugin_support import make_suite, run_suite

from conformance.expectations import ExpectationsError, load_expectations
from conformance.report import validate_report

SUITE = '''
def test_broken(adapter, device, check):
    check.equal(1, 2, clause="fake.broken", what="the answer")

def test_fine(adapter, device, check):
    check.that(True, clause="fake.fine", message="always true")
'''


def expectations(pytester, *entries: tuple[str, str]) -> str:
    lines = ["implementation: fake", "expected_failures:"]
    for clause, test in entries:
        lines += [f"  - clause: {clause}", f"    test: '{test}'", "    reason: 'returns 1; the spec says 2'"]
    path = pytester.path / "expect.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def suite(pytester):
    make_suite(pytester, SUITE)
    return pytester


def outcomes(doc) -> dict:
    return {r["test"]: r["outcome"] for r in doc["results"]}


def test_expected_failure_passes_the_run(suite):
    path = expectations(suite, ("fake.broken", "test_broken"))
    result, doc = run_suite(suite, "--expectations", path)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1, xfailed=1)
    assert outcomes(doc) == {"test_broken": "xfailed", "test_fine": "passed"}
    broken = next(r for r in doc["results"] if r["test"] == "test_broken")
    assert broken["expectation"]["reason"] == "returns 1; the spec says 2"
    assert "the answer" in broken["message"]
    assert doc["clauses"]["fake.broken"]["fake"]["cpu"]["float32"]["outcome"] == "xfailed"
    assert doc["expectations"]["stale"] == []
    validate_report(doc)


def test_unexpected_failure_fails_the_run(suite):
    result, doc = run_suite(suite, "--expectations", "none")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes(doc)["test_broken"] == "failed"
    broken = next(r for r in doc["results"] if r["test"] == "test_broken")
    assert broken["failed_clauses"] == ["fake.broken"]


def test_expectation_for_another_clause_does_not_excuse_a_failure(suite):
    path = expectations(suite, ("fake.fine", "test_broken"))
    result, doc = run_suite(suite, "--expectations", path)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes(doc)["test_broken"] == "failed"


def test_unexpected_pass_fails_the_run(suite):
    path = expectations(suite, ("fake.broken", "test_broken"), ("fake.fine", "test_f*"))
    result, doc = run_suite(suite, "--expectations", path)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert outcomes(doc) == {"test_broken": "xfailed", "test_fine": "unexpected_pass"}
    assert "unexpected pass" in result.stdout.str()
    assert doc["summary"]["ok"] is False
    validate_report(doc)


def test_stale_entry_is_reported_and_fails_only_when_strict(suite):
    path = expectations(suite, ("fake.broken", "test_broken"), ("fake.gone", "test_removed_long_ago"))
    result, doc = run_suite(suite, "--expectations", path)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["WARNING stale expectation*fake.gone @ test_removed_long_ago*"])
    assert [e["clause"] for e in doc["expectations"]["stale"]] == ["fake.gone"]
    result, _ = run_suite(suite, "--expectations", path, "--strict-stale")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_narrowed_run_counts_unmatched_entries_instead_of_calling_them_stale(suite):
    """With -k the entries of the tests it left out match nothing: one note with their count and the
    narrowing, not a warning per entry."""
    path = expectations(suite, ("fake.broken", "test_broken"), ("fake.gone", "test_removed_long_ago"))
    result, doc = run_suite(suite, "--expectations", path, "-k", "test_fine")
    assert result.ret == 0
    out = result.stdout.str()
    assert "WARNING stale expectation" not in out
    result.stdout.fnmatch_lines(["note: 2 expectation entries matched no test of this narrowed run (-k test_fine)*"])


def test_entries_for_skipped_tests_are_not_stale(suite):
    path = expectations(suite, ("fake.broken", "test_broken"))
    result, doc = run_suite(suite, "--expectations", path, "--devices", "gpu")
    assert result.ret == 0 and doc["expectations"]["stale"] == []


def test_malformed_expectations_are_rejected_with_the_entry_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("expected_failures:\n  - clause: x\n    test: t\n")
    with pytest.raises(ExpectationsError, match=r"expected_failures\[0\].*'reason' is required"):
        load_expectations(bad)
    bad.write_text("expected_failures:\n  - {clause: x, test: t, reason: r, colour: red}\n")
    with pytest.raises(ExpectationsError, match="unknown keys"):
        load_expectations(bad)


def test_failure_before_any_clause_matches_on_the_test_pattern(pytester):
    make_suite(pytester, "def test_crash(adapter, device, check):\n    raise KeyError('gelu_fast')\n")
    path = expectations(pytester, ("fake.activation", "test_crash"))
    result, doc = run_suite(pytester, "--expectations", path)
    assert result.ret == 0, result.stdout.str()
    assert outcomes(doc) == {"test_crash": "xfailed"} and "gelu_fast" in doc["results"][0]["message"]


def test_draft_entries_cover_each_failing_test_once():
    from conformance.expectations import draft_entries

    results = [
        {"impl": "x", "test": "test_a[M]", "outcome": "failed", "failed_clauses": ["c.a", "c.b"], "clauses": ["c.a"],
         "message": "/x/t.py:12\n[c.a] wrong\nmore"},
        {"impl": "x", "test": "test_b[M]", "outcome": "failed", "failed_clauses": [], "clauses": [], "message": "boom"},
        {"impl": "x", "test": "test_b[N]", "outcome": "passed", "failed_clauses": [], "clauses": ["c.b"], "message": ""},
        {"impl": "y", "test": "test_c[M]", "outcome": "failed", "failed_clauses": ["c.c"], "clauses": [], "message": ""},
    ]
    assert draft_entries({"results": results}, "x") == [
        {"clause": "c.a", "test": "test_a[M]", "reason": "TODO: [c.a] wrong"},
        {"clause": "c.b", "test": "test_b[M]", "reason": "TODO: boom"}]


def test_exception_group_failures_are_attributed_to_each_clause(pytester):
    make_suite(pytester, "from conformance.checks import ClauseFailure\n"
                         "def test_many(adapter, device, check):\n"
                         "    check.clause('fake.c')\n"
                         "    raise ExceptionGroup('two', [ClauseFailure('fake.a', 'a broke'), ClauseFailure('fake.b', 'b broke')])\n")
    result, doc = run_suite(pytester, "--expectations", "none")
    (entry,) = doc["results"]
    assert entry["failed_clauses"] == ["fake.a", "fake.b"]
    assert "[fake.a] a broke" in entry["message"] and "[fake.b] b broke" in entry["message"]
    assert doc["clauses"]["fake.c"]["fake"]["cpu"]["float32"]["outcome"] == "incomplete"


def test_message_entries_excuse_matching_failures_only_and_never_fail_a_pass(pytester):
    make_suite(pytester, SUITE + "\ndef test_crash(adapter, device, check):\n"
                                 "    check.clause('fake.act')\n    raise KeyError('gelu_fast')\n")
    path = pytester.path / "expect.yaml"
    path.write_text("expected_failures:\n"
                    "  - {clause: '*', test: 'test_*', message: \"KeyError: 'gelu_fast'\", reason: no gelu_fast}\n"
                    "  - {clause: '*', test: 'test_*', message: 'NoSuchError', reason: never happens}\n")
    result, doc = run_suite(pytester, "--expectations", str(path))
    assert outcomes(doc) == {"test_broken": "failed", "test_fine": "passed", "test_crash": "xfailed"}
    assert [e["reason"] for e in doc["expectations"]["stale"]] == ["never happens"]
    bad = pytester.path / "bad.yaml"
    bad.write_text("expected_failures:\n  - {clause: x, test: t, reason: r, message: '(unclosed'}\n")
    with pytest.raises(ExpectationsError, match="not a valid regular expression"):
        load_expectations(bad)


def test_message_entries_match_the_error_not_the_traceback_source(pytester):
    """A pattern that only the test's own source holds (here a name in a comment) must not excuse a failure:
    it would excuse every failure of that test, whatever its cause."""
    make_suite(pytester, "def test_crash(adapter, device, check):\n"
                         "    check.clause('fake.act')\n"
                         "    # distance_embedding: a word of the source, not of the error\n"
                         "    raise TypeError('missing position_ids')\n")
    path = pytester.path / "expect.yaml"
    path.write_text("expected_failures:\n"
                    "  - {clause: '*', test: 'test_*', message: 'distance_embedding', reason: source only}\n")
    result, doc = run_suite(pytester, "--expectations", str(path))
    assert outcomes(doc) == {"test_crash": "failed"}, doc["results"]
    path.write_text("expected_failures:\n"
                    "  - {clause: '*', test: 'test_*', message: 'missing position_ids', reason: the error}\n")
    result, doc = run_suite(pytester, "--expectations", str(path))
    assert outcomes(doc) == {"test_crash": "xfailed"}


def test_wildcards_treat_brackets_literally():
    from conformance.expectations import wildcard_match

    assert wildcard_match("test_x[*]", "test_x[TFElectraModel]")
    assert wildcard_match("test_x[TF?lectra*]", "test_x[TFElectraModel-float16]")
    assert not wildcard_match("test_x[M]", "test_x[N]") and not wildcard_match("test_x", "test_x[M]")


def test_version_ranges_select_entries_by_the_installed_release(pytester):
    """One file for every stack: an entry whose ``versions`` exclude the installed numpy (the fake adapter's
    framework_versions) neither excuses its failure nor is stale there; it is listed as not applicable."""
    import numpy as np

    make_suite(pytester, SUITE)
    path = pytester.path / "expect.yaml"
    path.write_text("expected_failures:\n"
                    f"  - {{clause: fake.broken, test: test_broken, reason: here, versions: {{numpy: '=={np.__version__}'}}}}\n"
                    "  - {clause: fake.fine, test: test_fine, reason: old numpy only, versions: {numpy: '<1.0'}}\n"
                    "  - {clause: fake.gone, test: test_gone, reason: no such package, versions: {not-installed: '>=1'}}\n")
    result, doc = run_suite(pytester, "--expectations", str(path))
    assert result.ret == 0, result.stdout.str()
    assert outcomes(doc) == {"test_broken": "xfailed", "test_fine": "passed"}
    assert doc["expectations"]["stale"] == []
    assert [e["reason"] for e in doc["expectations"]["entries"]] == ["here"]
    assert [e["versions"] for e in doc["expectations"]["not_applicable"]] == [{"numpy": "<1.0"}, {"not-installed": ">=1"}]
    validate_report(doc)
    path.write_text("expected_failures:\n"
                    "  - {clause: fake.broken, test: test_broken, reason: r, versions: {numpy: '<0'}}\n")
    result, doc = run_suite(pytester, "--expectations", str(path))
    assert result.ret == pytest.ExitCode.TESTS_FAILED and outcomes(doc)["test_broken"] == "failed"


def test_version_ranges_are_checked_when_loaded(tmp_path):
    from conformance.expectations import Expectation

    bad = tmp_path / "bad.yaml"
    bad.write_text("expected_failures:\n  - {clause: x, test: t, reason: r, versions: {transformers: 'four'}}\n")
    with pytest.raises(ExpectationsError, match=r"versions\['transformers'\] = 'four' is not a PEP 440"):
        load_expectations(bad)
    bad.write_text("expected_failures:\n  - {clause: x, test: t, reason: r, versions: '>=4'}\n")
    with pytest.raises(ExpectationsError, match="'versions' must be a non-empty mapping"):
        load_expectations(bad)
    entry = Expectation("x", "t", "r", versions=(("tensorflow", "<2.16"), ("transformers", ">=4.37,<4.40")))
    assert entry.applies_to({"transformers": "4.37.2", "tensorflow": "2.15.1"})
    assert not entry.applies_to({"transformers": "4.40.0", "tensorflow": "2.15.1"})  # upper bound excluded
    assert not entry.applies_to({"transformers": "4.37.2", "tensorflow": "2.16.0"})
    assert not entry.applies_to({"transformers": "4.37.2"})  # a named package that is not installed
    assert not entry.applies_to({"transformers": "local-build", "tensorflow": "2.15.1"})
