"""Helpers shared by the section builders: immutable containers and the Clause record."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True)
class Clause:
    """One checkable statement of the spec, addressed by a stable id."""

    id: str
    family: str
    summary: str
    source: str  # the data file it comes from, e.g. "classes.yaml"


def frozen(value: Any) -> Any:
    """Deep-convert YAML data to immutable containers (dict -> MappingProxyType, list -> tuple)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def text(value: Any) -> str:
    """YAML scalars as the string the spec wrote (numbers and booleans in their YAML spelling)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
