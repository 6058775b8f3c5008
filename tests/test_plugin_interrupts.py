"""A blocked adapter and a stopped CLI still end in a report (issue 14, items 17 and 18).

- --conformance-test-timeout stops a test whose adapter call blocks: it fails under its clauses, the
  other tests run, the report is written (conformance.timeouts).
- SIGTERM or SIGINT to ``electra-conformance run`` interrupts its pytest processes (which write their
  partial reports), merges them and exits 128 + the signal, leaving no process behind.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from plugin_support import CONFTEST, FAKE_ADAPTER, make_suite, run_suite

BLOCKING_SUITE = '''
import time
import numpy as np
import pytest

def test_quick(adapter, device, check):
    check.that(True, clause="fake.quick", message="always true")

def test_blocked(adapter, device, check, model_cache):
    check.clause("fake.blocked")
    time.sleep(float(__import__("os").environ.get("FAKE_BLOCK_S", "3600")))  # an adapter call that never returns

def test_after(adapter, device, check):
    check.that(True, clause="fake.after", message="always true")
'''


def test_a_blocked_test_is_stopped_and_fails_under_its_clause(pytester):
    make_suite(pytester, BLOCKING_SUITE)
    t0 = time.monotonic()
    result, report = run_suite(pytester, "--conformance-test-timeout", "2")
    assert time.monotonic() - t0 < 60
    outcomes = {r["test"]: r for r in report["results"]}
    assert outcomes["test_quick"]["outcome"] == "passed" and outcomes["test_after"]["outcome"] == "passed"
    blocked = outcomes["test_blocked"]
    assert blocked["outcome"] == "failed" and blocked["failed_clauses"] == ["fake.blocked"]
    assert "time limit of 2 s" in blocked["message"]
    assert result.ret == 1


def test_without_a_limit_nothing_is_stopped(pytester, monkeypatch):
    monkeypatch.setenv("FAKE_BLOCK_S", "1.5")
    make_suite(pytester, BLOCKING_SUITE)
    _, report = run_suite(pytester)
    assert {r["test"]: r["outcome"] for r in report["results"]}["test_blocked"] == "passed"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_cli_stops_its_processes_and_writes_the_partial_report(tmp_path, signum):
    (tmp_path / "fake_adapter.py").write_text(FAKE_ADAPTER)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_suite.py").write_text(BLOCKING_SUITE)
    report = tmp_path / "out" / "r.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    cli = subprocess.Popen(
        [sys.executable, "-m", "conformance.cli", "run", "--impl", "fake_adapter:FakeAdapter", "--tests",
         str(tmp_path), "--report", str(report), "--compile-cache", "none", "--pytest-arg=-p",
         "--pytest-arg=no:cacheprovider"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    output, child = [], None
    deadline = time.monotonic() + 120
    while child is None and time.monotonic() < deadline:
        line = cli.stdout.readline()
        output.append(line)
        match = re.search(r"running \(pid (\d+)\)", line)
        child = int(match.group(1)) if match else None
    assert child is not None, "".join(output)
    progress = tmp_path / "out" / "r.parts" / ".fake_adapter_FakeAdapter.progress"
    while time.monotonic() < deadline and not (progress.exists() and '"done": 1' in progress.read_text()):
        time.sleep(0.2)  # test_quick has finished; test_blocked is running
    time.sleep(1.0)
    cli.send_signal(signum)
    rest, _ = cli.communicate(timeout=90)
    text = "".join(output) + rest
    assert cli.returncode == 128 + signum, text
    assert not _alive(child), f"pytest process {child} outlived the CLI"
    merged = json.loads(report.read_text())
    outcomes = {r["test"]: r["outcome"] for r in merged["results"]}
    assert outcomes.get("test_quick") == "passed", outcomes
    assert "test_after" not in outcomes
    assert "interrupted (SIGINT or SIGTERM)" in merged["run_info"]["narrowed"]
    assert signal.Signals(signum).name in text


def test_a_process_stuck_past_the_deadline_is_stopped_from_outside(tmp_path, monkeypatch, capsys):
    """--deadline with no per-test limit (--test-timeout 0): the blocked test is never stopped inside the
    process, so the CLI interrupts it past deadline + grace and still writes the report."""
    from conformance import cli, runner

    (tmp_path / "fake_adapter.py").write_text(FAKE_ADAPTER)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_suite.py").write_text(BLOCKING_SUITE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.syspath_prepend(str(tmp_path))  # the CLI resolves the adapter itself before it starts pytest
    # the pytest process must reach the blocking test before the CLI interrupts it: on a loaded machine
    # starting pytest and collecting take seconds, so the grace is not cut to the bone
    monkeypatch.setattr(runner, "GRACE_S", 8.0)
    report = tmp_path / "r.json"
    t0 = time.monotonic()
    try:
        status = cli.main(["run", "--impl", "fake_adapter:FakeAdapter", "--tests", str(tmp_path), "--report",
                           str(report), "--deadline", "1", "--test-timeout", "0", "--compile-cache", "none"])
    finally:
        sys.modules.pop("fake_adapter", None)
    assert time.monotonic() - t0 < 60
    out = capsys.readouterr().out
    assert "interrupting (SIGINT" in out and status == 1, out
    merged = json.loads(report.read_text())
    assert {r["test"]: r["outcome"] for r in merged["results"]}["test_quick"] == "passed"
    assert "interrupted (SIGINT or SIGTERM)" in merged["run_info"]["narrowed"]
