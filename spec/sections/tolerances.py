"""tolerances.yaml: atol/rtol by comparison kind, compute dtype, device and output field."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANY = "*"


@dataclass(frozen=True)
class Tolerance:
    """|actual - reference| <= atol + rtol * |reference|, elementwise."""

    atol: float
    rtol: float

    def check(self, actual, reference) -> tuple[bool, float]:
        """(within tolerance, max abs error). NaN anywhere fails."""
        a = np.asarray(actual, dtype=np.float64)
        r = np.asarray(reference, dtype=np.float64)
        if a.shape != r.shape:
            raise ValueError(f"cannot compare shapes {a.shape} and {r.shape}")
        err = np.abs(a - r)
        max_err = float(err.max()) if err.size else 0.0
        ok = bool(np.all(err <= self.atol + self.rtol * np.abs(r))) and not np.isnan(err).any()
        return ok, max_err


@dataclass(frozen=True)
class ToleranceRule:
    id: str
    kind: str
    dtype: str
    device: str
    field: str
    tolerance: Tolerance
    why: str

    def matches(self, kind: str, dtype: str, device: str, field: str | None) -> bool:
        return (self.kind in (ANY, kind) and self.dtype in (ANY, dtype) and self.device in (ANY, device)
                and (self.field == ANY or self.field == field))

    @property
    def specificity(self) -> int:
        # the field counts most, then dtype, device, kind
        return sum(w for v, w in ((self.field, 8), (self.dtype, 4), (self.device, 2), (self.kind, 1)) if v != ANY)


@dataclass(frozen=True)
class DriftGate:
    """When a grown error is a regression (``electra-conformance diff``): it grew more than ``ratio``
    times and now uses more than ``fraction`` of its allowance (atol + rtol |reference|)."""

    id: str
    ratio: float
    fraction: float
    why: str

    def is_regression(self, old_err: float, new_err: float, new_error_ratio: float) -> bool:
        return new_err > self.ratio * old_err and new_error_ratio > self.fraction


@dataclass(frozen=True)
class ToleranceTable:
    kinds: tuple[str, ...]
    dtypes: tuple[str, ...]
    devices: tuple[str, ...]
    rules: tuple[ToleranceRule, ...]
    measured: str  # how the values were measured
    drift: DriftGate

    def rule(self, kind: str, dtype: str, device: str, field: str | None = None) -> ToleranceRule:
        for name, value, allowed in (("kind", kind, self.kinds), ("dtype", dtype, self.dtypes),
                                     ("device", device, self.devices)):
            if value not in allowed:
                raise ValueError(f"unknown tolerance {name} {value!r}; expected one of {allowed}")
        found = [r for r in self.rules if r.matches(kind, dtype, device, field)]
        if not found:
            raise LookupError(f"no tolerance rule for kind={kind} dtype={dtype} device={device} field={field}")
        best = max(r.specificity for r in found)
        return next(r for r in found if r.specificity == best)  # first in file order wins a tie

    def __call__(self, kind: str, dtype: str, device: str, field: str | None = None) -> Tolerance:
        return self.rule(kind, dtype, device, field).tolerance


def build_tolerances(raw: dict) -> ToleranceTable:
    rules = []
    for r in raw["rules"]:
        key = ".".join(str(r.get(k, ANY)) for k in ("kind", "dtype", "device", "field"))
        rules.append(ToleranceRule(
            id=f"tolerance.{key}".replace("*", "any"), kind=r.get("kind", ANY), dtype=r.get("dtype", ANY),
            device=r.get("device", ANY), field=r.get("field", ANY),
            tolerance=Tolerance(float(r["atol"]), float(r["rtol"])), why=r.get("why", "")))
    gate = raw["regression"]
    drift = DriftGate("tolerance.regression.drift", float(gate["drift_ratio"]), float(gate["drift_fraction"]),
                      gate["why"])
    return ToleranceTable(tuple(raw["kinds"]), tuple(raw["dtypes"]), tuple(raw["devices"]), tuple(rules),
                          raw["measured"], drift)
