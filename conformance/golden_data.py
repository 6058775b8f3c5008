"""Golden data of the PyTorch reference: list the cases, read their config, weights, inputs and outputs.

Numpy and safetensors only. The files are written by ``conformance/golden/generate.py``; see
``conformance/golden/README.md`` for the layout. A tuple output field ``f`` is stored as ``f.0``,
``f.1``, ... and comes back here as a tuple of arrays.

Shape keys: B batch, C choices, S sequence, H hidden, N heads, D head_dim, V vocab.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
INDEX = "index.json"


@dataclass(frozen=True)
class GoldenCase:
    """One reference class run on one config; paths are relative to ``root``."""

    id: str  # "<config case>.<reference class>", used in test ids
    case: str
    reference_class: str
    classes: Mapping[str, str | None]  # framework ("tf" | "flax") -> spec class name, or None
    config_file: str
    weights_file: str
    inputs_file: str
    outputs_file: str
    input_names: tuple[str, ...]
    fields: tuple[str, ...]  # output fields the reference returned, in its order
    tuple_lengths: Mapping[str, int]
    flags: Mapping[str, Any]  # call flags the outputs were produced with
    reference: Mapping[str, str]  # {"transformers": ..., "torch": ...}
    command: str
    root: Path
    #: a cached call: the outputs are those of positions cache_prefix.. after a call on the ones before
    cache_prefix: int | None = None

    @property
    def directory(self) -> Path:
        """The checkpoint folder (config.json + model.safetensors) the reference saved."""
        return (self.root / self.weights_file).parent

    def class_for(self, framework: str) -> str | None:
        return self.classes.get(framework)

    def config(self) -> dict:
        """config.json as a dict (what ElectraConfig.from_dict / from_pretrained reads)."""
        return json.loads((self.root / self.config_file).read_text(encoding="utf-8"))

    def weights(self) -> dict[str, np.ndarray]:
        """The reference's state dict under canonical names (Linear weights (out, in))."""
        return dict(_read(self.root / self.weights_file))

    def inputs(self) -> dict[str, np.ndarray]:
        """Call inputs, labels included, in call order (int64 ids, float32 masks and float labels)."""
        arrays = _read(self.root / self.inputs_file)
        return {name: arrays[name] for name in self.input_names}

    def model_inputs(self) -> dict[str, np.ndarray]:
        """The inputs without the labels (what a class without label arguments takes)."""
        return {k: v for k, v in self.inputs().items() if k not in LABEL_NAMES}

    def labels(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.inputs().items() if k in LABEL_NAMES}

    def outputs(self) -> dict[str, Any]:
        """Every output field: an array, or a tuple of arrays for tuple fields."""
        arrays = _read(self.root / self.outputs_file)
        return {name: (tuple(arrays[f"{name}.{i}"] for i in range(self.tuple_lengths[name]))
                       if name in self.tuple_lengths else arrays[name]) for name in self.fields}


#: label arguments of the reference heads (given -> the reference computes a loss)
LABEL_NAMES = ("labels", "start_positions", "end_positions")


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, mtime: float) -> Mapping[str, np.ndarray]:
    from safetensors.numpy import load_file

    arrays = load_file(path)
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def _read(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file as {name: read-only array} (copies are cheap: the files are tiny)."""
    if not path.is_file():
        raise FileNotFoundError(f"golden file {path} is missing; regenerate with conformance/golden/generate.py")
    return {k: v.copy() for k, v in _read_cached(str(path), path.stat().st_mtime).items()}


def load_index(root: Path | str = GOLDEN_DIR) -> dict:
    path = Path(root) / INDEX
    if not path.is_file():
        raise FileNotFoundError(f"no golden index {path}; run conformance/golden/generate.py")
    return json.loads(path.read_text(encoding="utf-8"))


def load_cases(root: Path | str = GOLDEN_DIR) -> tuple[GoldenCase, ...]:
    """Every golden case, in index order."""
    root = Path(root)
    return tuple(GoldenCase(
        id=e["id"], case=e["case"], reference_class=e["reference_class"], classes=dict(e["classes"]),
        config_file=e["config"], weights_file=e["weights"], inputs_file=e["inputs"], outputs_file=e["outputs"],
        input_names=tuple(e["input_names"]), fields=tuple(e["fields"]), tuple_lengths=dict(e["tuple_lengths"]),
        flags=dict(e["flags"]), reference=dict(e["reference"]), command=e["command"], root=root,
        cache_prefix=e.get("cache_prefix"),
    ) for e in load_index(root)["cases"])


def cases_for(framework: str, root: Path | str = GOLDEN_DIR) -> tuple[tuple[GoldenCase, str], ...]:
    """(case, spec class name) for every case a class of ``framework`` ("tf" | "flax") checks against."""
    return tuple((c, c.classes[framework]) for c in load_cases(root) if c.classes.get(framework))


def get_case(case_id: str, root: Path | str = GOLDEN_DIR) -> GoldenCase:
    for c in load_cases(root):
        if c.id == case_id:
            return c
    raise KeyError(f"no golden case {case_id!r}; have {[c.id for c in load_cases(root)]}")
