"""Every clause of the spec by stable id, in a fixed order: config, classes (signatures, defaults,
outputs), losses, params, files, behaviour, distribution, errors, tolerances, decisions."""
from __future__ import annotations

from types import MappingProxyType
from typing import Iterator, Mapping

from spec.sections.common import Clause


def _config(spec) -> Iterator[Clause]:
    for f in spec.config.fields:
        yield Clause(f.id, "config", f.doc, "config.yaml")
    for c in spec.config.constraints:
        yield Clause(c.id, "config", c.expr, "config.yaml")


def _classes(spec) -> Iterator[Clause]:
    for cls in spec.classes.values():
        for p in cls.constructor:
            yield Clause(p.id, "signatures", f"{p.kind} {p.name}: {p.doc}", "classes.yaml")
        for p in cls.call:
            shape = f" ({p.shape})" if p.shape is not None else ""
            yield Clause(p.id, "signatures", f"{p.kind} {p.name}{shape}, {p.dtype}: {p.doc}", "classes.yaml")
        for m in cls.methods:
            yield Clause(f"{cls.name}.method.{m}", "signatures", f"{cls.name} has a public method {m}", "classes.yaml")
        for p in cls.call:
            if not p.required:
                yield Clause(p.default_id, "defaults", f"omitted {p.name} means {p.default}", "classes.yaml")
        for f in spec.outputs[cls.output_class].fields:
            yield Clause(f"{cls.name}.output.{f.name}", "outputs",
                         f"{f.name} ({f.shape if f.container is None else f.container}) when {f.present_when}",
                         "outputs.yaml")


def _outputs(spec) -> Iterator[Clause]:
    for oc in spec.outputs.values():
        for f in oc.fields:
            yield Clause(f.id, "outputs", f"{f.name}: {f.doc or f.shape}", "outputs.yaml")


def _losses(spec) -> Iterator[Clause]:
    losses = spec.sections.get("losses")
    if losses is None:
        return
    for g in losses.general:
        yield Clause(g.id, "losses", g.text, "losses.yaml")
    for h in losses.heads.values():
        yield Clause(h.id, "losses", h.definition, "losses.yaml")
        yield Clause(f"{h.id}.reduction", "losses", h.reduction, "losses.yaml")
        yield Clause(f"{h.id}.shape", "losses", f"shape ({h.shape})", "losses.yaml")
        for rule, text in h.rules.items():
            yield Clause(f"{h.id}.{rule}", "losses", text, "losses.yaml")


def _params(spec) -> Iterator[Clause]:
    """params.<module>.<name template>, params.class.<Class>, params.naming.<rule> (params.yaml's ids)."""
    try:
        raw = spec.raw("params")
    except KeyError:
        return
    for module, entries in raw["modules"].items():
        for p in entries:
            yield Clause(f"params.{module}.{p['name']}", "persistence",
                         f"{p['name']} shape ({', '.join(map(str, p['shape']))})", "params.yaml")
    yield Clause(f"params.tied.{raw['tied']['name']}", "persistence",
                 f"shares {raw['tied']['shares']}", "params.yaml")
    for cls, c in raw["classes"].items():
        yield Clause(f"params.class.{cls}", "persistence", f"modules: base + {', '.join(c['heads']) or 'none'}",
                     "params.yaml")
    for rule in raw["naming"]:
        yield Clause(f"params.naming.{rule}", "persistence", f"naming rule {rule}", "params.yaml")


def _tokenizer(spec) -> Iterator[Clause]:
    tok = spec.sections.get("tokenizer")
    if tok is None:
        return
    for cid in tok.clause_ids():
        family = "errors" if ".error." in cid else "defaults" if ".default." in cid else "semantics"
        yield Clause(cid, family, "", "tokenizer.yaml")


def _files(spec) -> Iterator[Clause]:
    files = spec.sections.get("files")
    if files is None:
        return
    for f in files.files.values():
        yield Clause(f.id, "persistence", f.doc, "files.yaml")
    for r in files.rules:
        yield Clause(r.id, r.family, r.text, "files.yaml")


def _behaviour(spec) -> Iterator[Clause]:
    behaviour = spec.sections.get("behaviour")
    if behaviour is None:
        return
    for name, formula in behaviour.activations.items():
        yield Clause(f"activation.{name}", "semantics", formula, "behaviour.yaml")
    for s in behaviour.architecture:
        yield Clause(s.id, s.family, s.text, "behaviour.yaml")
    for s in behaviour.clauses:
        yield Clause(s.id, s.family, s.text, "behaviour.yaml")


def _distribution(spec) -> Iterator[Clause]:
    distribution = spec.sections.get("distribution")
    for s in distribution.clauses if distribution is not None else ():
        yield Clause(s.id, s.family, s.text, "distribution.yaml")


def _errors(spec) -> Iterator[Clause]:
    for e in spec.errors.values():
        yield Clause(e.id, "errors", f"{e.condition} -> {e.exception}", "errors.yaml")


def _tolerances(spec) -> Iterator[Clause]:
    for r in spec.tolerances.rules:
        yield Clause(r.id, "numerics", f"atol={r.tolerance.atol} rtol={r.tolerance.rtol}: {r.why}", "tolerances.yaml")
    gate = spec.tolerances.drift
    yield Clause(gate.id, "numerics", f"drift when the error grew > {gate.ratio:g}x and uses > {gate.fraction:g} "
                 f"of its allowance: {gate.why}", "tolerances.yaml")


def _decisions(spec) -> Iterator[Clause]:
    for d in spec.sections.get("decisions", {}).values():
        yield Clause(d.id, "decisions", f"{d.topic}: {d.spec}", "decisions.yaml")


def iter_clauses(spec) -> Iterator[Clause]:
    for part in (_config, _classes, _outputs, _losses, _params, _tokenizer, _files, _behaviour, _distribution,
                 _errors, _tolerances, _decisions):
        yield from part(spec)


def collect_clauses(spec) -> Mapping[str, Clause]:
    """Ordered mapping id -> Clause; raises ValueError on a duplicate id."""
    out: dict[str, Clause] = {}
    for c in iter_clauses(spec):
        if c.id in out:
            raise ValueError(f"duplicate clause id {c.id!r} in {c.source} (also in {out[c.id].source})")
        out[c.id] = c
    return MappingProxyType(out)
