"""Expected failures of an implementation (third-party validation), read from YAML.

File format (``conformance/expectations/<impl>.yaml``)::

    implementation: hf-flax
    expected_failures:
      - clause: FlaxElectraModel.call.default.position_ids   # clause id (* and ? wildcards)
        test: "test_defaults[FlaxElectraModel*]"            # test id without impl/device (* and ? wildcards)
        reason: "what the implementation does; what the spec says"
        decision: decision.some_id                          # optional
        devices: [cpu]                                      # optional: only on these devices
        dtypes: [float16]                                   # optional: only for these dtypes
        message: "KeyError: 'gelu_fast'"                   # optional: regex the failure text must match

A ``test`` pattern without ``[`` matches the test function name whatever its parameters.

Entries without ``message`` are strict: the matching tests must fail on that clause, and a pass is an
unexpected pass. Entries with ``message`` describe a root cause (say, an activation the implementation
lacks) that makes whichever tests draw it fail: they excuse only failures whose text matches, never turn
a pass into a failure, and are stale only when no failure in the run matched them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from conformance.results import headline

EXPECTATIONS_DIR = Path(__file__).parent / "expectations"


class ExpectationsError(ValueError):
    pass


def wildcard_match(pattern: str, text: str) -> bool:
    """``*`` any run of characters, ``?`` one; everything else literal (test ids contain brackets)."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, text) is not None


@dataclass(frozen=True)
class Expectation:
    clause: str
    test: str
    reason: str
    decision: str | None = None
    devices: tuple[str, ...] | None = None
    dtypes: tuple[str, ...] | None = None
    message: str | None = None
    index: int = 0  # position in the file, for messages

    def label(self) -> str:
        return f"#{self.index} {self.clause} @ {self.test}"

    def matches_test(self, stripped_id: str, function_name: str, device: str | None, dtype: str | None) -> bool:
        if self.devices is not None and device not in self.devices:
            return False
        if self.dtypes is not None and (dtype or "float32") not in self.dtypes:
            return False
        target = stripped_id if "[" in self.test else function_name
        return wildcard_match(self.test, target)

    def matches_clause(self, clauses) -> bool:
        return any(wildcard_match(self.clause, c) for c in clauses)

    def as_dict(self) -> dict:
        d = {"clause": self.clause, "test": self.test, "reason": self.reason}
        for key in ("decision", "message"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d


def _checked_regex(pattern, where: str) -> str | None:
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except (re.error, TypeError) as err:
        raise ExpectationsError(f"{where}: 'message' is not a valid regular expression: {err}") from None
    return pattern


def default_path(impl: str) -> Path:
    return EXPECTATIONS_DIR / f"{impl}.yaml"


def load_expectations(path: str | Path) -> list[Expectation]:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ExpectationsError(f"{path}: not valid YAML: {err}") from err
    entries = raw.get("expected_failures") if isinstance(raw, dict) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise ExpectationsError(f"{path}: 'expected_failures' must be a list, got {type(entries).__name__}")
    result = []
    for i, entry in enumerate(entries):
        where = f"{path}: expected_failures[{i}]"
        if not isinstance(entry, dict):
            raise ExpectationsError(f"{where} must be a mapping, got {entry!r}")
        unknown = set(entry) - {"clause", "test", "reason", "decision", "devices", "dtypes", "message"}
        if unknown:
            raise ExpectationsError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("clause", "test", "reason"):
            if not isinstance(entry.get(key), str) or not entry[key].strip():
                raise ExpectationsError(f"{where}: '{key}' is required and must be a non-empty string")
        result.append(Expectation(
            clause=entry["clause"], test=entry["test"], reason=entry["reason"].strip(),
            decision=entry.get("decision"),
            devices=tuple(entry["devices"]) if entry.get("devices") else None,
            dtypes=tuple(entry["dtypes"]) if entry.get("dtypes") else None,
            message=_checked_regex(entry.get("message"), where), index=i))
    return result


def resolve_expectations(option: str | None, impls: list[str]) -> dict[str, tuple[str | None, list]]:
    """``--expectations`` value -> {impl: (path or None, entries)}.

    ``auto``: ``conformance/expectations/<impl>.yaml`` when present; ``none``: no expectations;
    a path: that file, for every impl of the run (normally one).
    """
    option = option or "auto"
    out: dict[str, tuple[str | None, list]] = {}
    for impl in impls:
        if option == "none":
            out[impl] = (None, [])
        elif option == "auto":
            path = default_path(impl)
            out[impl] = (str(path), load_expectations(path)) if path.is_file() else (None, [])
        else:
            if not Path(option).is_file():
                raise ExpectationsError(f"--expectations {option}: no such file")
            out[impl] = (str(option), load_expectations(option))
    return out


class ExpectationTracker:
    """Matches test outcomes against the entries of one implementation and remembers which were used."""

    def __init__(self, entries: list[Expectation]):
        self.entries = entries
        self.used: set[int] = set()

    def find_failure(self, stripped_id: str, function_name: str, clauses, device, dtype,
                     message: str) -> Expectation | None:
        """The entry excusing this failure. A failure attributed to no clause (the test failed before
        declaring any) matches on the test pattern alone; ``message`` entries must match the text."""
        matching = [e for e in self.entries
                    if e.matches_test(stripped_id, function_name, device, dtype)
                    and (not clauses or e.matches_clause(clauses))
                    and (e.message is None or re.search(e.message, message))]
        self.used.update(e.index for e in matching)  # every entry that explains it is in use
        return matching[0] if matching else None

    def find_pass(self, stripped_id: str, function_name: str, clauses, device, dtype) -> Expectation | None:
        """The strict entry this pass contradicts (an unexpected pass), if any."""
        for e in self.entries:
            if e.message is None and e.matches_test(stripped_id, function_name, device, dtype) \
                    and e.matches_clause(clauses):
                return e
        return None

    def note_seen(self, stripped_id: str, function_name: str, clauses, device, dtype, skipped: bool) -> None:
        """A test ran (or was skipped): strict entries that match it are not stale."""
        for e in self.entries:
            if e.message is None and e.matches_test(stripped_id, function_name, device, dtype) and (
                    skipped or e.matches_clause(clauses)):
                self.used.add(e.index)

    def stale(self) -> list[Expectation]:
        return [e for e in self.entries if e.index not in self.used]


def draft_entries(document: dict, impl: str) -> list[dict]:
    """Expectation entries covering every failure of ``impl`` in a report, one per (clause, test), with the
    failure message as a placeholder reason: a starting point that a person turns into real reasons."""
    declared_elsewhere: dict[str, list] = {}
    for r in document["results"]:
        if r["impl"] == impl and r["clauses"]:
            declared_elsewhere.setdefault(r["test"].split("[")[0], r["clauses"])
    entries, seen = [], set()
    for r in document["results"]:
        if r["impl"] != impl or r["outcome"] not in ("failed", "xfailed"):
            continue
        clause = (r["failed_clauses"] or declared_elsewhere.get(r["test"].split("[")[0], ["*"]))[0]
        if (clause, r["test"]) in seen:
            continue
        seen.add((clause, r["test"]))
        first = headline(r["message"])
        entries.append({"clause": clause, "test": r["test"], "reason": f"TODO: {first[:200]}"})
    return entries
