"""The ``check`` fixture's Checker: assertions that name the spec clause they test.

Every assertion records what it measured on the test's TestRecord (read by the report), and a failed
assertion raises ClauseFailure, an AssertionError carrying the clause id.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np


class ClauseFailure(AssertionError):
    """An assertion about one spec clause failed."""

    def __init__(self, clause: str, message: str, field_name: str | None = None):
        super().__init__(f"[{clause}] {message}")
        self.clause = clause
        self.field = field_name


@dataclass
class TestRecord:
    """What one test declared and measured; one per pytest item."""

    clauses: list = field(default_factory=list)  # declared clause ids, in order, no duplicates
    measurements: list = field(default_factory=list)  # dicts, see Checker.allclose
    builds: int = 0
    compilations: int = 0
    feature_sets: set = field(default_factory=set)  # (class name, conformance.pairs.call_features) of each call
    edges: list = field(default_factory=list)  # {clause, edge, met}: each edge of an error condition tried

    def declare(self, *clause_ids: str) -> None:
        for cid in clause_ids:
            if not isinstance(cid, str) or not cid:
                raise TypeError(f"clause ids must be non-empty strings, got {cid!r}")
            if cid not in self.clauses:
                self.clauses.append(cid)


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


def spec_tolerance(kind: str, dtype: str, device: str, field_name: str | None) -> Tolerance:
    """The tolerance tolerances.yaml gives this comparison."""
    from spec import load_spec

    rule = load_spec().tolerance(kind, dtype, device, field_name)
    return Tolerance(float(rule.atol), float(rule.rtol))


def spec_tolerance_rule_id(kind: str, dtype: str, device: str, field_name: str | None) -> str | None:
    """The clause id of the tolerances.yaml rule that decides this comparison; None for a kind the spec
    does not know."""
    from spec import load_spec

    try:
        return load_spec().tolerances.rule(kind, dtype, device, field_name).id
    except (LookupError, ValueError):
        return None


def _errors(a: np.ndarray, e: np.ndarray, tol: Tolerance) -> tuple[np.ndarray, np.ndarray]:
    """(|a - e| elementwise, with inf where only one is NaN and 0 where both are; atol + rtol |e|)."""
    diff = np.where(np.isnan(a) & np.isnan(e), 0.0, np.abs(a - e))
    diff = np.where(np.isnan(a) != np.isnan(e), np.inf, diff)
    return diff, tol.atol + tol.rtol * np.abs(np.nan_to_num(e))


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Checker:
    """Bound to one test, one adapter and one device (the ``check`` fixture)."""

    def __init__(self, record: TestRecord, *, impl: str = "", device: str = "cpu"):
        self.record = record
        self.impl = impl
        self.device = device

    def clause(self, *clause_ids: str) -> None:
        """Declare the clause ids this test exercises."""
        self.record.declare(*clause_ids)

    def fail(self, clause: str, message: str, field_name: str | None = None):
        self.record.declare(clause)
        raise ClauseFailure(clause, message, field_name)

    def that(self, condition: Any, *, clause: str, message: str) -> None:
        self.record.declare(clause)
        if not condition:
            self.fail(clause, message)

    def equal(self, actual: Any, expected: Any, *, clause: str, what: str) -> None:
        self.record.declare(clause)
        if isinstance(actual, np.ndarray) or isinstance(expected, np.ndarray):
            a, e = np.asarray(actual), np.asarray(expected)
            same = a.shape == e.shape and bool(np.array_equal(a, e))
            if not same:
                detail = (f"shape {a.shape} vs expected {e.shape}" if a.shape != e.shape
                          else f"{int(np.sum(a != e))} of {a.size} elements differ")
                self.fail(clause, f"{what}: {detail}; got {_short(a)}, expected {_short(e)}")
            return
        if actual != expected:
            self.fail(clause, f"{what}: got {_short(actual)}, expected {_short(expected)}")

    def allclose(self, actual: Any, expected: Any, *, clause: str, kind: str, field: str | None = None,
                 dtype: str = "float32", what: str | None = None) -> float:
        """|actual - expected| <= atol + rtol * |expected| elementwise, tolerance from the spec (by
        ``field``). Returns the max absolute error. ``what`` names the compared value in a failure
        (default: the field)."""
        self.record.declare(clause)
        tol = spec_tolerance(kind, dtype, self.device, field)
        rule_id = spec_tolerance_rule_id(kind, dtype, self.device, field)
        if rule_id:
            self.record.declare(rule_id)  # the tolerances.yaml rule this comparison is held to
        what = what or field or "value"
        a = np.asarray(actual, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
        if a.shape != e.shape:
            self.fail(clause, f"{what}: shape {a.shape}, expected {e.shape}", field)
        diff, allowed = _errors(a, e, tol)
        max_abs = float(diff.max()) if diff.size else 0.0
        rel = diff / np.maximum(np.abs(np.nan_to_num(e)), np.finfo(np.float64).tiny)
        max_rel = float(rel.max()) if rel.size else 0.0
        excess = diff - allowed
        ratio = float((diff / np.maximum(allowed, np.finfo(np.float64).tiny)).max()) if diff.size else 0.0
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), a.shape)) if a.size else ()
        self.record.measurements.append({
            "clause": clause, "tolerance": rule_id, "kind": kind, "field": field, "dtype": dtype, "device": self.device,
            "max_abs_err": max_abs, "max_rel_err": max_rel, "atol": tol.atol, "rtol": tol.rtol,
            "error_ratio": ratio,  # max of |a - e| / (atol + rtol |e|); > 1 fails
        })
        if a.size and bool(np.any(excess > 0)):
            count = int(np.sum(excess > 0))
            self.fail(clause, (
                f"{what} ({kind}, {dtype}, {self.device}): max abs error {max_abs:.3g} exceeds tolerance "
                f"atol={tol.atol:g} rtol={tol.rtol:g} at {count} of {a.size} elements; worst index {worst}: "
                f"got {a[worst]!r}, expected {e[worst]!r}"), field)
        return max_abs

    def within(self, actual: Any, expected: Any, *, kind: str, field: str | None = None,
               dtype: str = "float32") -> bool:
        """Whether ``allclose`` would pass, recording nothing: for deciding whether a costlier check that
        names the cause is needed."""
        a = np.asarray(actual, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
        if a.shape != e.shape:
            return False
        diff, allowed = _errors(a, e, spec_tolerance(kind, dtype, self.device, field))
        return bool(np.all(diff <= allowed))

    @contextlib.contextmanager
    def raises(self, exc_types: type | tuple, *, clause: str, words: Iterable[str] = (), edge: str | None = None):
        """The block must raise one of ``exc_types`` whose message contains every word (case-insensitive).
        ``edge`` names which edge of the clause's condition the block meets (for the report's
        coverage.error_edges: met when it raised as specified)."""
        self.record.declare(clause)
        types = exc_types if isinstance(exc_types, tuple) else (exc_types,)
        expected = " or ".join(t.__name__ for t in types)
        info = _RaisedInfo()
        try:
            yield info
        except ClauseFailure:
            self._edge(clause, edge, met=False)
            raise
        except types as err:
            info.value = err
            message = own_message(err)
            missing = [w for w in words if str(w).lower() not in message.lower()]
            self._edge(clause, edge, met=not missing)
            if missing:
                self.fail(clause, f"{type(err).__name__} raised, but its message lacks {missing}: {message!r}")
            return
        except Exception as err:  # noqa: BLE001 - any other exception is the finding
            self._edge(clause, edge, met=False)
            self.fail(clause, f"expected {expected}, got {type(err).__name__}: {_short(str(err), 300)}")
        self._edge(clause, edge, met=False)
        self.fail(clause, f"expected {expected} to be raised, but nothing was raised")

    def _edge(self, clause: str, edge: str | None, *, met: bool) -> None:
        if edge is not None:
            self.record.edges.append({"clause": clause, "edge": edge, "met": met})


#: what Keras appends to an exception raised inside a layer's call: every argument the call received, by
#: name, whatever the error is about (Keras 3: "Arguments received by X.call():", tf-keras: "Call arguments
#: received by layer 'x' (type X):")
_KERAS_ARGUMENT_LISTING = re.compile(r"\n\s*(call )?arguments received by ", re.IGNORECASE)


def own_message(err: BaseException) -> str:
    """The message of ``err`` without Keras' listing of the call's arguments: a message names the argument at
    fault only when the error itself does, not because Keras lists every argument after it."""
    return _KERAS_ARGUMENT_LISTING.split(str(err), 1)[0]


class _RaisedInfo:
    value: BaseException | None = None
