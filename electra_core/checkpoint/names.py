"""Canonical (PyTorch) parameter names <-> Flax param-tree paths and TF weight names.

The rules (leaf renames, transposes, TF scopes) are data in ``spec/data/params.yaml`` under ``naming``.
Shapes: PT linear weights are (out, in); Flax/TF kernels are (in, out).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from electra_core.checkpoint.param_spec import base_module_roots, params_data, top_level_modules
from electra_core.checkpoint.stored import StoredTensor


def _naming() -> dict:
    return params_data()["naming"]


def param_kind(name_parts: list[str] | tuple[str, ...]) -> str:
    """Kind (linear, layer_norm, embedding, ...) of the parameter whose module is ``name_parts[-2]``."""
    naming = _naming()
    module = name_parts[-2] if len(name_parts) >= 2 else ""
    return naming["module_kinds"].get(module, naming["default_kind"])


def _leaf_rule(name_parts, pt_leaf: str) -> dict:
    kind = param_kind(name_parts)
    rules = _naming()["leaves"][kind]
    if pt_leaf not in rules:
        raise ValueError(f"parameter {'.'.join(name_parts)!r}: a {kind} module has no {pt_leaf!r}; "
                         f"expected one of {sorted(rules)}")
    return rules[pt_leaf]


def _pt_leaf_for(name_parts, framework: str, leaf: str) -> tuple[str, bool]:
    """The PT leaf name for a Flax/TF leaf of a module, and whether the value is transposed."""
    kind = param_kind(name_parts)
    for pt_leaf, rule in _naming()["leaves"][kind].items():
        if rule[framework] == leaf:
            return pt_leaf, bool(rule.get("transpose", False))
    allowed = sorted(r[framework] for r in _naming()["leaves"][kind].values())
    raise ValueError(f"{framework} parameter {'/'.join(name_parts)!r}: a {kind} module has no {leaf!r}; "
                     f"expected one of {allowed}")


def _to_layout(array: Any, transpose: bool) -> np.ndarray | StoredTensor:
    """The value in the other layout; a StoredTensor stays unread (only its recorded shape flips)."""
    if not isinstance(array, StoredTensor):
        array = np.asarray(array)
    if not transpose:
        return array
    if array.ndim != 2:
        raise ValueError(f"a linear weight must be 2-D to transpose, got shape {array.shape}")
    return array.transposed() if isinstance(array, StoredTensor) else np.ascontiguousarray(array.T)


# -- Flax ---------------------------------------------------------------------------------------
def pt_name_to_flax_path(name: str) -> tuple[tuple[str, ...], bool]:
    """Flax tree path of a canonical name, and whether the value is transposed.

    ``electra.encoder.layer.0.attention.self.query.weight`` ->
    ``("electra","encoder","layer","0","attention","self","query","kernel")``, True.
    """
    parts = name.split(".")
    rule = _leaf_rule(parts, parts[-1])
    return (*parts[:-1], rule["flax"]), bool(rule.get("transpose", False))


def flax_path_to_pt_name(path: tuple[str, ...] | list[str]) -> tuple[str, bool]:
    """Canonical name of a Flax tree path, and whether the value is transposed."""
    path = [str(p) for p in path]
    pt_leaf, transpose = _pt_leaf_for(path, "flax", path[-1])
    return ".".join([*path[:-1], pt_leaf]), transpose


def pt_to_flax(state: Mapping[str, Any]) -> dict:
    """Nested Flax param tree (numpy leaves; kernels (in, out)) from a canonical state dict."""
    tree: dict = {}
    for name, value in state.items():
        path, transpose = pt_name_to_flax_path(name)
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ValueError(f"parameter {name!r} nests under a leaf of another parameter")
        node[path[-1]] = _to_layout(value, transpose)
    return tree


def flatten_tree(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """{path tuple: leaf} of a nested dict."""
    flat = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            flat.update(flatten_tree(value, path))
        else:
            flat[path] = value
    return flat


def flax_to_pt(tree: Mapping) -> dict[str, np.ndarray]:
    """Canonical state dict (PT layout) from a Flax param tree (a top-level {"params": ...} is unwrapped)."""
    if set(tree) == {"params"} and isinstance(tree["params"], Mapping):
        tree = tree["params"]
    state = {}
    for path, value in flatten_tree(tree).items():
        name, transpose = flax_path_to_pt_name(path)
        state[name] = _to_layout(value, transpose)
    return state


# -- TF -----------------------------------------------------------------------------------------
_TF_SUFFIX = re.compile(r":\d+$")


def _tf_layer_pattern() -> re.Pattern:
    return re.compile("^" + re.escape(_naming()["tf_layer_index"]).replace(r"\{i\}", r"(\d+)") + "$")


def pt_to_tf_name(name: str, model_scope: str | None) -> str:
    """TF weight name of a canonical name, e.g. ``encoder.layer.0.attention.self.query.weight`` with
    scope ``tf_electra_model`` -> ``tf_electra_model/electra/encoder/layer_._0/attention/self/query/kernel:0``.
    Base-model names get the ``electra/`` scope whether or not they carry the ``electra.`` prefix;
    ``model_scope`` None or "" writes no model scope."""
    naming = _naming()
    parts = name.split(".")
    rule = _leaf_rule(parts, parts[-1])
    if parts[0] in base_module_roots():
        parts = [naming["tf_base_scope"], *parts]
    out: list[str] = []
    i = 0
    body = parts[:-1]
    while i < len(body):
        if body[i] == "layer" and i + 1 < len(body) and body[i + 1].isdigit():
            out.append(naming["tf_layer_index"].format(i=body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    out.append(rule["tf"])
    scoped = ([model_scope] if model_scope else []) + out
    return "/".join(scoped) + naming["tf_suffix"]


def tf_to_pt_name(tf_name: str) -> str:
    """Canonical name (base names keep the ``electra.`` prefix) of a TF weight name, e.g.
    ``tf_electra_model/electra/encoder/layer_._0/attention/self/query/kernel:0`` ->
    ``electra.encoder.layer.0.attention.self.query.weight``."""
    return tf_name_to_pt(tf_name)[0]


def tf_name_to_pt(tf_name: str) -> tuple[str, bool]:
    """Canonical name of a TF weight name and whether the value is transposed. Anything before the
    first known top-level module (the model scope, an h5 group) is dropped, as is a ``:N`` suffix."""
    parts = _TF_SUFFIX.sub("", tf_name).split("/")
    tops = top_level_modules()
    start = next((k for k, p in enumerate(parts) if p in tops), None)
    if start is None:
        raise ValueError(f"TF weight name {tf_name!r} contains none of the top-level modules {sorted(tops)}")
    parts = parts[start:]
    layer = _tf_layer_pattern()
    body: list[str] = []
    for p in parts[:-1]:
        m = layer.match(p)
        body.extend(["layer", m.group(1)] if m else [p])
    pt_leaf, transpose = _pt_leaf_for([*body, parts[-1]], "tf", parts[-1])
    return ".".join([*body, pt_leaf]), transpose


def pt_to_tf(state: Mapping[str, Any], model_scope: str | None) -> dict[str, np.ndarray]:
    """{TF weight name: array in TF layout} from a canonical state dict."""
    out = {}
    for name, value in state.items():
        transpose = bool(_leaf_rule(name.split("."), name.split(".")[-1]).get("transpose", False))
        out[pt_to_tf_name(name, model_scope)] = _to_layout(value, transpose)
    return out


def tf_to_pt(weights: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Canonical state dict from {TF weight name: array}. A file holding only base-model weights is a
    base-model checkpoint, so the ``electra.`` prefix is then dropped (as ElectraModel names are)."""
    state = {}
    for tf_name, value in weights.items():
        name, transpose = tf_name_to_pt(tf_name)
        if name in state:
            continue  # the same weight listed by two h5 layers (a shared embedding table)
        state[name] = _to_layout(value, transpose)
    prefix = params_data()["base_prefix"]
    if state and all(n.startswith(prefix) for n in state):
        state = {n[len(prefix):]: v for n, v in state.items()}
    return state
