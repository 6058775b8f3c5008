"""The JSON report: run_info, per-test results, per-clause and per-family views, coverage, expectations.

``report.schema.json`` (beside this file) is its JSON Schema; ``validate_report`` checks a document.
Reports of several runs (one per implementation, see the CLI) merge with ``merge_reports``; the parts of
one run split over processes (shards, xdist workers) join in ``conformance.shards``.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
import time
from pathlib import Path

import pytest

from conformance.machine import machine_info
from conformance.pairs import summary as pair_summary
from conformance.results import SHARED, UNSUPPORTED

SCHEMA_PATH = Path(__file__).parent / "report.schema.json"
REPORT_FORMAT = 1
#: worst first: the outcome that represents a group of results
OUTCOME_ORDER = ("failed", "unexpected_pass", "incomplete", "xfailed", "passed", "skipped")
COUNTED = ("passed", "failed", "skipped", "xfailed", "unexpected_pass")


def worst(outcomes) -> str:
    outcomes = list(outcomes)
    return min(outcomes, key=OUTCOME_ORDER.index) if outcomes else "skipped"


def spec_clause_ids() -> list[str]:
    """Every clause id the spec defines."""
    from spec import load_spec

    return sorted(load_spec().clauses())


def spec_version() -> str:
    from spec import load_spec

    return load_spec().version


def _safe(fn, default):
    try:
        return fn()
    except Exception as err:  # noqa: BLE001 - a report must still be written
        return default if default is not None else f"unavailable: {err}"


def by_clause(results: list[dict]) -> dict:
    """clause -> impl -> device -> dtype -> {outcome, tests, max_abs_err, max_rel_err, atol, rtol,
    max_error_ratio}."""
    table: dict = {}
    for r in results:
        for clause in r["clauses"]:
            if r["outcome"] in ("failed", "xfailed") and r["failed_clauses"] and clause not in r["failed_clauses"]:
                outcome = "incomplete"  # the test stopped at another clause's failure
            else:
                outcome = r["outcome"]
            cell = table.setdefault(clause, {}).setdefault(r["impl"], {}).setdefault(r["device"], {}).setdefault(
                r["dtype"], {"outcome": outcome, "tests": [], "max_abs_err": None, "max_rel_err": None,
                             "atol": None, "rtol": None, "max_error_ratio": None})
            cell["outcome"] = worst([cell["outcome"], outcome])
            cell["tests"].append(r["test_id"])
            for m in (m for m in r["measurements"] if m["clause"] == clause):
                if cell["max_abs_err"] is None or m["max_abs_err"] > cell["max_abs_err"]:
                    cell.update(max_abs_err=m["max_abs_err"], max_rel_err=m["max_rel_err"],
                                atol=m["atol"], rtol=m["rtol"])
                ratio = m.get("error_ratio")
                if ratio is not None and (cell["max_error_ratio"] is None or ratio > cell["max_error_ratio"]):
                    cell["max_error_ratio"] = ratio  # share of the allowance used: what drift is judged by
    return table


def error_edges(results: list[dict]) -> dict:
    """impl -> error clause -> {met, missed}: the edges of each clause's condition that a test tried (the
    errors family tries every edge: just past a bound, further past it, below it, each wrong shape) and
    whether the call raised as specified there. A test that stops at a missed edge tries no later one."""
    table: dict = {}
    for r in results:
        for e in r.get("edges", ()):
            cell = table.setdefault(r["impl"], {}).setdefault(e["clause"], {"met": [], "missed": []})
            side = cell["met" if e["met"] else "missed"]
            if e["edge"] not in side:
                side.append(e["edge"])
    for clauses in table.values():
        for cell in clauses.values():
            cell["met"] = sorted(set(cell["met"]) - set(cell["missed"]))
            cell["missed"].sort()
    return table


def by_family(results: list[dict], family_counts: dict | None = None) -> dict:
    """family -> "impl/device" -> counts, duration, builds, compilations, max error / tolerance ratio."""
    table: dict = {}
    for r in results:
        cell = table.setdefault(r["family"], {}).setdefault(f"{r['impl']}/{r['device']}", {
            **{k: 0 for k in COUNTED}, "duration_s": 0.0, "builds": 0, "compilations": 0,
            "max_abs_err": None, "max_error_ratio": None})
        cell[r["outcome"]] += 1
        cell["duration_s"] = round(cell["duration_s"] + r["duration_s"], 6)
        cell["builds"] += r["builds"]
        cell["compilations"] += r["compilations"]
        for m in r["measurements"]:
            if cell["max_abs_err"] is None or m["max_abs_err"] > cell["max_abs_err"]:
                cell["max_abs_err"] = m["max_abs_err"]
            ratio = m.get("error_ratio")
            if ratio is not None and (cell["max_error_ratio"] is None or ratio > cell["max_error_ratio"]):
                cell["max_error_ratio"] = ratio
    return table


def coverage(results: list[dict], spec_ids: list[str]) -> dict:
    exercised = sorted({c for r in results if r["outcome"] != "skipped" for c in r["clauses"]})
    spec_set = set(spec_ids)
    covered = [c for c in exercised if c in spec_set]
    return {"spec_count": len(spec_ids), "exercised_count": len(covered),
            "exercised": covered, "missing": sorted(spec_set - set(exercised)),
            "unknown": [c for c in exercised if c not in spec_set]}


#: the measurement kind that compares an implementation with the reference: the PyTorch golden outputs
#: and gradients, and the float64 numpy model (the other kinds compare it with itself or with our other one)
REFERENCE_KIND = "golden"


def validation(results: list[dict], min_numeric: int) -> dict:
    """impl -> what its results validated: comparisons with the reference and in all (by kind), the clauses
    of its passed tests (per family), the features it lacks (skip reasons) and the verdict: NOT OK (a
    failure or unexpected pass), NOT VALIDATED (fewer than ``min_numeric`` comparisons with the reference:
    it may pass everything and still have been checked for nothing numeric) or OK."""
    table: dict = {}
    for r in results:
        if r["impl"] == SHARED:
            continue
        v = table.setdefault(r["impl"], {"failing": 0, "kinds": {}, "clauses": {}, "unsupported": {},
                                         "not_applicable": 0})
        if r["outcome"] in ("failed", "unexpected_pass"):
            v["failing"] += 1
        if r["outcome"] == "skipped":
            reason = headline_of(r["message"])
            if reason.startswith(UNSUPPORTED):  # a feature it lacks (other skips: combinations a clause does not apply to)
                v["unsupported"][reason] = v["unsupported"].get(reason, 0) + 1
            else:
                v["not_applicable"] += 1
            continue
        for m in r["measurements"]:
            v["kinds"][m["kind"]] = v["kinds"].get(m["kind"], 0) + 1
        if r["outcome"] == "passed":
            for clause in r["clauses"]:
                v["clauses"].setdefault(clause, r["family"])
    out = {}
    for impl, v in table.items():
        reference = v["kinds"].get(REFERENCE_KIND, 0)
        families: dict = {}
        for family in v["clauses"].values():
            families[family] = families.get(family, 0) + 1
        verdict = "NOT OK" if v["failing"] else "NOT VALIDATED" if reference < min_numeric else "OK"
        out[impl] = {"verdict": verdict, "reference_comparisons": reference,
                     "comparisons_by_kind": dict(sorted(v["kinds"].items())), "min_numeric": min_numeric,
                     "clauses_validated": len(v["clauses"]), "clauses_by_family": dict(sorted(families.items())),
                     "unsupported": dict(sorted(v["unsupported"].items())), "not_applicable": v["not_applicable"]}
    return out


def headline_of(message: str) -> str:
    return message.removeprefix("Skipped: ").strip().splitlines()[0] if message.strip() else ""


def summarize(results: list[dict], min_numeric: int) -> dict:
    counts = {k: sum(1 for r in results if r["outcome"] == k) for k in COUNTED}
    verdicts = validation(results, min_numeric)
    ok = counts["failed"] == 0 and counts["unexpected_pass"] == 0 and all(
        v["verdict"] == "OK" for v in verdicts.values())
    return {**counts, "total": len(results), "ok": ok, "validation": verdicts}


def min_numeric_of(document: dict) -> int:
    """The --min-numeric a report was made with (reports written before it was recorded: 1, its default)."""
    return document["run_info"].get("min_numeric", 1)


def deadline_reason(tests_skipped: int) -> str:
    return f"--conformance-deadline skipped {tests_skipped} test(s)"


def narrowing(config, deadline_skips: int) -> list[str]:
    """Why this run holds fewer tests than the whole suite would at its profile; empty when nothing was
    left out on purpose. ``electra-conformance diff`` counts a lost pass as a regression only then."""
    option = config.option
    reasons = [f"-k {option.keyword}"] if option.keyword else []
    reasons += [f"-m {option.markexpr}"] if option.markexpr else []
    reasons += [f"--deselect {d}" for d in option.deselect or []]
    reasons += [f"stops at failure {option.maxfail} (-x/--maxfail)"] if option.maxfail else []
    reasons += [deadline_reason(deadline_skips)] if deadline_skips else []
    for arg in config.args:  # a module, file or test id instead of the whole package or folder
        if "::" in arg or arg.endswith(".py") or (arg.startswith("conformance.tests.") and option.pyargs):
            reasons.append(f"selected {arg}")
    shard = getattr(option, "conformance_shard", None)
    if shard:
        from conformance.shards import parse_shard, shard_reason

        reasons.append(shard_reason(*parse_shard(shard)))
    return reasons


INTERRUPTED_REASON = "interrupted (SIGINT or SIGTERM)"


def build_report(state, session) -> dict:
    """Assemble the report of a finished pytest session (``state``: conformance.session.RunState)."""
    results = state.collector.results
    ended = _dt.datetime.now(_dt.timezone.utc)
    implementations = [{
        "name": name, "framework": a.framework, "version": str(_safe(a.version, None)),
        "framework_versions": _safe(lambda a=a: dict(a.framework_versions()), {}),
        "devices_present": state.present[name],
        "expectations_file": state.expectations[name].path,
        "capabilities": state.capabilities[name].as_dict(),
    } for name, a in state.adapters.items()]
    stale = [{"impl": impl, "file": state.expectations[impl].path, **e.as_dict()}
             for impl, tracker in state.trackers.items() for e in tracker.stale()]
    expected = [{"impl": impl, "file": x.path, **e.as_dict()}
                for impl, x in state.expectations.items() for e in x.entries]
    not_applicable = [{"impl": impl, "file": x.path, **e.as_dict()}
                      for impl, x in state.expectations.items() for e in x.not_applicable]
    run_info = {
        "implementations": implementations,
        "devices_requested": list(state.requested_devices) if state.requested_devices else "auto",
        "dtypes": list(state.dtypes), "spec_version": _safe(spec_version, "unknown"), "profile": state.profile,
        "hypothesis_seed": _safe(lambda: session.config.getoption("hypothesis_seed", None), None),
        "python": sys.version.split()[0], "platform": platform.platform(),
        "machine": _safe(machine_info, {}),
        "start": state.started.isoformat(), "end": ended.isoformat(),
        "duration_s": round(time.monotonic() - state.t0, 3),
        "pytest_args": [str(a) for a in session.config.invocation_params.args],
        "deadline": {"seconds": session.config.getoption("conformance_deadline", None),
                     "tests_skipped": state.deadline_skips},
        "min_numeric": session.config.getoption("min_numeric"),
        "narrowed": narrowing(session.config, state.deadline_skips) + (
            [INTERRUPTED_REASON] if session.exitstatus == pytest.ExitCode.INTERRUPTED else []),
    }
    shard = getattr(session.config.option, "conformance_shard", None)
    if shard:  # what merging the shards needs: the slice, the selection it was cut from, where each result sits
        from conformance.shards import parse_shard

        index, count = parse_shard(shard)
        run_info["shard"] = {"index": index, "count": count, "selected": state.selected, "collection": state.collection,
                             "positions": [state.positions[r["nodeid"]] for r in results]}
    spec_ids = _safe(spec_clause_ids, [])
    return {
        "report_format": REPORT_FORMAT, "run_info": run_info,
        "summary": summarize(results, run_info["min_numeric"]),
        "results": results, "clauses": by_clause(results),
        "families": by_family(results), "family_cache": state.store.family_counts,
        "coverage": dict(coverage(results, spec_ids if isinstance(spec_ids, list) else []),
                         pairs={impl: pair_summary(sets, state.capabilities[impl])
                                for impl, sets in state.feature_sets.items()},
                         error_edges=error_edges(results)),
        "expectations": {"entries": expected, "stale": stale, "not_applicable": not_applicable},
    }


def summed_family_cache(documents: list[dict]) -> dict:
    """family -> {builds, compilations} summed over the reports of several processes."""
    family_cache: dict = {}
    for d in documents:
        for fam, counts in d["family_cache"].items():
            slot = family_cache.setdefault(fam, {"builds": 0, "compilations": 0})
            for k in slot:
                slot[k] += counts.get(k, 0)
    return family_cache


def merge_reports(documents: list[dict]) -> dict:
    """One report from several (one per implementation); results are concatenated."""
    if len(documents) == 1:
        return documents[0]
    results, shared = [], set()
    for r in (r for d in documents for r in d["results"]):
        if r["impl"] == SHARED:  # adapter-independent tests ran in every per-implementation process
            if r["nodeid"] in shared:
                continue
            shared.add(r["nodeid"])
        results.append(r)
    infos = [d["run_info"] for d in documents]
    run_info = dict(infos[0])
    run_info["implementations"] = [i for info in infos for i in info["implementations"]]
    run_info["start"] = min(i["start"] for i in infos)
    run_info["end"] = max(i["end"] for i in infos)
    run_info["duration_s"] = round(sum(i["duration_s"] for i in infos), 3)
    run_info["narrowed"] = list(dict.fromkeys(reason for i in infos for reason in i.get("narrowed", [])))
    ran = {i["name"] for i in run_info["implementations"]}
    run_info["not_run"] = list({e["impl"]: e for i in infos for e in i.get("not_run", []) if e["impl"] not in ran}.values())
    deadlines = [i["deadline"] for i in infos if "deadline" in i]
    if deadlines:
        run_info["deadline"] = {"seconds": deadlines[0]["seconds"],
                                "tests_skipped": sum(d["tests_skipped"] for d in deadlines)}
    family_cache = summed_family_cache(documents)
    spec_ids = sorted(set(documents[0]["coverage"]["exercised"]) | set(documents[0]["coverage"]["missing"]))
    return {
        "report_format": REPORT_FORMAT, "run_info": run_info, "summary": summarize(results, min_numeric_of(documents[0])),
        "results": results, "clauses": by_clause(results), "families": by_family(results),
        "family_cache": family_cache,
        "coverage": dict(coverage(results, spec_ids),
                         pairs={k: v for d in documents for k, v in d["coverage"].get("pairs", {}).items()},
                         error_edges=error_edges(results)),
        "expectations": {k: [e for d in documents for e in d["expectations"].get(k, [])]
                         for k in ("entries", "stale", "not_applicable")},
    }


def validate_report(document: dict) -> None:
    """Raise jsonschema.ValidationError if the document does not follow report.schema.json."""
    import jsonschema

    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def write_report(document: dict, path: str | Path) -> None:
    from electra_core.files import atomic_write_bytes

    # one result per line: compact enough to commit as a baseline, still readable in a diff
    head = {k: v for k, v in document.items() if k != "results"}
    lines = ",\n".join(json.dumps(r, separators=(",", ":"), default=str) for r in document["results"])
    text = json.dumps(head, separators=(",", ":"), default=str)[:-1] + ',\n"results":[\n' + lines + "\n]}\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def read_report(path: str | Path) -> dict:
    """The JSON document of a report file; ``.gz``: gzip-compressed (the committed stack reports)."""
    path = Path(path)
    if path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    return json.loads(path.read_text(encoding="utf-8"))
