"""ElectraConfig: the model hyper-parameters. Fields, defaults, ranges and constraints come from
``spec/data/config.yaml`` (clause ids ``ElectraConfig.field.*`` / ``ElectraConfig.constraint.*``);
this module only enforces them."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from spec import load_spec

CONFIG_NAME = "config.json"
_CONFIG = load_spec().config
_PLAIN_FIELDS = [f for f in _CONFIG.fields if not f.derived and f.name != "num_labels"]
_OMITTED = object()  # num_labels not passed (None is passed, and invalid: the field is not nullable)
_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "dict": (dict,)}


class ElectraConfig:
    """Hyper-parameters of every ELECTRA model.

    ``ElectraConfig(hidden_size=64, num_attention_heads=4, ...)``; unknown keyword arguments are kept
    as attributes and written back by ``to_dict`` but change nothing. ``validate()`` (called by every
    model constructor) raises ``ValueError`` naming the field for anything outside the spec.
    """

    model_type = _CONFIG.model_type

    def __init__(self, **kwargs: Any):
        for f in _PLAIN_FIELDS:
            setattr(self, f.name, kwargs.pop(f.name, copy.deepcopy(f.default)))
        id2label = kwargs.pop("id2label", None)
        kwargs.pop("label2id", None)  # always derived from id2label
        num_labels = kwargs.pop("num_labels", _OMITTED)
        if id2label is not None:
            self.id2label = {int(k): v for k, v in id2label.items()}
            if num_labels is not _OMITTED and num_labels != len(self.id2label):
                raise ValueError(f"id2label has {len(self.id2label)} entries but num_labels is {num_labels}")
        else:
            self.num_labels = _CONFIG.field("num_labels").default if num_labels is _OMITTED else num_labels
        self._extra = {}
        for k, v in kwargs.items():
            self._extra[k] = v
            setattr(self, k, v)
        self.validate()

    # -- derived fields -------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"ElectraConfig.num_labels must be an int >= 1, got {n!r}")
        if getattr(self, "id2label", None) is None or len(self.id2label) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}

    @property
    def label2id(self) -> dict:
        return {v: k for k, v in self.id2label.items()}

    @property
    def use_return_dict(self) -> bool:
        return bool(self.return_dict)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> "ElectraConfig":
        for f in _PLAIN_FIELDS:
            _check_field(f, getattr(self, f.name))
        env = {f.name: getattr(self, f.name) for f in _PLAIN_FIELDS}
        env.update(num_labels=self.num_labels, id2label=self.id2label, len_id2label=len(self.id2label))
        for c in _CONFIG.constraints:
            if not eval(c.expr, {"__builtins__": {"len": len}}, env):  # expressions are spec data, not user input
                raise ValueError(f"invalid ElectraConfig ({c.id}): " + c.message.format(**env))
        return self

    # -- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in _PLAIN_FIELDS}
        d["id2label"] = {str(k): v for k, v in self.id2label.items()}
        d["label2id"] = dict(self.label2id)
        d.update(copy.deepcopy(self._extra))
        d["model_type"] = self.model_type
        return d

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str | os.PathLike) -> None:
        Path(path).write_text(self.to_json_string(), encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict, **overrides: Any) -> "ElectraConfig":
        d = dict(d)
        model_type = d.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(f"config model_type is {model_type!r}, expected {cls.model_type!r}")
        d.update(overrides)
        return cls(**d)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "ElectraConfig":
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON: {e}") from e
        if not isinstance(d, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(d).__name__}")
        return cls.from_dict(d)

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        from electra_core.files import atomic_write_bytes

        os.makedirs(save_directory, exist_ok=True)
        atomic_write_bytes(Path(save_directory) / CONFIG_NAME, self.to_json_string().encode("utf-8"))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                        token: str | bool | None = None, **overrides: Any) -> "ElectraConfig":
        from electra_core.hub import resolve_file

        path = resolve_file(name_or_path, CONFIG_NAME, revision=revision, cache_dir=cache_dir,
                            local_files_only=local_files_only, token=token)
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(d, **overrides)

    # -- comparison / display -------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, ElectraConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ElectraConfig {self.to_json_string()}"


def _check_field(f, value: Any) -> None:
    where = f"ElectraConfig.{f.name}"
    if value is None:
        if f.nullable:
            return
        raise ValueError(f"{where} must not be None")
    if not isinstance(value, _TYPES[f.type]) or (f.type in ("int", "float") and isinstance(value, bool)):
        raise ValueError(f"{where} must be of type {f.type}, got {type(value).__name__} {value!r}")
    if f.choices is not None and value not in f.choices:
        raise ValueError(f"{where} must be one of {list(f.choices)}, got {value!r}")
    if f.minimum is not None and value < f.minimum:
        raise ValueError(f"{where} must be >= {f.minimum}, got {value!r}")
    if f.maximum is not None and value > f.maximum:
        raise ValueError(f"{where} must be <= {f.maximum}, got {value!r}")
    if f.exclusive_minimum is not None and value <= f.exclusive_minimum:
        raise ValueError(f"{where} must be > {f.exclusive_minimum}, got {value!r}")
    if f.exclusive_maximum is not None and value >= f.exclusive_maximum:
        raise ValueError(f"{where} must be < {f.exclusive_maximum}, got {value!r}")
