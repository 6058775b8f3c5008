"""Load the spec data files into typed, immutable objects.

Only the config part lives here for now; the other sections are added beside it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

DATA_DIR = Path(__file__).parent / "data"


def _read(name: str) -> Any:
    with open(DATA_DIR / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


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


def _config_spec(raw: dict) -> ConfigSpec:
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


@dataclass(frozen=True)
class OutputField:
    output_class: str
    name: str
    dtype: str
    present_when: str
    shape: str | None = None  # None for opaque containers (container is set)
    tuple: str | None = None  # length expression when the field is a tuple of tensors
    container: str | None = None
    doc: str = ""

    @property
    def id(self) -> str:
        return f"{self.output_class}.field.{self.name}"


@dataclass(frozen=True)
class OutputClass:
    name: str
    fields: tuple[OutputField, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _outputs(raw: dict) -> dict[str, OutputClass]:
    out = {}
    for cname, c in raw["classes"].items():
        fields = tuple(OutputField(output_class=cname, **{k: (str(v) if k in ("shape", "tuple") else v)
                                                          for k, v in f.items()}) for f in c["fields"])
        out[cname] = OutputClass(cname, fields)
    return out


@dataclass(frozen=True)
class Spec:
    config: ConfigSpec
    outputs: Mapping[str, OutputClass]


@functools.lru_cache(maxsize=None)
def load_spec() -> Spec:
    return Spec(
        config=_config_spec(_read("config.yaml")),
        outputs=MappingProxyType(_outputs(_read("outputs.yaml"))),
    )
