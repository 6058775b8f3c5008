"""meta, losses, behaviour, files, decisions, distribution and combinations: the sections found in
``Spec.sections[stem]``."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from spec.sections.common import frozen


@dataclass(frozen=True)
class Symbol:
    name: str
    key: str  # short dimension key used in code comments (B, S, D, ...)
    doc: str
    expr: str | None = None  # derived symbols only


@dataclass(frozen=True)
class Meta:
    spec_version: str
    name: str
    describes: Mapping[str, Any]
    dynamic_dims: tuple[Symbol, ...]
    derived: tuple[Symbol, ...]
    shape_keys: Mapping[str, str]
    families: Mapping[str, str]  # clause family -> doc, in report order

    @property
    def dynamic_names(self) -> frozenset[str]:
        return frozenset(d.name for d in self.dynamic_dims)

    @property
    def derived_names(self) -> frozenset[str]:
        return frozenset(d.name for d in self.derived)


def build_meta(raw: dict) -> Meta:
    return Meta(
        spec_version=str(raw["spec_version"]), name=raw["name"], describes=frozen(raw["describes"]),
        dynamic_dims=tuple(Symbol(d["name"], d["key"], d["doc"]) for d in raw["dynamic_dims"]),
        derived=tuple(Symbol(d["name"], d["key"], d["doc"], str(d["expr"])) for d in raw["derived"]),
        shape_keys=MappingProxyType(dict(raw.get("shape_keys", {}))),
        families=MappingProxyType({f["name"]: f["doc"] for f in raw["families"]}))


@dataclass(frozen=True)
class Statement:
    """A clause stated in prose: behaviour, file rules and general loss rules."""

    id: str
    family: str
    text: str
    frameworks: tuple[str, ...] = ("tf", "flax")
    classes: tuple[str, ...] | None = None  # None = all classes of those frameworks
    check: str = ""


@dataclass(frozen=True)
class Loss:
    head: str
    classes: tuple[str, ...]
    labels: tuple[str, ...]
    definition: str
    reduction: str
    shape: str
    rules: Mapping[str, str]  # rule name -> text; clause id loss.<head>.<rule>

    @property
    def id(self) -> str:
        return f"loss.{self.head}"


@dataclass(frozen=True)
class Losses:
    ignore_index: int
    general: tuple[Statement, ...]
    heads: Mapping[str, Loss]

    def for_class(self, class_name: str) -> Loss | None:
        return next((h for h in self.heads.values() if class_name in h.classes), None)


def build_losses(raw: dict) -> Losses:
    heads = {name: Loss(head=name, classes=tuple(h["classes"]), labels=tuple(h["labels"]),
                        definition=h["definition"], reduction=h["reduction"], shape=str(h["shape"]),
                        rules=MappingProxyType(dict(h.get("rules") or {})))
             for name, h in raw["losses"].items()}
    general = tuple(Statement(f"loss.{g['id']}", "losses", g["text"]) for g in raw["general"])
    return Losses(int(raw["ignore_index"]), general, MappingProxyType(heads))


def _statement(s: dict, prefix: str = "", family: str | None = None) -> Statement:
    classes = s.get("classes", "all")
    return Statement(id=prefix + s["id"], family=s.get("family", family), text=s["text"],
                     frameworks=tuple(s.get("frameworks", ("tf", "flax"))),
                     classes=None if classes == "all" else tuple(classes), check=s.get("check", ""))


@dataclass(frozen=True)
class Behaviour:
    clauses: tuple[Statement, ...]
    activations: Mapping[str, str]  # activation name -> formula; clause ids activation.<name>
    architecture: tuple[Statement, ...]  # clause ids architecture.<part>

    def __iter__(self):
        return iter(self.clauses)

    def clause(self, clause_id: str) -> Statement:
        for s in self.clauses + self.architecture:
            if s.id == clause_id:
                return s
        raise KeyError(clause_id)


def build_behaviour(raw: dict) -> Behaviour:
    return Behaviour(clauses=tuple(_statement(s) for s in raw["clauses"]),
                     activations=MappingProxyType(dict(raw["activations"])),
                     architecture=tuple(_statement(a, "architecture.", "semantics") for a in raw["architecture"]))


@dataclass(frozen=True)
class CheckpointFile:
    key: str
    name: str
    format: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    writes_when: str
    doc: str
    metadata: Mapping[str, Any]

    @property
    def id(self) -> str:
        return f"files.{self.key}"


@dataclass(frozen=True)
class Files:
    files: Mapping[str, CheckpointFile]
    rules: tuple[Statement, ...]

    def by_name(self, filename: str) -> CheckpointFile:
        for f in self.files.values():
            if f.name == filename:
                return f
        raise KeyError(filename)


def build_files(raw: dict) -> Files:
    files = {k: CheckpointFile(k, f["name"], f["format"], tuple(f["reads"]), tuple(f["writes"]),
                               str(f["writes_when"]), f["doc"], frozen(f.get("metadata", {})))
             for k, f in raw["files"].items()}
    return Files(MappingProxyType(files), tuple(_statement(r, "files.", "persistence") for r in raw["rules"]))


@dataclass(frozen=True)
class Decision:
    id: str
    topic: str
    observed: Mapping[str, str]  # pt / tf / flax / docs -> what each does
    spec: str  # what the spec requires
    reason: str
    affects: tuple[str, ...]  # clause ids
    evidence: str  # the command / probe fact that shows the observed behaviour


def build_decisions(raw: dict) -> Mapping[str, Decision]:
    return MappingProxyType({d["id"]: Decision(
        id=d["id"], topic=d["topic"], observed=frozen(d["observed"]), spec=d["spec"], reason=d["reason"],
        affects=tuple(d["affects"]), evidence=d.get("evidence", "")) for d in raw["decisions"]})


@dataclass(frozen=True)
class Distribution:
    layouts: Mapping[str, str]  # layout name -> what it divides (distribution.yaml)
    clauses: tuple[Statement, ...]  # clause ids distribution.<id>


def build_distribution(raw: dict) -> Distribution:
    return Distribution(MappingProxyType({k: v["text"] for k, v in raw["layouts"].items()}),
                        tuple(_statement(c, "distribution.", "distribution") for c in raw["clauses"]))


@dataclass(frozen=True)
class Apart:
    features: frozenset[str]  # two features
    clause: str  # the clause that keeps them apart
    why: str


@dataclass(frozen=True)
class Alike:
    option: str  # a config option whose values act alike in every pair
    groups: Mapping[str, tuple[str, ...]]  # group name -> the values (as call_features writes them: str(value))
    why: str

    def group_of(self, value: str) -> str | None:
        return next((name for name, values in self.groups.items() if value in values), None)


@dataclass(frozen=True)
class Combinations:
    parts: tuple[str, ...]  # where a feature can act: architecture.* ids and layers, cache, outputs, loss
    head_parts: Mapping[str, str]  # losses.yaml head -> the part only the classes with that head have
    part_needs_input: Mapping[str, str]  # part -> the call input a class must take to have it
    features: Mapping[str, tuple[str, ...]]  # feature option (hidden_act, input:head_mask, padding) -> parts
    apart: tuple[Apart, ...]  # pairs of features no call can have together
    alike: Mapping[str, Alike]  # option -> its groups of values that act alike in every pair

    def acts_on(self, option: str) -> tuple[str, ...]:
        """The parts a feature option acts on; KeyError naming the option when the spec lists none."""
        try:
            return self.features[option]
        except KeyError:
            raise KeyError(f"combinations.yaml gives no parts for the feature {option!r}") from None


def build_combinations(raw: dict) -> Combinations:
    parts = tuple(raw["parts"])
    named = ({p for acts in raw["features"].values() for p in acts} | set(raw["head_parts"].values())
             | set(raw["part_needs_input"]))
    unknown = sorted(named - set(parts))
    if unknown:
        raise ValueError(f"combinations.yaml names parts not in its parts list: {unknown}")
    return Combinations(parts, MappingProxyType(dict(raw["head_parts"])),
                        MappingProxyType(dict(raw["part_needs_input"])),
                        MappingProxyType({k: tuple(v) for k, v in raw["features"].items()}),
                        tuple(Apart(frozenset(a["features"]), a["clause"], a["why"]) for a in raw["apart"]),
                        MappingProxyType({a["option"]: Alike(a["option"], MappingProxyType(
                            {g: tuple(str(v) for v in values) for g, values in a["groups"].items()}), a["why"])
                            for a in raw["alike"]}))


def _build_tokenizer(raw: dict):
    from spec.sections.tokenizer import build_tokenizer

    return build_tokenizer(raw)


BUILDERS = {"meta": build_meta, "losses": build_losses, "behaviour": build_behaviour, "files": build_files,
            "decisions": build_decisions, "tokenizer": _build_tokenizer, "distribution": build_distribution,
            "combinations": build_combinations}
