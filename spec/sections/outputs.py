"""outputs.yaml: output classes and their ordered fields."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping


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

    def field(self, name: str) -> OutputField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


def build_outputs(raw: dict) -> Mapping[str, OutputClass]:
    out = {}
    for cname, c in raw["classes"].items():
        fields = tuple(OutputField(output_class=cname, **{k: (str(v) if k in ("shape", "tuple") else v)
                                                          for k, v in f.items()}) for f in c["fields"])
        out[cname] = OutputClass(cname, fields)
    return MappingProxyType(out)
