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
        versions: {transformers: ">=4.40,<4.47"}            # optional: only with these releases installed

A ``test`` pattern without ``[`` matches the test function name whatever its parameters.

Entries without ``message`` are strict: the matching tests must fail on that clause, and a pass is an
unexpected pass. Entries with ``message`` describe a root cause (say, an activation the implementation
lacks) that makes whichever tests draw it fail: they excuse only failures whose text matches, never turn
a pass into a failure, and are stale only when no failure in the run matched them.

``versions`` maps a package (as the adapter's ``framework_versions()`` names it) to a PEP 440 range: the
entry applies only where every named package is installed at a version inside its range, so one file
serves every pinned stack (``compat/``). Entries that do not apply are left out of the run (recorded in
the report as not applicable), so they are neither used nor stale there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

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
    versions: tuple[tuple[str, str], ...] = ()  # (package, PEP 440 range), all must hold
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

    def applies_to(self, installed: Mapping[str, str]) -> bool:
        """Every package the entry names is installed (per ``installed``) at a version inside its range."""
        return all(package in installed and _in_range(installed[package], spec) for package, spec in self.versions)

    def as_dict(self) -> dict:
        d = {"clause": self.clause, "test": self.test, "reason": self.reason}
        for key in ("decision", "message"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        if self.versions:
            d["versions"] = dict(self.versions)
        return d


def _in_range(version: str, spec: str) -> bool:
    try:
        return Version(version) in SpecifierSet(spec)
    except InvalidVersion:  # a version string no release scheme gives (a local build): never in a range
        return False


def _checked_versions(value, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise ExpectationsError(f"{where}: 'versions' must be a non-empty mapping package -> range, got {value!r}")
    out = []
    for package, spec in value.items():
        try:
            SpecifierSet(str(spec))
        except InvalidSpecifier:
            raise ExpectationsError(f"{where}: versions[{package!r}] = {spec!r} is not a PEP 440 version range "
                                    f"(e.g. '>=4.40,<4.47')") from None
        out.append((str(package), str(spec)))
    return tuple(sorted(out))


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
        unknown = set(entry) - {"clause", "test", "reason", "decision", "devices", "dtypes", "message", "versions"}
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
            message=_checked_regex(entry.get("message"), where),
            versions=_checked_versions(entry.get("versions"), where), index=i))
    return result


@dataclass(frozen=True)
class ImplExpectations:
    """One implementation's expectations in this run: the file, the entries that apply to the installed
    releases, and those that do not (their ``versions`` exclude what is installed)."""
    path: str | None = None
    entries: list = field(default_factory=list)
    not_applicable: list = field(default_factory=list)


def resolve_expectations(option: str | None, impls: list[str],
                         installed: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, ImplExpectations]:
    """``--expectations`` value -> {impl: ImplExpectations}; ``installed``: impl -> {package: version}
    (the adapter's framework_versions()), against which entries with ``versions`` are selected.

    ``auto``: ``conformance/expectations/<impl>.yaml`` when present; ``none``: no expectations;
    a path: that file, for every impl of the run (normally one).
    """
    option = option or "auto"
    out: dict[str, ImplExpectations] = {}
    for impl in impls:
        if option == "none":
            out[impl] = ImplExpectations()
            continue
        path = default_path(impl) if option == "auto" else Path(option)
        if option == "auto" and not path.is_file():
            out[impl] = ImplExpectations()
            continue
        if not path.is_file():
            raise ExpectationsError(f"--expectations {option}: no such file")
        versions = (installed or {}).get(impl, {})
        entries = load_expectations(path)
        out[impl] = ImplExpectations(str(path), [e for e in entries if e.applies_to(versions)],
                                     [e for e in entries if not e.applies_to(versions)])
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
