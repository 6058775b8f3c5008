"""Relabel the surviving mutants listed as equivalent in a cosmic-ray session, or print its score.

  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML          relabel (after cosmic-ray exec)
  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML --score  kill rate, equivalents left out
  python scripts/mutation_equivalents.py SESSION EQUIVALENT_YAML --annotations
        before the run: set aside as equivalent every mutant inside a type annotation of a module with
        ``from __future__ import annotations`` (stored as a string, never evaluated: cosmic-ray makes about
        eleven operator mutants of each ``X | None``, and each would cost a whole suite run to survive)

An entry of EQUIVALENT_YAML names a mutant by what survives an edit elsewhere in the file: the module path,
cosmic-ray's operator, the stripped source line it mutates, the text the mutation puts there (``mutated``,
found in the added line of its diff) and optionally the enclosing definition; and says why no input can
tell it from the original. Only a mutant that survived can be equivalent: a killed one is never relabelled.
Runs in .venv-mutation (cosmic-ray); the working directory is the mutated copy of the checkout.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

EQUIVALENT = "equivalent: "
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


def relabel(session: str, entries: list[dict]) -> int:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    relabelled, lines = 0, {}
    with use_db(session, WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
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


def score(session: str) -> str:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    with use_db(session, WorkDB.Mode.open) as db:
        total = db.num_work_items
        results = [result for _, result in db.results]
    equivalent = sum(1 for r in results if r.worker_outcome == WorkerOutcome.SKIPPED
                     and (r.output or "").startswith(EQUIVALENT))
    killed = sum(1 for r in results if r.test_outcome == TestOutcome.KILLED)
    survived = sum(1 for r in results if r.test_outcome == TestOutcome.SURVIVED)
    incompetent = sum(1 for r in results if r.test_outcome == TestOutcome.INCOMPETENT)  # could not be run
    run = killed + survived
    rate = f"{100 * killed / run:.1f}%" if run else "n/a"
    return (f"mutation score: {killed} of {run} non-equivalent mutants killed ({rate}); {survived} survived, "
            f"{equivalent} equivalent and {incompetent} incompetent (left out), {total - len(results)} not run yet, "
            f"{total} in the session")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] not in ("--score", "--annotations")):
        print(__doc__, file=sys.stderr)
        return 2
    session, entries = argv[0], _entries(Path(argv[1]))
    if argv[2:] == ["--score"]:
        print(score(session))
    elif argv[2:] == ["--annotations"]:
        print(f"[mutation] {skip_annotations(session)} mutants inside type annotations set aside as equivalent")
    else:
        print(f"[mutation] {relabel(session, entries)} surviving mutants relabelled equivalent ({argv[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
