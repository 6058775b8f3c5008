"""Turn pytest phase reports into one result per test (what the JSON report lists).

Outcomes: passed, failed, skipped, xfailed (failed as the expectations file says), unexpected_pass
(passed although the expectations file says it fails; counts as a failure).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from conformance.checks import ClauseFailure, TestRecord

#: the impl name of results of this project's own shared code (tests without an adapter: the tokenizer,
#: electra_core's ElectraConfig); no implementation is validated by them
SHARED = "shared"
#: how every skip for a feature the implementation lacks begins (conformance.report counts them)
UNSUPPORTED = "not supported by"


def unsupported(impl: str, *what: str) -> str:
    """The skip reason of features an implementation lacks, e.g. "not supported by mypkg: input head_mask"."""
    return f"{UNSUPPORTED} {impl}: {', '.join(what)}"


@dataclass(frozen=True)
class ItemInfo:
    """Where a conformance test item sits in the matrix."""

    impl: str
    device: str | None
    class_name: str | None
    dtype: str | None
    family: str
    stripped_id: str  # test id without impl and device, what expectation patterns match
    function_name: str


def failed_clauses(excinfo, declared: list) -> list:
    """Clauses a failure is attributed to: those named by ClauseFailures, else every declared clause."""
    if excinfo is None:
        return list(declared)
    found = []

    def walk(err):
        if isinstance(err, ClauseFailure):
            found.append(err.clause)
        for sub in getattr(err, "exceptions", ()) or ():
            walk(sub)

    walk(excinfo.value)
    return list(dict.fromkeys(found)) or list(declared)


_LOCATION = re.compile(r"^\S+:\d+$")  # the "path:line" a failure message starts with


def headline(message: str) -> str:
    """The first informative line of a failure message (skipping the raising location)."""
    return next((ln.strip() for ln in message.splitlines() if ln.strip() and not _LOCATION.match(ln)), "")


def _leaves(err) -> list:
    subs = getattr(err, "exceptions", None)
    return [leaf for sub in subs for leaf in _leaves(sub)] if subs else [err]


def failure_text(report, excinfo=None) -> str:
    """What a failure says (for expectation ``message`` patterns): the error lines of its repr (pytest's
    ``E`` lines, chained exceptions included) and each exception, not the source lines of the traceback (a
    pattern matching the test's own code would match every failure of that test, whatever its cause)."""
    text = getattr(report, "longreprtext", "") or ""
    errors = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    out = "\n".join(errors) if errors else text
    if excinfo is not None:
        out += "\n" + "\n".join(f"{type(e).__name__}: {e}" for e in _leaves(excinfo.value))
    return out


def _message(report, excinfo=None, limit: int = 3000) -> str:
    """The error lines of a failure, prefixed with where it was raised; long texts keep head and tail.
    Exception groups (hypothesis reports several distinct failures so) list each leaf exception."""
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    text = getattr(report, "longreprtext", "") or ""
    lines = [ln for ln in text.splitlines() if ln.startswith("E ")]
    short = "\n".join(ln[1:].strip() for ln in lines) if lines else text
    if excinfo is not None and getattr(excinfo.value, "exceptions", None):
        short = "\n".join(f"{type(e).__name__}: {e}" for e in _leaves(excinfo.value))
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None:
        short = f"{crash.path}:{crash.lineno}\n{short}"
    if len(short) > limit:
        short = short[: limit // 2] + "\n...\n" + short[-limit // 2:]
    return short


class Collector:
    """Accumulates phases per item; ``finish`` is called at teardown."""

    def __init__(self, progress_path: str | None = None):
        self.results: list[dict] = []
        self.pending: dict[str, dict] = {}
        self.progress_path = progress_path
        self.total = 0
        self.failures = 0

    def progress(self, **event) -> None:
        if not self.progress_path:
            return
        with open(self.progress_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def collected(self, total: int) -> None:
        self.total = total
        self.progress(event="collected", total=total)

    def phase(self, item, info: ItemInfo, record: TestRecord, report, call, *, expectation=None,
              outcome: str | None = None) -> None:
        entry = self.pending.setdefault(item.nodeid, {"duration_s": 0.0, "outcome": None, "message": "",
                                                      "failed_clauses": [], "expectation": None})
        entry["duration_s"] += float(report.duration)
        if outcome is None:
            if report.failed:
                outcome = "failed"
            elif report.skipped:
                outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
            elif report.when == "call":
                outcome = "passed"
        if outcome is not None and (entry["outcome"] in (None, "passed") or outcome == "failed"):
            entry["outcome"] = outcome
            if outcome != "passed":
                entry["message"] = _message(report, call.excinfo if report.when == "call" else None)
        if outcome in ("failed", "xfailed") and report.when == "call":
            entry["failed_clauses"] = failed_clauses(call.excinfo, record.clauses)
        if expectation is not None:
            entry["expectation"] = expectation.as_dict()
        if report.when == "teardown":
            self.finish(item, info, record, self.pending.pop(item.nodeid))

    def finish(self, item, info: ItemInfo, record: TestRecord, entry: dict) -> None:
        outcome = entry["outcome"] or "passed"
        if outcome in ("failed", "unexpected_pass"):
            self.failures += 1
        self.results.append({
            "test_id": item.name, "nodeid": item.nodeid, "test": info.stripped_id, "family": info.family,
            "impl": info.impl, "device": info.device or "any", "class_name": info.class_name,
            "dtype": info.dtype or "float32", "clauses": list(record.clauses),
            "failed_clauses": entry["failed_clauses"], "outcome": outcome,
            "duration_s": round(entry["duration_s"], 6), "message": entry["message"],
            "expectation": entry["expectation"], "measurements": list(record.measurements),
            "builds": record.builds, "compilations": record.compilations, "edges": list(record.edges),
        })
        self.progress(event="test", done=len(self.results), total=self.total, family=info.family,
                      impl=info.impl, outcome=outcome, failures=self.failures, test=item.name)
