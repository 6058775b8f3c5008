"""Compare two reports: new failures, new passes, status changes, numeric drift, run_info differences.

Regressions (non-zero exit of ``electra-conformance diff``): a test that now fails (or passes against
its expectation) and did not before, and numeric drift as the spec's gate defines it
(``tolerance.regression.drift``, spec/data/tolerances.yaml): a clause's max error grew more than
``ratio`` times and now uses more than ``fraction`` of its allowance (atol + rtol |reference|), so that
the few-percent moves of another CPU's kernels are not regressions; and a lost pass: a test that passed
before and is now skipped or gone, unless the new run records that it was narrowed on purpose (-k, -m,
--deselect, -x, a deadline, selected modules, another profile), which the diff shows (``strict`` counts
lost passes even then).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from conformance.results import headline
from spec.sections.tolerances import DriftGate

FAILING = ("failed", "unexpected_pass")
RUN_INFO_KEYS = ("spec_version", "profile", "devices_requested", "dtypes", "python", "platform")
MACHINE_KEYS = ("cpu", "isa", "isa_limits", "gpus")  # run_info.machine: what decides the kernels


@dataclass
class Diff:
    new_failures: list = field(default_factory=list)  # (key, old outcome or None, new outcome, message)
    new_passes: list = field(default_factory=list)  # (key, old, new)
    status_changes: list = field(default_factory=list)  # (key, old, new), everything else that changed
    drift: list = field(default_factory=list)  # (clause key, old err, new err, atol, share of the allowance)
    lost_passes: list = field(default_factory=list)  # (key, old, new): passed -> skipped / gone
    run_info: list = field(default_factory=list)  # (what, old, new)
    narrowed: list = field(default_factory=list)  # why the new run holds fewer tests on purpose
    strict: bool = False

    @property
    def counts_lost_passes(self) -> bool:
        """Lost passes are regressions unless the new run was narrowed on purpose (and not --strict)."""
        return self.strict or not self.narrowed

    @property
    def regressions(self) -> int:
        return len(self.new_failures) + len(self.drift) + (len(self.lost_passes) if self.counts_lost_passes else 0)


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
    old_machine, new_machine = old["run_info"].get("machine", {}), new["run_info"].get("machine", {})
    for key in MACHINE_KEYS:
        if old_machine.get(key) != new_machine.get(key):
            changes.append((f"machine.{key}", old_machine.get(key), new_machine.get(key)))
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
    from conformance.report import by_clause, by_family, coverage, min_numeric_of, summarize

    results = [r for r in document["results"] if r["impl"] == impl]
    run_info = dict(document["run_info"])
    run_info["implementations"] = [i for i in run_info["implementations"] if i["name"] == impl]
    spec_ids = sorted(set(document["coverage"]["exercised"]) | set(document["coverage"]["missing"]))
    return {**document, "results": results, "clauses": by_clause(results), "families": by_family(results),
            "run_info": run_info, "summary": summarize(results, min_numeric_of(document)),
            "coverage": coverage(results, spec_ids)}


def drift_gate(ratio: float | None = None, fraction: float | None = None) -> DriftGate:
    """The spec's drift gate, with ``ratio`` / ``fraction`` overriding its values where given."""
    from spec import load_spec

    gate = load_spec().tolerances.drift
    return replace(gate, ratio=gate.ratio if ratio is None else ratio,
                   fraction=gate.fraction if fraction is None else fraction)


def _error_ratio(cell: dict) -> float:
    """Share of the allowance the cell's worst comparison used. Clause cells of reports written before
    they carried ``max_error_ratio`` (same report format) give it from the absolute error and atol."""
    if cell.get("max_error_ratio") is not None:
        return cell["max_error_ratio"]
    return cell["max_abs_err"] / cell["atol"] if cell.get("atol") else float("inf")


def compare(old: dict, new: dict, *, gate: DriftGate | None = None, strict: bool = False) -> Diff:
    gate = gate or drift_gate()
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
        share = _error_ratio(b)
        if gate.is_regression(a["max_abs_err"], b["max_abs_err"], share):
            diff.drift.append((key, a["max_abs_err"], b["max_abs_err"], b.get("atol"), share))
    diff.run_info = run_info_changes(old, new)
    diff.narrowed = narrowing_reasons(old, new)
    return diff


def narrowing_reasons(old: dict, new: dict) -> list[str]:
    """Why ``new`` holds fewer tests than ``old`` on purpose: what its run recorded (-k, -m, deselected,
    a deadline, selected modules) and a different profile."""
    reasons = list(new["run_info"].get("narrowed", []))
    old_profile, new_profile = old["run_info"]["profile"]["name"], new["run_info"]["profile"]["name"]
    if old_profile != new_profile:
        reasons.append(f"profile {new_profile} (the old report: {old_profile})")
    return reasons


#: lost passes listed for a run narrowed on purpose (where they are not regressions)
NARROWED_SHOWN = 10


def format_diff(diff: Diff, gate: DriftGate) -> list[str]:
    lines = []

    def section(title: str, rows: list, fmt, limit: int | None = None) -> None:
        lines.append(f"{title} ({len(rows)})")
        lines.extend("  " + fmt(*row) for row in rows[:limit])
        if limit is not None and len(rows) > limit:
            lines.append(f"  ... and {len(rows) - limit} more")

    section("NEW FAILURES", diff.new_failures,
            lambda k, a, b, msg: f"{k}: {a or 'absent'} -> {b}: {headline(msg)[:200]}")
    section("NEW PASSES", diff.new_passes, lambda k, a, b: f"{k}: {a} -> {b}")
    section(f"NUMERIC DRIFT (max error grew more than {gate.ratio:g}x and uses more than {gate.fraction:g} of its "
            f"allowance: {gate.id})", diff.drift,
            lambda k, a, b, tol, share: f"{k}: {a:.3g} -> {b:.3g} ({share:.2g} of the allowance; atol {tol})")
    counted = ("regressions" if not diff.narrowed else "regressions: --strict" if diff.strict
               else "not regressions: the new run was narrowed")
    # a narrowed run loses passes by design: the first few show what left, every one is listed when they count
    section(f"PASSES LOST (passed -> skipped/absent) [{counted}]", diff.lost_passes,
            lambda k, a, b: f"{k}: {a} -> {b or 'absent'}", limit=None if diff.counts_lost_passes else NARROWED_SHOWN)
    lines.extend(f"  narrowed: {reason}" for reason in diff.narrowed)
    section("OTHER STATUS CHANGES", diff.status_changes, lambda k, a, b: f"{k}: {a or 'absent'} -> {b or 'absent'}")
    section("RUN INFO CHANGES", diff.run_info, lambda k, a, b: f"{k}: {a!r} -> {b!r}")
    if any(what.startswith("machine.") for what, _, _ in diff.run_info):
        lines.append("  (another CPU or instruction-set limit: errors move by a few percent of their allowance, "
                     "which the drift gate does not count)")
    lines.append(f"{diff.regressions} regression(s)" if diff.regressions else "no regressions")
    return lines
