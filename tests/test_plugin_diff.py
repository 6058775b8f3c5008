"""Report diff (new failures, new passes, drift, run_info), rendering and the CLI (fake adapter)."""
from __future__ import annotations

import copy
import json

import pytest
from plugin_support import make_suite, run_suite

from conformance import cli, render
from conformance.diff import compare, drift_gate, format_diff, only_impl
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


def test_drift_is_judged_by_the_spec_gate_ratio_and_share_of_the_allowance(old):
    """tolerance.regression.drift: grew more than `ratio` times AND uses more than `fraction` of the
    allowance. Another CPU's kernels move errors by a few percent of the allowance: not a regression."""
    gate = drift_gate()
    assert (gate.ratio, gate.fraction) == (2.0, 0.25)  # spec/data/tolerances.yaml regression
    new = copy.deepcopy(old)
    err = cell(old, "fake.scale")["max_abs_err"]
    assert err > 0 and cell(old, "fake.scale")["max_error_ratio"] == pytest.approx(0.1)
    cell(new, "fake.scale").update(max_abs_err=1.5 * err, max_error_ratio=0.9)  # near the tolerance, not grown 2x
    assert compare(old, new).drift == []
    cell(new, "fake.scale").update(max_abs_err=3 * err, max_error_ratio=0.12)  # grown 3x, still 12% of the allowance
    assert compare(old, new).drift == [] and compare(old, new).regressions == 0
    cell(new, "fake.scale").update(max_abs_err=3 * err, max_error_ratio=0.3)
    diff = compare(old, new)
    assert [k for k, *_ in diff.drift] == ["fake.scale [fake/cpu/float32]"] and diff.regressions == 1
    assert compare(old, new, gate=drift_gate(fraction=0.5)).drift == []  # a looser gate given on the command line
    assert compare(old, new, gate=drift_gate(ratio=4.0)).drift == []
    del cell(new, "fake.scale")["max_error_ratio"]  # a report whose cells predate the ratio: abs error / atol
    assert [k for k, *_ in compare(old, new, gate=drift_gate(fraction=1e-9)).drift] == ["fake.scale [fake/cpu/float32]"]


def test_the_issue_12_cross_machine_moves_are_not_regressions(old):
    """The two drifts an AVX-512 machine showed against the AVX2 baselines (issue 12), as clause cells."""
    for old_err, new_err, atol in ((3.52e-7, 1.13e-6, 1e-4), (9.54e-7, 2.38e-6, 2e-5)):
        before, after = copy.deepcopy(old), copy.deepcopy(old)
        cell(before, "fake.scale").update(max_abs_err=old_err, atol=atol, rtol=0.0, max_error_ratio=old_err / atol)
        cell(after, "fake.scale").update(max_abs_err=new_err, atol=atol, rtol=0.0, max_error_ratio=new_err / atol)
        after["run_info"]["machine"] = {**before["run_info"]["machine"], "isa": ["avx512f"], "cpu": "other"}
        diff = compare(before, after)
        assert diff.regressions == 0 and diff.drift == []
        assert ("machine.cpu", before["run_info"]["machine"]["cpu"], "other") in diff.run_info
        text = "\n".join(format_diff(diff, drift_gate()))
        assert "machine.isa" in text and "another CPU or instruction-set limit" in text


def test_report_records_the_machine(old):
    machine = old["run_info"]["machine"]
    assert set(machine) == {"cpu", "cpu_count", "isa", "isa_limits", "gpus"}
    assert machine["cpu_count"] >= 1 and isinstance(machine["isa"], list)


def test_cpuinfo_flags_and_isa_limits_are_read(tmp_path, monkeypatch):
    from conformance import machine

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n"
                    "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n")
    assert machine._cpuinfo(info) == ("Test CPU 9000", ["sse4_2", "avx", "avx2", "fma", "avx512f"])
    assert machine._cpuinfo(tmp_path / "absent") == ("", [])
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=SSE4_2")
    limits = machine.machine_info()["isa_limits"]
    assert limits["ATEN_CPU_CAPABILITY"] == "default" and limits["XLA_FLAGS"] == "--xla_cpu_max_isa=SSE4_2"


def test_run_info_and_lost_passes(old):
    """A test that passed in the old report and is gone or skipped in the new one is a regression,
    unless the new run recorded that it was narrowed on purpose (then --strict still counts it)."""
    new = copy.deepcopy(old)
    new["run_info"]["implementations"][0]["version"] = "0.1-fake"
    new["results"] = [r for r in new["results"] if r["test"] != "test_fine"]
    diff = compare(old, new)
    assert ("fake.version", "0.0-fake", "0.1-fake") in diff.run_info
    assert len(diff.lost_passes) == 1 and diff.regressions == 1 and not diff.narrowed
    assert "[regressions]" in "\n".join(format_diff(diff, drift_gate()))
    skipped = copy.deepcopy(old)
    result_of(skipped, "test_fine")["outcome"] = "skipped"
    assert compare(old, skipped).regressions == 1
    new["run_info"]["narrowed"] = ["-k scale"]
    diff = compare(old, new)
    assert len(diff.lost_passes) == 1 and diff.regressions == 0 and diff.narrowed == ["-k scale"]
    text = "\n".join(format_diff(diff, drift_gate()))
    assert "not regressions: the new run was narrowed" in text and "narrowed: -k scale" in text
    assert compare(old, new, strict=True).regressions == 1
    new["run_info"]["narrowed"] = []
    new["run_info"]["profile"] = {**new["run_info"]["profile"], "name": "dev"}
    diff = compare(old, new)
    assert diff.narrowed == [f"profile dev (the old report: {old['run_info']['profile']['name']})"]
    assert diff.regressions == 0


def test_a_narrowed_run_lists_the_first_lost_passes_and_a_counted_run_lists_all():
    from conformance.diff import NARROWED_SHOWN, Diff

    lost = [(f"fake/cpu/test_{i}", "passed", None) for i in range(NARROWED_SHOWN + 5)]
    narrowed = "\n".join(format_diff(Diff(lost_passes=lost, narrowed=["-k x"]), drift_gate()))
    assert f"(passed -> skipped/absent) [not regressions: the new run was narrowed] ({len(lost)})" in narrowed
    assert "test_9:" in narrowed and f"test_{NARROWED_SHOWN}:" not in narrowed and "... and 5 more" in narrowed
    counted = "\n".join(format_diff(Diff(lost_passes=lost), drift_gate()))
    assert f"test_{NARROWED_SHOWN + 4}:" in counted and "... and" not in counted


def test_a_run_records_how_it_was_narrowed(pytester):
    """The report's run_info.narrowed says -k/-m/--deselect/-x and selected modules; a whole run says nothing."""
    make_suite(pytester, SUITE)
    _, whole = run_suite(pytester)
    assert whole["run_info"]["narrowed"] == []
    _, narrowed = run_suite(pytester, "-k", "scale", "-x")
    assert narrowed["run_info"]["narrowed"] == ["-k scale", "stops at failure 1 (-x/--maxfail)"]
    assert len(narrowed["results"]) < len(whole["results"])
    assert compare(whole, narrowed).regressions == 0 and compare(whole, narrowed, strict=True).regressions == 1


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
                   "--report", str(report), "--min-numeric", "0",  # the fake suite compares with no reference
                   "--pytest-arg=-Wignore::pytest.PytestAssertRewriteWarning"])
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
        assert "applies to a single --impl" in capsys.readouterr().err


@pytest.mark.parametrize("content, words", [
    (b"", "is not a JSON report"),
    (b'{"report_format": 1, "run_info": {', "is not a JSON report"),
    (b"\x00\xff\xfe binary", "is not a JSON report"),
    (b"[1, 2, 3]", "is not a conformance report: at the top level"),
    (b'{"report_format": 1}', "is not a conformance report"),
])
def test_cli_unusable_reports_are_one_line_errors_with_exit_2(old, tmp_path, capsys, content, words):
    good, bad = tmp_path / "old.json", tmp_path / "bad.json"
    good.write_text(json.dumps(old))
    bad.write_bytes(content)
    for argv in (["diff", str(good), str(bad)], ["diff", str(bad), str(good)], ["render", str(bad)],
                 ["coverage", str(bad)], ["baseline", str(bad), "--impl", "fake", "-o", str(tmp_path / "b.json")]):
        assert cli.main(argv) == 2, argv  # 1 means regressions: never for a file that is not a report
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(bad) in err and words in err and "Traceback" not in err, err
    assert cli.main(["diff", str(good), str(tmp_path / "absent.json")]) == 2
    assert "cannot read the report" in capsys.readouterr().err


def test_cli_paths_it_cannot_write_are_one_line_errors(old, tmp_path, capsys):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(old))
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert cli.main(["render", str(report), "-o", str(tmp_path / "missing" / "r.html")]) == 2
    assert "the folder" in capsys.readouterr().err
    assert cli.main(["render", str(report), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert cli.main(["run", "--impl", "flax", "--report", str(a_file / "r.json")]) == 2
    assert "cannot create the folder" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_cli_run_without_an_implementation_is_a_usage_error(value, capsys):
    assert cli.main(["run", "--impl", value]) == 2
    assert "--impl names no implementation" in capsys.readouterr().err


def test_cli_run_names_each_implementation_once(capsys):
    assert cli.implementations(["flax,flax", "tf", "flax"]) == ["flax", "tf"]
    assert "more than once" in capsys.readouterr().err
    assert cli.implementations(None) == ["tf", "flax"]


def test_cli_run_refuses_a_target_that_is_not_an_adapter_in_one_line(capsys):
    for target, words in (("subprocess:Popen", "creating the adapter subprocess:Popen failed"),
                          ("collections:OrderedDict", "is not an adapter"), ("no_such_module_xyz:A", "no module named")):
        assert cli.main(["run", "--impl", target]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and err.count("\n") == 0 and "INTERNALERROR" not in err, err


def test_a_target_that_is_not_an_adapter_is_a_named_error():
    from conformance.registry import AdapterError, resolve_adapter

    with pytest.raises(AdapterError, match=r"subprocess:Popen failed: TypeError"):
        resolve_adapter("subprocess:Popen")
    with pytest.raises(AdapterError, match="is not an adapter"):
        resolve_adapter("collections:OrderedDict")
