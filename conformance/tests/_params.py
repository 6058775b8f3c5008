"""The parameters a class must have, read off spec/data/params.yaml (not a test module).

Each expected parameter carries the clause id it is checked under: ``params.<module>.<name template>``,
or ``params.tied.<name>`` for the tied output projection where the framework stores none. The naming
rules (canonical name -> Flax tree path / TF weight name) are applied here from the spec's data, so the
suite does not depend on electra_core's converter it checks.

Shape keys: V vocab_size, E embedding_size, H hidden_size, K num_labels.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from conformance.tests._helpers import full_config
from spec import load_spec


@dataclass(frozen=True)
class ExpectedParam:
    name: str  # canonical (PyTorch) name, e.g. "electra.encoder.layer.0.output.dense.weight"
    shape: tuple[int, ...]  # PyTorch layout: a linear weight is (out, in)
    clause: str  # params.<module>.<template>
    module: str  # the params.yaml module (base, generator_lm_head, ...)
    split: int | None = None  # the dimension tensor parallelism divides (params.yaml ``split``), if any


def params_spec() -> Mapping[str, Any]:
    return load_spec().raw("params")


def config_env(config: Mapping[str, Any]) -> dict:
    """The values params.yaml's expressions use: every config field (spec defaults for omitted ones,
    num_labels = len(id2label) when id2label is given) plus the derived head_dim."""
    env = full_config({k: v for k, v in config.items() if k != "num_labels"} if config.get("id2label") else config)
    if config.get("id2label"):
        env["num_labels"] = len(config["id2label"])
    env["head_dim"] = env["hidden_size"] // env["num_attention_heads"]
    return env


def holds(condition: Any, env: Mapping[str, Any]) -> bool:
    """A params.yaml condition (``when``, ``stored_when``): an expression over config names."""
    from spec.shapes import eval_condition

    if isinstance(condition, bool):
        return condition
    return eval_condition(str(condition), env, (), env)


def _dims(shape, env) -> tuple[int, ...]:
    from spec.shapes import eval_dim

    ints = {k: v for k, v in env.items() if isinstance(v, int) and not isinstance(v, bool)}
    return tuple(eval_dim(str(d), ints) for d in shape)


def class_modules(class_name: str) -> tuple[str, ...]:
    """base + the class's heads."""
    return ("base", *params_spec()["classes"][class_name]["heads"])


def module_prefix(class_name: str, module: str) -> str:
    entry = params_spec()["classes"][class_name]
    return params_spec()["base_prefix"] if module == "base" and entry["base_prefixed"] else ""


def tied_is_stored(class_name: str, env: Mapping[str, Any]) -> bool:
    framework = params_spec()["classes"][class_name]["framework"]
    return holds(params_spec()["tied"]["stored_when"][framework], env)


def expected_params(class_name: str, config: Mapping[str, Any]) -> dict[str, ExpectedParam]:
    """Canonical name -> ExpectedParam for every parameter the class has under ``config`` (the tied
    output projection only where the framework stores it: see ``tied_param``)."""
    env = config_env(config)
    out: dict[str, ExpectedParam] = {}
    for module in class_modules(class_name):
        prefix = module_prefix(class_name, module)
        for p in params_spec()["modules"][module]:
            if "when" in p and not holds(p["when"], env):
                continue
            if p.get("tied") and not tied_is_stored(class_name, env):
                continue
            indices = range(_dims([p["repeat"]], env)[0]) if "repeat" in p else [None]
            for i in indices:
                name = prefix + (p["name"].format(i=i) if i is not None else p["name"])
                out[name] = ExpectedParam(name, _dims(p["shape"], env), f"params.{module}.{p['name']}", module,
                                          p["split"]["dim"] if "split" in p else None)
    return out


def tied_param(class_name: str, config: Mapping[str, Any]) -> str | None:
    """The tied output projection's name when the class has it but stores none for ``config``."""
    env = config_env(config)
    if params_spec()["tied"]["name"].split(".")[0] not in {p["name"].split(".")[0] for m in class_modules(class_name)
                                                             for p in params_spec()["modules"][m]}:
        return None
    return None if tied_is_stored(class_name, env) else params_spec()["tied"]["name"]


def module_of(name: str) -> str | None:
    """The params.yaml module whose name template matches a canonical name (prefix or not)."""
    base_prefix = params_spec()["base_prefix"]
    for module, entries in params_spec()["modules"].items():
        for p in entries:
            pattern = re.escape(p["name"]).replace(r"\{i\}", r"\d+")
            if re.fullmatch(pattern, name) or (module == "base" and re.fullmatch(re.escape(base_prefix) + pattern, name)):
                return module
    return None


# -- naming rules (params.yaml ``naming``) ---------------------------------------------------------
def naming() -> Mapping[str, Any]:
    return params_spec()["naming"]


def kind_of(name: str) -> str:
    """The kind (linear, layer_norm, ...) of a canonical name: its module's last component."""
    parts = name.split(".")
    return naming()["module_kinds"].get(parts[-2], naming()["default_kind"])


def leaf_rule(name: str) -> Mapping[str, Any]:
    return naming()["leaves"][kind_of(name)][name.split(".")[-1]]


def flax_path(name: str) -> tuple[str, ...]:
    """Flax tree path of a canonical name: split on '.', leaf renamed."""
    parts = name.split(".")
    return (*parts[:-1], leaf_rule(name)["flax"])


def is_base_name(name: str) -> bool:
    roots = {p["name"].split(".")[0] for p in params_spec()["modules"]["base"]}
    return name.split(".")[0] in roots or name.startswith(params_spec()["base_prefix"])


def tf_name(name: str, model_scope: str | None) -> str:
    """TF weight name of a canonical name: model scope, 'electra/' for base names, 'layer.N' written
    with tf_layer_index, the TF leaf, the tf_suffix."""
    rules = naming()
    parts = name.split(".")
    leaf = leaf_rule(name)["tf"]
    body = parts[:-1]
    prefix = params_spec()["base_prefix"].rstrip(".")
    if is_base_name(name) and body[0] != prefix:
        body = [rules["tf_base_scope"], *body]
    elif body[0] == prefix:
        body = [rules["tf_base_scope"], *body[1:]]
    written: list[str] = []
    for part in body:
        if part.isdigit() and written and written[-1] == "layer":
            written[-1] = rules["tf_layer_index"].format(i=part)
        else:
            written.append(part)
    scoped = ([model_scope] if model_scope else []) + written + [leaf]
    return "/".join(scoped) + rules["tf_suffix"]


def file_shape(name: str, shape: tuple[int, ...], framework: str) -> tuple[int, ...]:
    """The shape a Flax/TF file stores: a linear weight transposed to (in, out)."""
    return tuple(reversed(shape)) if leaf_rule(name).get("transpose") else tuple(shape)
