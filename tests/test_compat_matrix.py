"""conformance/compat.py: the compatibility page across software stacks, on mutated copies of the baselines."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from conformance import compat
from conformance.report import by_clause, by_family, merge_reports, read_report

BASELINES = Path(__file__).resolve().parents[1] / "conformance" / "baselines"
HEADLINE = "AssertionError: last_hidden_state differs by 3.2e-03 (atol 1e-04)"
REASON = "transformers 4.57 dropped the TF classes"


@pytest.fixture(scope="module")
def baselines() -> dict:
    return {name: read_report(BASELINES / f"{name}.json") for name in ("flax", "tf")}


@pytest.fixture
def flax(baselines) -> dict:
    return copy.deepcopy(baselines["flax"])


def _passed(document: dict, family: str) -> int:
    """How many tests of ``family`` passed in a report (counted from its results, not from the matrix)."""
    return sum(1 for r in document["results"] if r["family"] == family and r["outcome"] == "passed")


def cells(document: dict):
    """(clause, impl, device, dtype, cell) of every clause cell."""
    for clause, impls in document["clauses"].items():
        for impl, devices in impls.items():
            for device, dtypes in devices.items():
                for dtype, cell in dtypes.items():
                    yield clause, impl, device, dtype, cell


def measured(document: dict) -> list[tuple]:
    """Cells with a measured error, the largest share of its allowance first."""
    found = [c for c in cells(document) if c[4]["max_abs_err"] and c[4]["max_error_ratio"]]
    return sorted(found, key=lambda c: -c[4]["max_error_ratio"])


def scaled(document: dict, entry: tuple, factor: float) -> dict:
    """A copy of ``document`` with one clause cell's max error (and its share of the allowance) scaled."""
    clause, impl, device, dtype, _ = entry
    out = copy.deepcopy(document)
    cell = out["clauses"][clause][impl][device][dtype]
    cell["max_abs_err"] *= factor
    cell["max_error_ratio"] *= factor
    return out


def failing(document: dict) -> tuple[dict, dict, str]:
    """A copy where one passed numerics test failed at its first clause: (copy, its result, the clause)."""
    out = copy.deepcopy(document)
    result = next(r for r in out["results"] if r["family"] == "numerics" and r["outcome"] == "passed"
                  and r["measurements"])
    clause = result["measurements"][0]["clause"]
    result.update(outcome="failed", failed_clauses=[clause],
                  message=f"conformance/checks.py:120\n{HEADLINE}\nmore detail")
    out["clauses"], out["families"] = by_clause(out["results"]), by_family(out["results"])
    return out, result, clause


def test_changed_verdict_lists_both_outcomes_its_clause_and_the_test(flax):
    new, result, clause = failing(flax)
    key = f"{clause} [flax/{result['device']}/{result['dtype']}]"
    found = compat.changes(flax, new)
    verdict = [c for c in found if c.kind == "verdict" and c.key == key]
    assert len(verdict) == 1
    assert (verdict[0].clause, verdict[0].old_outcome, verdict[0].new_outcome) == (clause, "passed", "failed")
    assert verdict[0].message == HEADLINE
    test = [c for c in found if c.kind == "test"]
    assert [(c.key, c.clause, c.old_outcome, c.new_outcome, c.message) for c in test] == [
        (f"numerics::{result['test_id']}", clause, "passed", "failed", HEADLINE)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict[0].kind = "error"

    page = compat.markdown([("documented", flax), ("keras3", new)])
    section = page.split("### documented -> keras3")[1]
    assert f"- `{key}`: passed -> failed; max error" in section
    assert f"- test `numerics::{result['test_id']}` ({clause}): passed -> failed\n  {HEADLINE}\n" in section
    assert "no change" not in section
    row = next(ln for ln in page.splitlines() if ln.startswith("| `flax` | numerics |"))
    n = _passed(flax, "numerics")
    assert row.endswith(f"| {n} passed | {n - 1} passed · 1 failed |")


def test_error_that_grew_tenfold_is_listed_with_both_numbers(flax):
    entry = measured(flax)[0]
    new = scaled(flax, entry, 10.0)
    old_err, new_err = entry[4]["max_abs_err"], entry[4]["max_abs_err"] * 10.0
    found = compat.changes(flax, new)
    assert [(c.kind, c.clause, c.old_outcome, c.new_outcome, c.old_error, c.new_error) for c in found] == [
        ("error", entry[0], "passed", "passed", old_err, new_err)]
    page = compat.markdown([("documented", flax), ("keras3", new)])
    assert f"max error {old_err:.3g} -> {new_err:.3g} (atol {entry[4]['atol']:.3g})" in page
    assert compat.changes(flax, new, ratio=20.0) == []  # the threshold is the ratio given


def test_small_or_negligible_error_moves_are_not_listed(flax):
    assert compat.changes(flax, scaled(flax, measured(flax)[0], 1.1)) == []
    tiny = measured(flax)[-1]  # uses far less than 1% of its allowance even 10x larger
    assert tiny[4]["max_error_ratio"] * 10 < compat.NOISE
    assert compat.changes(flax, scaled(flax, tiny, 10.0)) == []


def test_missing_implementation_renders_not_run_with_the_reason(baselines):
    both = merge_reports([baselines["flax"], baselines["tf"]])
    tf_only = copy.deepcopy(baselines["tf"])
    tf_only["run_info"]["not_run"] = [{"impl": "flax", "reason": REASON}]
    found = compat.changes(both, tf_only)
    assert [(c.kind, c.impl, c.message) for c in found] == [("not run", "flax", REASON)]
    assert [(c.kind, c.impl) for c in compat.changes(tf_only, both)] == [("added", "flax")]

    stacks = [("documented", both), ("current", tf_only)]
    rows = {(r["impl"], r["family"]): r["cells"] for r in compat.matrix(stacks)}
    n = _passed(baselines["flax"], "numerics")
    assert rows[("flax", "numerics")] == [{"passed": n}, None]
    page = compat.markdown(stacks)
    assert f"| `flax` | numerics | {n} passed | not run |" in page
    assert f"| `flax` | impl_flax (electra-conformance 0.1.0) | not run: {REASON} |" in page
    assert "| tensorflow | 2.21.0 | 2.21.0 |" in page and "| jax | 0.10.2 | - |" in page
    section = page.split("### documented -> current")[1]
    assert f"#### `flax`\n\n- not run on this stack: {REASON}\n" in section
    assert "`tf`" not in section  # the implementation both stacks ran did not change


def test_identical_stacks_say_no_change(baselines):
    stacks = [("documented", baselines["tf"]), ("current", copy.deepcopy(baselines["tf"]))]
    assert compat.changes(*(doc for _, doc in stacks)) == []
    assert compat.markdown(stacks).endswith("### documented -> current\n\nno change in verdicts or measured errors\n")


def shuffled(document: dict) -> dict:
    """The same report with its results and clauses in the reverse order."""
    out = copy.deepcopy(document)
    out["results"].reverse()
    out["clauses"] = dict(reversed(out["clauses"].items()))
    return out


def test_output_is_deterministic_and_holds_no_timestamps(flax):
    new, _, _ = failing(flax)
    page = compat.markdown([("documented", flax), ("keras3", new)])
    assert page == compat.markdown([("documented", copy.deepcopy(flax)), ("keras3", copy.deepcopy(new))])
    assert page == compat.markdown([("documented", shuffled(flax)), ("keras3", shuffled(new))])
    assert flax["run_info"]["start"][:10] not in page


def test_table_cells_escape_pipes_and_lines_stay_short(flax):
    new, result, _ = failing(flax)
    new["run_info"]["implementations"][0]["version"] = "impl|flax"
    result["message"] = "AssertionError: " + "x" * 500
    page = compat.markdown([("documented", flax), ("keras3", new)])
    assert "| impl\\|flax |" in page and "impl|flax" not in page
    assert max(len(ln) for ln in page.splitlines() if not ln.startswith("|")) <= 200


def test_load_stacks_names_by_stem_and_rejects_a_file_that_is_not_a_report(baselines, tmp_path):
    documented = tmp_path / "documented.json"
    tf_only = copy.deepcopy(baselines["tf"])
    tf_only["run_info"]["not_run"] = [{"impl": "flax", "reason": REASON}]
    documented.write_text(json.dumps(tf_only), encoding="utf-8")
    assert compat.read_stack_reports([str(documented)]) == [("documented", tf_only)]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"report_format": 1, "results": []}), encoding="utf-8")
    with pytest.raises(jsonschema.ValidationError):
        compat.read_stack_reports([str(documented), str(other)])
    other.write_text("not json", encoding="utf-8")
    with pytest.raises(ValueError):
        compat.read_stack_reports([str(other)])
