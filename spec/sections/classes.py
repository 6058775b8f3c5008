"""classes.yaml: the model classes with fully expanded constructor and call signatures."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from spec.sections.common import text

KINDS = {"pk": "positional_or_keyword", "kw": "keyword_only", "varpos": "var_positional",
         "varkw": "var_keyword"}


@dataclass(frozen=True)
class Param:
    """One argument of a constructor or call signature.

    ``shape`` is symbolic (see ``spec.shapes``) with the class's leading dims substituted, or None
    for non-tensors; ``default`` is a rule such as ``zeros_like(input_ids)`` (see classes.yaml).
    """

    name: str
    kind: str  # positional_or_keyword | keyword_only | var_positional | var_keyword
    dtype: str  # int | float | bool | any
    shape: str | None
    default: str
    doc: str
    id: str  # <Class>.call.<name> or <Class>.init.<name>
    position: int
    alt_shapes: tuple[str, ...] = ()
    tuple: str | None = None  # length expression when the argument is a tuple of tensors
    container: str | None = None  # opaque pytree kind (params, cache)

    @property
    def required(self) -> bool:
        return self.default == "required"

    @property
    def default_id(self) -> str:
        """<Class>.call.default.<name>: the clause saying what an omitted argument means."""
        owner, part, name = self.id.split(".", 2)
        return f"{owner}.{part}.default.{name}"


@dataclass(frozen=True)
class ModelClass:
    name: str
    framework: str  # tf | flax
    reference: str  # the PyTorch class of transformers that defines the numbers
    extension: bool
    output_class: str  # a key of outputs.yaml
    param_prefix: str  # "" for the base model, "electra." for heads
    lead: str  # leading input dims: "batch" or "batch choices"
    loss: str | None  # losses.yaml head name
    labels: tuple[str, ...]  # call arguments that carry the targets (TF)
    methods: tuple[str, ...]  # extra public methods the class must have
    doc: str
    constructor: tuple[Param, ...]
    call: tuple[Param, ...]

    @property
    def init(self) -> tuple[Param, ...]:
        return self.constructor

    def call_arg(self, name: str) -> Param:
        for p in self.call:
            if p.name == name:
                return p
        raise KeyError(f"{self.name}.call has no argument {name!r}")

    def init_arg(self, name: str) -> Param:
        for p in self.constructor:
            if p.name == name:
                return p
        raise KeyError(f"{self.name}.__init__ has no argument {name!r}")

    @property
    def call_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.call)


def _splice(entries: list) -> list:
    """Flatten one level: a list whose first item is itself a list/dict is an included argument list."""
    out = []
    for e in entries:
        if isinstance(e, list) and e and isinstance(e[0], (list, dict)):
            out.extend(_splice(e))
        else:
            out.append(e)
    return out


def _param(entry: Any, vocab: Mapping, owner: str, part: str, lead: str, position: int) -> Param:
    if isinstance(entry, list):
        name, kind, default = entry
        entry = {"name": name, "kind": kind, "default": default}
    name = entry["name"]
    base = dict(vocab[entry.get("from", name)])
    base.update({k: v for k, v in entry.items() if k not in ("name", "from", "kind", "default")})
    shape = base.get("shape")
    sub = (lambda s: str(s).replace("$lead", lead).strip()) if shape is not None else None
    return Param(
        name=name, kind=KINDS[entry["kind"]], dtype=base["dtype"], shape=sub(shape) if sub else None,
        default=text(entry["default"]), doc=base["doc"], id=f"{owner}.{part}.{name}", position=position,
        alt_shapes=tuple(sub(s) for s in base.get("alt_shapes", ())) if sub else (),
        tuple=None if base.get("tuple") is None else str(base["tuple"]), container=base.get("container"))


def build_classes(raw: dict) -> Mapping[str, ModelClass]:
    vocab = raw["arguments"]
    out = {}
    for name, c in raw["classes"].items():
        lead = c.get("lead", "batch")
        sigs = {}
        for part in ("init", "call"):
            entries = _splice(list(c[part]))
            sigs[part] = tuple(_param(e, vocab, name, part, lead, i) for i, e in enumerate(entries))
        out[name] = ModelClass(
            name=name, framework=c["framework"], reference=c["reference"],
            extension=bool(c.get("extension", False)), output_class=c["output_class"],
            param_prefix=c["param_prefix"], lead=lead, loss=c.get("loss"),
            labels=tuple(c.get("labels", ())),
            methods=tuple(raw["methods"][c["framework"]]) + tuple(c.get("methods", ())), doc=c["doc"],
            constructor=sigs["init"], call=sigs["call"])
    return MappingProxyType(out)
