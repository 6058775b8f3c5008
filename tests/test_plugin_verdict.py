"""What "OK" means (issue 13): per implementation, the numeric comparisons with the reference that ran,
the clauses validated, the features it lacks; fewer reference comparisons than --min-numeric is NOT
VALIDATED and fails the run, however much passed."""
from __future__ import annotations

from plugin_support import make_suite, run_suite

from conformance import render

SUITE = '''
import numpy as np

def test_scale(adapter, device, check, model_cache):
    handle = model_cache.get("FakeModel", {"hidden_size": 4})
    out = model_cache.run(handle, {"x": np.arange(3.0)})
    check.allclose(out.fields["y"], 2.0 * np.arange(3.0), clause="fake.scale", kind="{kind}", field="y")
    check.allclose(out.fields["y"], out.fields["y"], clause="fake.self", kind="compiled_vs_eager", field="y")

def test_classes(adapter, class_name, dtype, check):
    check.that(class_name.startswith("Fake"), clause="fake.class", message="class names start with Fake")
'''


def test_comparisons_with_the_reference_validate(pytester):
    make_suite(pytester, SUITE.replace("{kind}", "golden"))
    result, report = run_suite(pytester, "--min-numeric", "1")
    v = report["summary"]["validation"]["fake"]
    assert result.ret == 0 and report["summary"]["ok"] and v["verdict"] == "OK"
    assert v["reference_comparisons"] == 1 and v["comparisons_by_kind"] == {"compiled_vs_eager": 1, "golden": 1}
    assert v["clauses_validated"] >= 3 and v["clauses_by_family"]["suite"] == v["clauses_validated"]  # + tolerance ids
    unsupported = v["unsupported"]  # FakeHead computes in float32 only
    assert sum(unsupported.values()) == 2 and all("FakeHead computes in float32 only" in k for k in unsupported)
    lines = render.matrix_lines(report)
    assert any(ln.startswith("fake: OK: 1 numeric comparisons with the reference") for ln in lines)
    assert sum("unsupported (1 tests): not supported by fake: FakeHead" in ln for ln in lines) == 2


def test_a_run_that_compared_nothing_with_the_reference_is_not_validated(pytester):
    make_suite(pytester, SUITE.replace("{kind}", "compiled_vs_eager"))
    result, report = run_suite(pytester, "--min-numeric", "1")
    assert report["summary"]["failed"] == 0  # every test passed ...
    assert report["summary"]["validation"]["fake"]["verdict"] == "NOT VALIDATED"  # ... and nothing was validated
    assert not report["summary"]["ok"] and result.ret != 0
    lines = render.matrix_lines(report)
    assert lines[-1].startswith("NOT VALIDATED:") and any("passing says nothing about its numbers" in ln for ln in lines)
    _, relaxed = run_suite(pytester, "--min-numeric", "0")
    assert relaxed["summary"]["ok"]


def test_the_failures_are_listed_with_clause_and_error(pytester):
    make_suite(pytester, SUITE.replace("{kind}", "golden").replace("2.0 * np.arange", "3.0 * np.arange"))
    _, report = run_suite(pytester, "--min-numeric", "1")
    assert report["summary"]["validation"]["fake"]["verdict"] == "NOT OK"
    lines = render.failure_lines(report)
    assert lines[0] == "FAILED test_scale[fake-cpu] [fake.scale] (failed)"
    assert "max abs error" in lines[1]
