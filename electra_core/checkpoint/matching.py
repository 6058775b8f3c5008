"""Match a loaded state dict against the parameters a model expects (prefixes, tied weights, shapes)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from electra_core.checkpoint.errors import CheckpointError, CheckpointShapeError
from electra_core.checkpoint.param_spec import params_data
from electra_core.checkpoint.stored import StoredTensor


@dataclass
class MatchResult:
    """``state``: the loadable arrays under the expected names. ``missing``: expected names the file
    lacks; ``unexpected``: file names the model has no use for; ``mismatched``: (name, expected shape,
    stored shape) dropped under ignore_mismatched_sizes. Missing and mismatched need fresh initialisation."""

    state: dict[str, np.ndarray]
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)


def _dtype(value) -> np.dtype:
    """The dtype of an array or of a StoredTensor (whose data stays unread)."""
    return value.dtype if isinstance(value, StoredTensor) else np.asarray(value).dtype


def _is_float(value) -> bool:
    dtype = _dtype(value)
    return dtype.kind in "fc" or dtype.name == "bfloat16"


def _target_name(name: str, expected: Mapping, base_prefix: str) -> str | None:
    if name in expected:
        return name
    if base_prefix + name in expected:  # base-model checkpoint loaded into a head model
        return base_prefix + name
    if name.startswith(base_prefix) and name[len(base_prefix):] in expected:  # head checkpoint into base
        return name[len(base_prefix):]
    return None


def match_state(expected: Mapping[str, tuple], state: Mapping[str, np.ndarray], *,
                base_prefix: str = "electra.", ignore_mismatched_sizes: bool = False) -> MatchResult:
    """Rename and filter ``state`` to the ``expected`` names (see MatchResult).

    Raises CheckpointShapeError listing every name whose stored shape differs from the expected one
    unless ``ignore_mismatched_sizes``, and CheckpointError naming parameters stored as non-float
    arrays. A tied output projection that the model does not expect is dropped silently (a PyTorch
    state_dict() lists it even when tied), as are the buffers listed under ``ignored_on_load``.
    ``state`` values may be StoredTensors: only their shapes and dtypes are looked at, nothing is read.
    """
    tied = params_data()["tied"]["name"]
    ignored = set(params_data()["ignored_on_load"])
    matched: dict[str, np.ndarray] = {}
    unexpected: list[str] = []
    for name, value in state.items():
        target = _target_name(name, expected, base_prefix)
        if target is None:
            unprefixed = name[len(base_prefix):] if name.startswith(base_prefix) else name
            if unprefixed in ignored or name == tied:
                continue
            unexpected.append(name)
        elif target not in matched or target == name:  # an exact name wins over a prefixed duplicate
            matched[target] = value
    not_float = [(n, _dtype(v)) for n, v in matched.items() if not _is_float(v)]
    if not_float:
        raise CheckpointError("checkpoint parameters must be float arrays; got "
                              + ", ".join(f"{n}: {d}" for n, d in not_float))
    mismatched = [(n, tuple(expected[n]), tuple(np.shape(v))) for n, v in matched.items()
                  if tuple(np.shape(v)) != tuple(expected[n])]
    if mismatched and not ignore_mismatched_sizes:
        lines = "\n".join(f"  {n}: expected shape {e}, checkpoint has {g}" for n, e, g in mismatched)
        raise CheckpointShapeError(
            f"{len(mismatched)} parameter(s) of the checkpoint have the wrong shape "
            f"(pass ignore_mismatched_sizes=True to skip them):\n{lines}")
    for n, _, _ in mismatched:
        del matched[n]
    bad = {n for n, _, _ in mismatched}
    missing = [n for n in expected if n not in matched and n not in bad]
    return MatchResult(matched, missing, unexpected, mismatched)
