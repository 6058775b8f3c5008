"""Parameter names and shapes of every spec class, read from ``spec/data/params.yaml``."""
from __future__ import annotations

import functools
from typing import Any, Mapping

import yaml

from spec.loader import DATA_DIR


@functools.lru_cache(maxsize=None)
def params_data() -> dict:
    """The raw content of spec/data/params.yaml (through the spec loader once it exposes raw data)."""
    try:
        from spec import load_spec

        return load_spec().raw("params")
    except (ImportError, AttributeError, KeyError, TypeError):
        with open(DATA_DIR / "params.yaml", encoding="utf-8") as f:
            return yaml.safe_load(f)


def config_values(config: Any) -> dict:
    """Names usable in the shape and condition expressions of params.yaml, from an ElectraConfig,
    a transformers config or a plain dict."""
    if isinstance(config, Mapping):
        values = dict(config)
    elif hasattr(config, "to_dict"):
        values = dict(config.to_dict())
    else:
        values = dict(vars(config))
    if "num_labels" not in values:
        labels = getattr(config, "num_labels", None)
        if labels is None:
            labels = len(values["id2label"]) if values.get("id2label") else 2
        values["num_labels"] = labels
    values.setdefault("add_cross_attention", False)
    values.setdefault("tie_word_embeddings", True)
    values.setdefault("position_embedding_type", "absolute")
    values.setdefault("summary_use_proj", True)
    values["head_dim"] = values["hidden_size"] // values["num_attention_heads"]
    return values


def evaluate(expression: Any, values: Mapping[str, Any]) -> Any:
    """Evaluate one shape or condition expression of params.yaml (spec data, not user input)."""
    if isinstance(expression, (int, bool)):
        return expression
    try:
        return eval(str(expression), {"__builtins__": {}}, dict(values))
    except NameError as e:
        raise ValueError(f"params.yaml expression {expression!r} uses a name the config lacks: {e}") from e


def class_entry(class_name: str) -> dict:
    classes = params_data()["classes"]
    if class_name not in classes:
        raise ValueError(f"unknown class {class_name!r}; params.yaml describes {sorted(classes)}")
    return classes[class_name]


def expected_shapes(class_name: str, config: Any) -> dict[str, tuple[int, ...]]:
    """Canonical (PyTorch) names and shapes of every parameter a checkpoint of ``class_name`` stores
    for ``config``. The tied output projection is listed only where the class's files store it."""
    data = params_data()
    entry = class_entry(class_name)
    values = config_values(config)
    tied = data["tied"]
    tied_stored = bool(evaluate(tied["stored_when"][entry["framework"]], values))
    shapes: dict[str, tuple[int, ...]] = {}
    for module in ["base", *entry["heads"]]:
        prefix = data["base_prefix"] if module == "base" and entry["base_prefixed"] else ""
        for param in data["modules"][module]:
            if "when" in param and not evaluate(param["when"], values):
                continue
            if param.get("tied") and not tied_stored:
                continue
            shape = tuple(int(evaluate(d, values)) for d in param["shape"])
            repeat = int(evaluate(param["repeat"], values)) if "repeat" in param else None
            indices = range(repeat) if repeat is not None else [None]
            for i in indices:
                name = param["name"].format(i=i) if i is not None else param["name"]
                shapes[prefix + name] = shape
    return shapes


def base_module_roots() -> frozenset[str]:
    """First name components of the base model's parameters (embeddings, encoder, ...)."""
    return frozenset(p["name"].split(".")[0] for p in params_data()["modules"]["base"])


def top_level_modules() -> frozenset[str]:
    """First name components a prefixed canonical name can start with: the base prefix and each head."""
    data = params_data()
    heads = {p["name"].split(".")[0] for m, ps in data["modules"].items() if m != "base" for p in ps}
    return frozenset({data["base_prefix"].rstrip("."), *heads})
