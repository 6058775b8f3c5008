"""Compare two reports: new failures, new passes, status changes, numeric drift, run_info differences.

Regressions (non-zero exit of ``electra-conformance diff``): a test that now fails (or passes against
its expectation) and did not before, and numeric drift: a clause's max error grew by more than
``drift_ratio`` while being larger than ``drift_floor`` x its tolerance (so noise near zero is ignored).
With ``strict``, a test that passed before and is now skipped or gone is a regression too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from conformance.results import headline

FAILING = ("failed", "unexpected_pass")
RUN_INFO_KEYS = ("spec_version", "profile", "devices_requested", "dtypes", "python", "platform")


@dataclass
class Diff:
    new_failures: list = field(default_factory=list)  # (key, old outcome or None, new outcome, message)
    new_passes: list = field(default_factory=list)  # (key, old, new)
    status_changes: list = field(default_factory=list)  # (key, old, new), everything else that changed
    drift: list = field(default_factory=list)  # (clause key, old err, new err, atol)
    lost_passes: list = field(default_factory=list)  # (key, old, new): passed -> skipped / gone
    run_info: list = field(default_factory=list)  # (what, old, new)
    strict: bool = False

    @property
    def regressions(self) -> int:
        return len(self.new_failures) + len(self.drift) + (len(self.lost_passes) if self.strict else 0)


def test_outcomes(document: dict) -> dict:
    """(family::test_id) -> result dict."""
    return {f"{r['family']}::{r['test_id']}": r for r in document["results"]}


def clause_cells(document: dict) -> dict:
    """"clause [impl/device/dtype]" -> cell."""
    out = {}
    for clause, impls in document["clauses"].items():
        for impl, devices in impls.items():
            for device, dtypes in devices.items():
                for dtype, cell in dtypes.items():
                    out[f"{clause} [{impl}/{device}/{dtype}]"] = cell
    return out


def _impl_infos(document: dict) -> dict:
    return {i["name"]: i for i in document["run_info"]["implementations"]}


def run_info_changes(old: dict, new: dict) -> list:
    changes = []
    for key in RUN_INFO_KEYS:
        if old["run_info"].get(key) != new["run_info"].get(key):
            changes.append((key, old["run_info"].get(key), new["run_info"].get(key)))
    old_impls, new_impls = _impl_infos(old), _impl_infos(new)
    for name in sorted(set(old_impls) | set(new_impls)):
        a, b = old_impls.get(name, {}), new_impls.get(name, {})
        for key in ("version", "devices_present"):
            if a.get(key) != b.get(key):
                changes.append((f"{name}.{key}", a.get(key), b.get(key)))
        fa, fb = a.get("framework_versions", {}), b.get("framework_versions", {})
        for fw in sorted(set(fa) | set(fb)):
            if fa.get(fw) != fb.get(fw):
                changes.append((f"{name}.{fw}", fa.get(fw), fb.get(fw)))
    return changes


def only_impl(document: dict, impl: str) -> dict:
    """The part of a report about one implementation (e.g. to diff a merged run against its baseline)."""
    from conformance.report import by_clause, by_family, coverage, summarize

    results = [r for r in document["results"] if r["impl"] == impl]
    run_info = dict(document["run_info"])
    run_info["implementations"] = [i for i in run_info["implementations"] if i["name"] == impl]
    spec_ids = sorted(set(document["coverage"]["exercised"]) | set(document["coverage"]["missing"]))
    return {**document, "results": results, "clauses": by_clause(results), "families": by_family(results),
            "run_info": run_info, "summary": summarize(results), "coverage": coverage(results, spec_ids)}


def compare(old: dict, new: dict, *, drift_ratio: float = 2.0, drift_floor: float = 0.01,
            strict: bool = False) -> Diff:
    diff = Diff(strict=strict)
    before, after = test_outcomes(old), test_outcomes(new)
    for key in sorted(set(before) | set(after)):
        a = before[key]["outcome"] if key in before else None
        b = after[key]["outcome"] if key in after else None
        if a == b:
            continue
        if b in FAILING and a not in FAILING:
            diff.new_failures.append((key, a, b, after[key]["message"]))
        elif b == "passed" and a in FAILING + ("xfailed",):
            diff.new_passes.append((key, a, b))
        elif a == "passed" and b in ("skipped", None):
            diff.lost_passes.append((key, a, b))
        else:
            diff.status_changes.append((key, a, b))
    old_cells, new_cells = clause_cells(old), clause_cells(new)
    for key in sorted(set(old_cells) & set(new_cells)):
        a, b = old_cells[key], new_cells[key]
        if a.get("max_abs_err") is None or b.get("max_abs_err") is None:
            continue
        floor = drift_floor * (b.get("atol") or 0.0)
        if b["max_abs_err"] > drift_ratio * a["max_abs_err"] and b["max_abs_err"] > floor:
            diff.drift.append((key, a["max_abs_err"], b["max_abs_err"], b.get("atol")))
    diff.run_info = run_info_changes(old, new)
    return diff


def format_diff(diff: Diff, drift_ratio: float) -> list[str]:
    lines = []

    def section(title: str, rows: list, fmt) -> None:
        lines.append(f"{title} ({len(rows)})")
        lines.extend("  " + fmt(*row) for row in rows)

    section("NEW FAILURES", diff.new_failures,
            lambda k, a, b, msg: f"{k}: {a or 'absent'} -> {b}: {headline(msg)[:200]}")
    section("NEW PASSES", diff.new_passes, lambda k, a, b: f"{k}: {a} -> {b}")
    section(f"NUMERIC DRIFT (max error grew more than {drift_ratio:g}x)", diff.drift,
            lambda k, a, b, tol: f"{k}: {a:.3g} -> {b:.3g} (tolerance atol {tol})")
    section("PASSES LOST (passed -> skipped/absent)" + (" [regressions: --strict]" if diff.strict else ""),
            diff.lost_passes, lambda k, a, b: f"{k}: {a} -> {b or 'absent'}")
    section("OTHER STATUS CHANGES", diff.status_changes, lambda k, a, b: f"{k}: {a or 'absent'} -> {b or 'absent'}")
    section("RUN INFO CHANGES", diff.run_info, lambda k, a, b: f"{k}: {a!r} -> {b!r}")
    lines.append(f"{diff.regressions} regression(s)" if diff.regressions else "no regressions")
    return lines
