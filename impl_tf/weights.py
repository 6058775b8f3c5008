"""A model's weights under canonical (PyTorch state-dict) names, by rule: a Keras variable path such as
``electra/encoder/layer_._0/attention/self/query/kernel`` is a transformers TF weight name, which
electra_core.checkpoint maps to ``electra.encoder.layer.0.attention.self.query.weight`` (transposed)."""
from __future__ import annotations

import logging
from typing import Mapping

import numpy as np

from electra_core.checkpoint import MatchResult, match_state
from electra_core.checkpoint.names import tf_name_to_pt

logger = logging.getLogger("impl_tf")


def _canonical_name(model, path: str) -> tuple[str, bool]:
    name, transpose = tf_name_to_pt(path)
    prefix = model.base_model_prefix + "." if model.base_model_prefix else ""
    if not prefix and name.startswith("electra."):
        name = name[len("electra."):]
    return name, transpose


def canonical_variables(model) -> dict[str, tuple]:
    """{canonical name: (variable, transposed?)} for every weight of ``model``."""
    out = {}
    for variable in model.weights:
        name, transpose = _canonical_name(model, variable.path)
        out[name] = (variable, transpose)
    return out


def canonical_state(model) -> dict[str, np.ndarray]:
    """All weights as numpy arrays in PyTorch layout (Linear weights (out, in))."""
    state = {}
    for name, (variable, transpose) in canonical_variables(model).items():
        value = np.asarray(variable.numpy())
        state[name] = np.ascontiguousarray(value.T) if transpose else value
    return state


def expected_shapes(model) -> dict[str, tuple]:
    return {name: (tuple(v.shape[::-1]) if t else tuple(v.shape))
            for name, (v, t) in canonical_variables(model).items()}


def assign_canonical_state(model, state: Mapping[str, np.ndarray], *, ignore_mismatched_sizes: bool = False,
                           strict: bool = False):
    """Set the weights from canonical names (a base-model state fits a head model and back).
    Missing and unexpected names are logged as warnings (raised with ``strict``); shape mismatches
    raise CheckpointShapeError unless ``ignore_mismatched_sizes``. Returns the MatchResult."""
    result = match_state(expected_shapes(model), state, base_prefix="electra.",
                         ignore_mismatched_sizes=ignore_mismatched_sizes)
    if strict and (result.missing or result.unexpected):
        raise ValueError(f"weights do not fit {type(model).__name__}: missing {result.missing}, "
                         f"unexpected {result.unexpected}")
    return assign_match(model, result)


def assign_match(model, result: MatchResult) -> MatchResult:
    """Set the weights of a MatchResult (arrays under the model's canonical names) and log what it
    left out: missing names (newly initialised), unused ones, and mismatched shapes."""
    variables = canonical_variables(model)
    for name, value in result.state.items():
        variable, transpose = variables[name]
        value = np.asarray(value, dtype=np.float32)
        variable.assign(value.T if transpose else value)
    cls = type(model).__name__
    if result.missing:
        logger.warning("%s: weights not in the checkpoint, newly initialised: %s", cls, result.missing)
    if result.unexpected:
        logger.warning("%s: checkpoint weights not used: %s", cls, result.unexpected)
    for name, expected, stored in result.mismatched:
        logger.warning("%s: %s has shape %s in the checkpoint but %s in the model; newly initialised",
                       cls, name, stored, expected)
    return result
