"""Load the spec data files (``spec/data/*.yaml``) into typed, immutable objects.

Every data file is validated against ``spec/schema/<stem>.schema.json`` (JSON Schema 2020-12) when
that schema exists; the section modules in ``spec/sections`` turn the raw data into frozen dataclasses.
``load_spec()`` is cached: call it anywhere.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from spec.sections.classes import ModelClass, Param, build_classes  # noqa: F401
from spec.sections.common import Clause, frozen
from spec.sections.config import ConfigConstraint, ConfigField, ConfigSpec, build_config  # noqa: F401
from spec.sections.errors import ErrorClause, ExceptionSpec, build_errors  # noqa: F401
from spec.sections.outputs import OutputClass, OutputField, build_outputs  # noqa: F401
from spec.sections.tolerances import Tolerance, ToleranceTable, build_tolerances  # noqa: F401

DATA_DIR = Path(__file__).parent / "data"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when libyaml is present
SCHEMA_DIR = Path(__file__).parent / "schema"


class SpecError(ValueError):
    """A spec data file is missing, unreadable or does not validate against its schema."""


def read_data(stem: str, data_dir: Path = DATA_DIR) -> Any:
    path = Path(data_dir) / f"{stem}.yaml"
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"cannot read spec data {path}: {e}") from e


def schema_for(stem: str, schema_dir: Path = SCHEMA_DIR) -> dict | None:
    path = Path(schema_dir) / f"{stem}.schema.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def validation_errors(data: Any, schema: dict) -> list[str]:
    """Every schema violation of data, as 'path: message' lines (empty when valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))]


def validate_file(stem: str, data_dir: Path = DATA_DIR, schema_dir: Path = SCHEMA_DIR) -> Any:
    """Read spec/data/<stem>.yaml and raise SpecError listing the violations of its schema."""
    data = read_data(stem, data_dir)
    schema = schema_for(stem, schema_dir)
    if schema is not None:
        errors = validation_errors(data, schema)
        if errors:
            raise SpecError(f"spec/data/{stem}.yaml does not match its schema:\n  " + "\n  ".join(errors[:20]))
    return data


@dataclass(frozen=True)
class Spec:
    config: ConfigSpec
    outputs: Mapping[str, OutputClass]
    classes: Mapping[str, ModelClass]
    errors: Mapping[str, ErrorClause]
    exceptions: Mapping[str, ExceptionSpec]
    tolerances: ToleranceTable
    sections: Mapping[str, Any]  # typed views of the other files (meta, losses, behaviour, ...)
    _raw: Mapping[str, Any]  # every data file, frozen, by stem

    # -- lookups used across the project -----------------------------------------------------
    def raw(self, stem: str) -> Any:
        """The data of spec/data/<stem>.yaml as immutable containers (e.g. raw('params'))."""
        try:
            return self._raw[stem]
        except KeyError:
            raise KeyError(f"no spec data file {stem}.yaml; have {sorted(self._raw)}") from None

    def classes_for(self, framework: str) -> tuple[ModelClass, ...]:
        """The classes of one framework ('tf' or 'flax'), documented ones first, in file order."""
        found = [c for c in self.classes.values() if c.framework == framework]
        if not found:
            raise ValueError(f"unknown framework {framework!r}; expected one of "
                             f"{sorted({c.framework for c in self.classes.values()})}")
        return tuple(sorted(found, key=lambda c: c.extension))

    def tolerance(self, kind: str, dtype: str, device: str, field: str | None = None) -> Tolerance:
        return self.tolerances(kind, dtype, device, field)

    def output_of(self, class_name: str) -> OutputClass:
        return self.outputs[self.classes[class_name].output_class]

    def errors_for(self, class_name: str) -> tuple[ErrorClause, ...]:
        fw = self.classes[class_name].framework
        return tuple(e for e in self.errors.values() if e.applies_to(class_name, fw))

    def clauses(self) -> Mapping[str, Clause]:
        """Every clause by stable id, in spec order (cached)."""
        from spec.clauses import collect_clauses

        return _cached_clauses(self, collect_clauses)

    # -- typed views of the prose sections ----------------------------------------------------
    @property
    def meta(self):
        return self.sections["meta"]

    @property
    def losses(self):
        return self.sections["losses"]

    @property
    def behaviour(self):
        return self.sections["behaviour"]

    @property
    def files(self):
        return self.sections["files"]

    @property
    def tokenizer(self):
        return self.sections["tokenizer"]

    @property
    def decisions(self):
        return self.sections.get("decisions", MappingProxyType({}))

    @property
    def version(self) -> str:
        meta = self.sections.get("meta")
        return meta.spec_version if meta is not None else "0.0.0"


_CLAUSES: dict[int, Mapping[str, Clause]] = {}


def _cached_clauses(spec: "Spec", collect) -> Mapping[str, Clause]:
    key = id(spec)
    if key not in _CLAUSES:
        _CLAUSES[key] = collect(spec)
    return _CLAUSES[key]


def _optional_sections(raw: Mapping[str, Any]) -> dict[str, Any]:
    from spec.sections import extra

    return {stem: build(raw[stem]) for stem, build in extra.BUILDERS.items() if stem in raw}


def check_references(spec: Spec) -> Spec:
    """Cross-file consistency a schema cannot express; raises SpecError listing every dangling reference."""
    problems = [f"{c.name}: output class {c.output_class} not in outputs.yaml"
                for c in spec.classes.values() if c.output_class not in spec.outputs]
    losses = spec.sections.get("losses")
    if losses is not None:
        problems += [f"{c.name}: loss {c.loss} not in losses.yaml" for c in spec.classes.values()
                     if c.loss is not None and c.loss not in losses.heads]
    ids = spec.clauses()
    combinations = spec.sections.get("combinations")
    if combinations is not None:
        heads = set(losses.heads) if losses is not None else set()
        problems += [f"combinations.yaml: head_parts names {h!r}, not a losses.yaml head"
                     for h in combinations.head_parts if h not in heads]
        problems += [f"combinations.yaml: part {p!r} is neither architecture.{p} nor one of layers, cache, "
                     f"outputs" for p in combinations.parts
                     if p not in ("layers", "cache", "outputs") and f"architecture.{p}" not in ids]
        problems += [f"combinations.yaml: apart {sorted(a.features)} cites unknown clause {a.clause}"
                     for a in combinations.apart if a.clause not in ids]
        problems += [f"combinations.yaml: apart names {f!r}, whose option has no parts in features"
                     for a in combinations.apart for f in sorted(a.features)
                     if f.split("=", 1)[0] not in combinations.features]
        for a in combinations.alike.values():
            field = next((f for f in spec.config.fields if f.name == a.option), None)
            if field is None or field.choices is None or a.option not in combinations.features:
                problems.append(f"combinations.yaml: alike names {a.option!r}, not a config option with choices "
                                f"and parts")
                continue
            choices = {str(c) for c in field.choices} | ({"None"} if field.nullable else set())
            problems += [f"combinations.yaml: alike {a.option} group {g} names {v!r}, not one of its choices"
                         for g, values in a.groups.items() for v in values if v not in choices]
    for d in spec.decisions.values():
        problems += [f"{d.id}: affects unknown clause {a}" for a in d.affects if a not in ids]
    for e in spec.errors.values():
        problems += [f"{e.id}: refers to unknown clause {r}" for r in e.refs if r not in ids]
    if problems:
        raise SpecError("spec cross references do not resolve:\n  " + "\n  ".join(problems))
    return spec


@functools.lru_cache(maxsize=None)
def load_spec(data_dir: str | None = None) -> Spec:
    """The whole spec, validated and typed. data_dir overrides spec/data (tests use broken copies)."""
    ddir = Path(data_dir) if data_dir else DATA_DIR
    if not SCHEMA_DIR.is_dir():
        raise SpecError(f"spec schemas missing: {SCHEMA_DIR} does not exist (broken installation?)")
    raw = {p.stem: validate_file(p.stem, ddir) for p in sorted(ddir.glob("*.yaml"))}
    exceptions, errors = build_errors(raw["errors"])
    return check_references(Spec(
        config=build_config(raw["config"]),
        outputs=build_outputs(raw["outputs"]),
        classes=build_classes(raw["classes"]),
        errors=errors,
        exceptions=exceptions,
        tolerances=build_tolerances(raw["tolerances"]),
        sections=MappingProxyType(_optional_sections(raw)),
        _raw=MappingProxyType({k: frozen(v) for k, v in raw.items()}),
    ))
