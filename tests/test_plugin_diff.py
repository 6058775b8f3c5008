"""Report diff (new failures, new passes, drift, run_info), rendering and the CLI (fake adapter)."""
from __future__ import annotations

import copy
import json

import pytest
from plugin_support import make_suite, run_suite

from conformance import cli, render
from conformance.diff import compare, only_impl
from conformance.report import merge_reports, validate_report

SUITE = '''
import numpy as np

def test_scale(adapter, device, check, model_cache):
    handle = model_cache.get("FakeModel", {"hidden_size": 4})
    out = model_cache.run(handle, {"x": np.arange(3.0)})
    check.allclose(out.fields["y"], 2.0 * np.arange(3.0) + 1e-7, clause="fake.scale", kind="logits", field="y")

def test_fine(adapter, device, check):
    check.that(True, clause="fake.fine", message="always true")
'''




_BASELINE: list = []


@pytest.fixture
def old(pytester):
    """A real report of the fake suite (made once per module; each test gets its own copy)."""
    if not _BASELINE:
        make_suite(pytester, SUITE)
        result, doc = run_suite(pytester)
        assert result.ret == 0, result.stdout.str()
        _BASELINE.append(doc)
    return copy.deepcopy(_BASELINE[0])


def result_of(doc, test: str) -> dict:
    return next(r for r in doc["results"] if r["test"] == test)


def cell(doc, clause: str) -> dict:
    return doc["clauses"][clause]["fake"]["cpu"]["float32"]


def test_identical_reports_have_no_regressions(old):
    diff = compare(old, copy.deepcopy(old))
    assert diff.regressions == 0 and not diff.new_passes and not diff.status_changes and not diff.run_info


def test_new_failure_is_a_regression(old):
    new = copy.deepcopy(old)
    result_of(new, "test_fine").update(outcome="failed", message="[fake.fine] broke")
    diff = compare(old, new)
    assert [k for k, *_ in diff.new_failures] == ["suite::test_fine[fake-cpu]"] and diff.regressions == 1


def test_new_pass_is_reported_and_not_a_regression(old):
    before = copy.deepcopy(old)
    result_of(before, "test_fine")["outcome"] = "failed"
    diff = compare(before, old)
    assert [k for k, *_ in diff.new_passes] == ["suite::test_fine[fake-cpu]"] and diff.regressions == 0


def test_drift_past_the_ratio_is_a_regression_even_when_passing(old):
    new = copy.deepcopy(old)
    err = cell(old, "fake.scale")["max_abs_err"]
    assert err > 0
    cell(new, "fake.scale")["max_abs_err"] = 1.5 * err
    assert compare(old, new, drift_ratio=2.0).drift == []
    cell(new, "fake.scale")["max_abs_err"] = 3 * err
    diff = compare(old, new, drift_ratio=2.0)
    assert [k for k, *_ in diff.drift] == ["fake.scale [fake/cpu/float32]"] and diff.regressions == 1
    assert compare(old, new, drift_ratio=2.0, drift_floor=1.0).drift == []  # below the floor: noise


def test_run_info_and_lost_passes(old):
    new = copy.deepcopy(old)
    new["run_info"]["implementations"][0]["version"] = "0.1-fake"
    new["results"] = [r for r in new["results"] if r["test"] != "test_fine"]
    diff = compare(old, new)
    assert ("fake.version", "0.0-fake", "0.1-fake") in diff.run_info
    assert len(diff.lost_passes) == 1 and diff.regressions == 0
    assert compare(old, new, strict=True).regressions == 1


def test_cli_diff_exit_codes_and_output(old, tmp_path, capsys):
    new = copy.deepcopy(old)
    result_of(new, "test_fine")["outcome"] = "failed"
    paths = [tmp_path / "old.json", tmp_path / "new.json"]
    for path, doc in zip(paths, (old, new)):
        path.write_text(json.dumps(doc))
    assert cli.main(["diff", str(paths[0]), str(paths[0])]) == 0
    assert cli.main(["diff", str(paths[0]), str(paths[1])]) == 1
    out = capsys.readouterr().out
    assert "NEW FAILURES (1)" in out and "suite::test_fine[fake-cpu]: passed -> failed" in out


def test_render_and_merge(old, tmp_path):
    other = copy.deepcopy(old)
    other["run_info"]["implementations"][0]["name"] = "fake2"
    for r in other["results"]:
        r["impl"] = "fake2"
    merged = merge_reports([old, other])
    validate_report(merged)
    header, _ = render.matrix_rows(merged)
    assert header == ["family", "fake/cpu", "fake2/cpu"]
    assert compare(old, only_impl(merged, "fake")).regressions == 0
    assert {r["impl"] for r in only_impl(merged, "fake2")["results"]} == {"fake2"}
    assert "| suite | p2; err 1e-07 (0.1 of tol) | p2; err 1e-07 (0.1 of tol) |" in render.markdown(merged)
    out = tmp_path / "r.html"
    (tmp_path / "r.json").write_text(json.dumps(merged))
    assert cli.main(["render", str(tmp_path / "r.json"), "-o", str(out)]) == 0
    assert "<table>" in out.read_text() and "fake2/cpu" in out.read_text()


def test_cli_run_writes_merged_report_and_rendered_views(pytester, capsys):
    make_suite(pytester, SUITE)
    report = pytester.path / "out" / "conformance.json"
    rc = cli.main(["run", "--impl", "fake_adapter:FakeAdapter", "--tests", str(pytester.path / "test_suite.py"),
                   "--report", str(report), "--pytest-arg=-Wignore::pytest.PytestAssertRewriteWarning"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads(report.read_text())
    validate_report(doc)
    assert doc["summary"]["passed"] == 2
    assert report.with_suffix(".md").exists() and report.with_suffix(".html").exists()
    assert (pytester.path / "out" / "conformance.parts" / "fake_adapter_FakeAdapter.json").exists()
    assert "ELECTRA conformance matrix" in out and "[fake_adapter:FakeAdapter] 2/2 tests" in out
    assert f"report: {report}" in out


def test_cli_baseline_keeps_one_implementation(old, tmp_path):
    other = copy.deepcopy(old)
    other["run_info"]["implementations"][0]["name"] = "fake2"
    for r in other["results"]:
        r["impl"] = "fake2"
    (tmp_path / "m.json").write_text(json.dumps(merge_reports([old, other])))
    out = tmp_path / "base.json"
    assert cli.main(["baseline", str(tmp_path / "m.json"), "--impl", "fake2", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    validate_report(doc)
    assert {r["impl"] for r in doc["results"]} == {"fake2"} and doc["summary"]["total"] == 2
    assert cli.main(["baseline", str(tmp_path / "m.json"), "--impl", "nope", "-o", str(out)]) == 1


def test_cli_run_takes_comma_separated_implementations(capsys):
    # "--impl tf,flax" names two implementations, like "--impl tf --impl flax": an expectations
    # PATH (which fits only one) is refused before anything runs
    for impls in (["--impl", "tf,flax"], ["--impl", "tf", "--impl", "flax"]):
        assert cli.main(["run", *impls, "--expectations", "some.yaml"]) == 2
        assert "applies to a single --impl" in capsys.readouterr().out
