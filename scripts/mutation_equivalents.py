"""Relabel the surviving mutants listed as equivalent in a cosmic-ray session, or print its score.

  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML          relabel (after cosmic-ray exec)
  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML --score  kill rate, equivalents left out
  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML --annotations
        before the run: set aside as equivalent every mutant inside a type annotation of a module with
        ``from __future__ import annotations`` (stored as a string, never evaluated: cosmic-ray makes about
        eleven operator mutants of each ``X | None``, and each would cost a whole suite run to survive)
  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML --retry-unrun
        before the run: forget every result where the test command ran no test (so that it runs again)
  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML --sample N|all
        before the run: keep the first N mutants of one fixed random order (seed 0, over the mutants' places
        in the source, so the same code draws the same sample) and those already run, and set the others
        aside as outside the sample; a larger N, or all, brings set-aside ones back

An entry of EQUIVALENT_YAML names a mutant by what survives an edit elsewhere in the file: the module path,
cosmic-ray's operator, the stripped source line it mutates, the text the mutation puts there (``mutated``,
found in the added line of its diff) and optionally the enclosing definition; and says why no input can
tell it from the original. Only a mutant that survived can be equivalent: a killed one is never relabelled.

A kill counts only when a test failed: cosmic-ray takes any non-zero exit of the test command for a kill, so a
result whose output shows no failing pytest stage (the test command's stamp) nor, in sessions from before the
stamp, a failed test in pytest's summary is relabelled incompetent after the run and run again by the next
one. The score tells the mutants the conformance suite kills from those only the package's unit tests kill
(the test command's second stage, after UNIT_STAGE).
Runs in .venv-mutation (cosmic-ray); the working directory is the mutated copy of the checkout.
"""
from __future__ import annotations

import ast
import math
import random
import re
import sys
from pathlib import Path

import yaml

EQUIVALENT = "equivalent: "
OUTSIDE = "outside the sample: "
NOT_RUN = "not a test run: "
#: printed by the test command (scripts/mutation.sh) when the conformance suite passed and the unit tests start
UNIT_STAGE = "[mutation] the conformance suite passed; the unit tests of the mutated package run"
#: the test command's line after each pytest run, and pytest's own summary (sessions from before the stamp)
_STAMP = re.compile(r"\[mutation\] pytest exit (\d+):")
_FAILURES = re.compile(r"\b[1-9]\d* (failed|errors?)\b")
SEED = 0
ANNOTATION = ("the mutated text is a type annotation, and the module has `from __future__ import annotations`: "
              "annotations are stored as strings and never evaluated, so the code that runs is unchanged")


def _entries(path: Path) -> list[dict]:
    raw = yaml.safe_load(path.read_text()) if path.is_file() else None
    entries = (raw or {}).get("equivalent") or []
    for k, entry in enumerate(entries):
        missing = {"module", "operator", "line", "mutated", "why"} - set(entry)
        if missing:
            raise SystemExit(f"{path}: entry {k} lacks {sorted(missing)}")
    return entries


def _added_lines(diff: str) -> list[str]:
    return [line[1:].strip() for line in (diff or "").splitlines() if line.startswith("+") and not line.startswith("+++")]


def _matches(entry: dict, mutation, result, lines: dict[Path, list[str]]) -> bool:
    module = Path(mutation.module_path)
    if module.as_posix() != entry["module"] or mutation.operator_name != entry["operator"]:
        return False
    if entry.get("function") and mutation.definition_name != entry["function"]:
        return False
    if module not in lines:
        lines[module] = module.read_text().splitlines() if module.is_file() else []
    row = mutation.start_pos[0] - 1
    original = 0 <= row < len(lines[module]) and lines[module][row].strip() == entry["line"].strip()
    return original and any(entry["mutated"] in added for added in _added_lines(result.diff))


def a_test_failed(output: str | None) -> bool:
    """Whether a killing result's output shows a failing test (or cosmic-ray's timeout), not a test command
    that could not run its tests."""
    output = output or ""
    if output == "timeout":
        return True
    stamps = _STAMP.findall(output)
    if stamps:  # the test command ran with --collect-only first: any failure of a stage is the mutant's
        return stamps[-1] != "0"
    return bool(_FAILURES.search(output))


def killed_by_unit_tests_only(output: str | None) -> bool:
    return UNIT_STAGE in (output or "")


def retry_unrun(session: str) -> int:
    """Forget the results where the test command ran no test (relabelled by ``relabel``, or kills of older
    sessions whose output shows no failing test), so that the next exec runs them again."""
    import sqlite3

    db = sqlite3.connect(session)
    with db:
        rows = db.execute("SELECT job_id, test_outcome, output FROM work_results").fetchall()
        unrun = [(job,) for job, outcome, output in rows
                 if (output or "").startswith(NOT_RUN) or (outcome == "KILLED" and not a_test_failed(output))]
        db.executemany("DELETE FROM work_results WHERE job_id = ?", unrun)
    db.close()
    return len(unrun)


def relabel(session: str, entries: list[dict]) -> int:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    relabelled, lines = 0, {}
    with use_db(session, WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.test_outcome == TestOutcome.KILLED and not a_test_failed(result.output):
                db.set_result(item.job_id, WorkResult(worker_outcome=result.worker_outcome, diff=result.diff,
                                                      test_outcome=TestOutcome.INCOMPETENT,
                                                      output=NOT_RUN + (result.output or "")[-2000:]))
                continue
            if result.test_outcome != TestOutcome.SURVIVED:
                continue
            entry = next((e for e in entries if all(_matches(e, m, result, lines) for m in item.mutations)), None)
            if entry is not None:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, diff=result.diff,
                                                      output=EQUIVALENT + entry["why"]))
                relabelled += 1
    return relabelled


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions, (line 1-based, column 0-based), of every annotation in ``source``; none when
    the module lacks ``from __future__ import annotations`` (then annotations are evaluated at definition)."""
    tree = ast.parse(source)
    postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                    and any(alias.name == "annotations" for alias in node.names) for node in tree.body)
    if not postponed:
        return []
    annotations = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            annotations.append(node.returns)
        elif isinstance(node, ast.arg) and node.annotation is not None:
            annotations.append(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
    return [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in annotations]


def in_annotation(mutation, spans: list) -> bool:
    """Whether the mutated text (start_pos..end_pos) lies inside one of ``spans``."""
    return any(start <= tuple(mutation.start_pos) and tuple(mutation.end_pos) <= end for start, end in spans)


def skip_annotations(session: str) -> int:
    """Set aside (SKIPPED, reason ANNOTATION) every mutant not yet run whose mutations all lie in annotations."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    skipped, spans = 0, {}
    with use_db(session, WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            for mutation in item.mutations:
                module = Path(mutation.module_path)
                if module not in spans:
                    spans[module] = annotation_spans(module.read_text()) if module.is_file() else []
            if all(in_annotation(m, spans[Path(m.module_path)]) for m in item.mutations):
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED,
                                                      output=EQUIVALENT + ANNOTATION))
                skipped += 1
    return skipped


def sample_order(specs: list[tuple]) -> list[str]:
    """The job ids of ``specs`` (rows of job_id, module path, operator, occurrence) in the fixed random order
    a sample is drawn from: sorted by place first, so the order depends on the code only, not on the job ids
    cosmic-ray draws at init."""
    ordered = [row[0] for row in sorted(specs, key=lambda row: row[1:])]
    random.Random(SEED).shuffle(ordered)
    return ordered


def draw_sample(session: str, size: int | None) -> tuple[int, int]:
    """Keep the first ``size`` mutants (all when None) of ``sample_order`` among those not set aside as
    equivalent, and every one already run; mark every other one without a result as outside the sample, and
    bring back a sampled one that an earlier, smaller draw set aside. Returns (sampled, set aside)."""
    import sqlite3

    db = sqlite3.connect(session)
    with db:
        specs = db.execute("SELECT job_id, module_path, operator_name, occurrence FROM mutation_specs").fetchall()
        results = dict(db.execute("SELECT job_id, output FROM work_results").fetchall())
        order = [job for job in sample_order(specs) if not (results.get(job) or "").startswith(EQUIVALENT)]
        ran = {job for job in order if job in results and not (results[job] or "").startswith(OUTSIDE)}
        chosen = set(order if size is None else order[:size]) | ran
        note = OUTSIDE + f"{len(chosen)} of {len(order)} drawn (seed {SEED})"
        db.executemany("DELETE FROM work_results WHERE job_id = ?",
                       [(job,) for job in chosen if (results.get(job) or "").startswith(OUTSIDE)])
        aside = [job for job in order if job not in chosen and job not in results]
        db.executemany("INSERT INTO work_results (worker_outcome, output, job_id) VALUES ('SKIPPED', ?, ?)",
                       [(note, job) for job in aside])
        db.execute("UPDATE work_results SET output = ? WHERE output LIKE ?", (note, OUTSIDE + "%"))
    db.close()
    return len(chosen), sum(1 for job in order if job not in chosen)


def wilson(killed: int, run: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a kill rate measured on a random sample of ``run`` mutants."""
    if run == 0:
        return 0.0, 1.0
    p = killed / run
    centre = (p + z * z / (2 * run)) / (1 + z * z / run)
    half = z * math.sqrt(p * (1 - p) / run + z * z / (4 * run * run)) / (1 + z * z / run)
    return max(0.0, centre - half), min(1.0, centre + half)


def score(session: str) -> str:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    with use_db(session, WorkDB.Mode.open) as db:
        total = db.num_work_items
        results = [result for _, result in db.results]
    equivalent = sum(1 for r in results if r.worker_outcome == WorkerOutcome.SKIPPED
                     and (r.output or "").startswith(EQUIVALENT))
    killed = sum(1 for r in results if r.test_outcome == TestOutcome.KILLED)
    by_unit_tests = sum(1 for r in results
                        if r.test_outcome == TestOutcome.KILLED and killed_by_unit_tests_only(r.output))
    survived = sum(1 for r in results if r.test_outcome == TestOutcome.SURVIVED)
    incompetent = sum(1 for r in results if r.test_outcome == TestOutcome.INCOMPETENT)  # could not be run
    unrun = sum(1 for r in results if (r.output or "").startswith(NOT_RUN))
    outside = sum(1 for r in results if (r.output or "").startswith(OUTSIDE))
    run = killed + survived
    rate = f"{100 * killed / run:.1f}%" if run else "n/a"
    suite_rate = f"{100 * (killed - by_unit_tests) / run:.1f}%" if run else "n/a"
    line = (f"mutation score: {killed} of {run} non-equivalent mutants killed ({rate}): {killed - by_unit_tests} "
            f"by the conformance suite ({suite_rate}), {by_unit_tests} only by the package's unit tests; "
            f"{survived} survived, {equivalent} equivalent and {incompetent} incompetent (left out; {unrun} of them "
            f"ran no test and run again next time), {total - len(results)} not run yet, {total} in the session")
    if outside:
        low, high = wilson(killed, run)
        suite_low, suite_high = wilson(killed - by_unit_tests, run)
        line += (f"\n  a random sample: {outside} mutants outside it were not run; the kill rate of all "
                 f"non-equivalent mutants lies in {100 * low:.1f}%-{100 * high:.1f}%, the conformance suite's in "
                 f"{100 * suite_low:.1f}%-{100 * suite_high:.1f}% (95% Wilson intervals)")
    return line


def main(argv: list[str]) -> int:
    sample = len(argv) == 4 and argv[2] == "--sample" and (argv[3] == "all" or argv[3].isdigit())
    if not (len(argv) in (2, 3) or sample) or (len(argv) == 3 and argv[2] not in ("--score", "--annotations",
                                                                                  "--retry-unrun")):
        print(__doc__, file=sys.stderr)
        return 2
    session, entries = argv[0], _entries(Path(argv[1]))
    if sample:
        size = None if argv[3] == "all" else int(argv[3])
        chosen, aside = draw_sample(session, size)
        print(f"[mutation] {chosen} mutants in the sample, {aside} outside it (seed {SEED})")
    elif argv[2:] == ["--score"]:
        print(score(session))
    elif argv[2:] == ["--retry-unrun"]:
        forgotten = retry_unrun(session)
        if forgotten:
            print(f"[mutation] {forgotten} results where the test command ran no test are run again")
    elif argv[2:] == ["--annotations"]:
        print(f"[mutation] {skip_annotations(session)} mutants inside type annotations set aside as equivalent")
    else:
        print(f"[mutation] {relabel(session, entries)} surviving mutants relabelled equivalent ({argv[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
