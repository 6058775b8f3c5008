"""config.yaml: ElectraConfig fields and constraints."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConfigField:
    name: str
    type: str
    default: Any
    doc: str
    nullable: bool = False
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    derived: bool = False
    strategy: tuple = ()  # ((key, value), ...) bounds for drawing examples

    @property
    def id(self) -> str:
        return f"ElectraConfig.field.{self.name}"


@dataclass(frozen=True)
class ConfigConstraint:
    id_suffix: str
    expr: str
    message: str

    @property
    def id(self) -> str:
        return f"ElectraConfig.constraint.{self.id_suffix}"


@dataclass(frozen=True)
class ConfigSpec:
    model_type: str
    fields: tuple[ConfigField, ...]
    constraints: tuple[ConfigConstraint, ...]
    passthrough: tuple[str, ...]

    def field(self, name: str) -> ConfigField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"ElectraConfig has no field {name!r}")

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def defaults(self) -> dict[str, Any]:
        """Default value of every non-derived field (a fresh dict)."""
        return {f.name: f.default for f in self.fields if not f.derived}


def build_config(raw: dict) -> ConfigSpec:
    fields = []
    for f in raw["fields"]:
        f = dict(f)
        if "choices" in f:
            f["choices"] = tuple(f["choices"])
        f["strategy"] = tuple(sorted(f.get("strategy", {}).items()))
        fields.append(ConfigField(**f))
    constraints = tuple(
        ConfigConstraint(id_suffix=c["id"], expr=c["expr"], message=c["message"]) for c in raw["constraints"]
    )
    return ConfigSpec(raw["model_type"], tuple(fields), constraints, tuple(raw.get("passthrough", ())))
