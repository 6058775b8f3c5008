"""ElectraConfig: the model hyper-parameters. Fields, defaults, ranges and constraints come from
``spec/data/config.yaml`` (clause ids ``ElectraConfig.field.*`` / ``ElectraConfig.constraint.*``);
this module only enforces them."""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

from spec import load_spec

CONFIG_NAME = "config.json"
_CONFIG = load_spec().config
_PLAIN_FIELDS = [f for f in _CONFIG.fields if not f.derived and f.name != "num_labels"]
_OMITTED = object()  # num_labels not passed (None is passed, and invalid: the field is not nullable)
_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "dict": (dict,)}


def config_field_names() -> frozenset[str]:
    """Every ElectraConfig field of the spec, derived ones (num_labels, id2label, label2id) included."""
    return frozenset(f.name for f in _CONFIG.fields)


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
        model_type = kwargs.pop("model_type", self.model_type)
        if model_type != self.model_type:
            raise ValueError(f"config model_type is {model_type!r}, expected {self.model_type!r}")
        if id2label is not None:
            self.id2label = label_map(id2label, "id2label")
            if num_labels is not _OMITTED and num_labels != len(self.id2label):
                raise ValueError(f"id2label has {len(self.id2label)} entries but num_labels is {num_labels}")
        else:
            self.num_labels = _CONFIG.field("num_labels").default if num_labels is _OMITTED else num_labels
        self._extra = {}
        for k, v in kwargs.items():
            _check_extra_key(k)
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
        d = dict(d)  # a model_type other than electra is refused by the constructor
        if "num_labels" in overrides and "id2label" not in overrides:
            kept = d.get("id2label")
            if not isinstance(kept, dict) or len(kept) != overrides["num_labels"]:
                d.pop("id2label", None)  # num_labels rebuilds the labels, as setting the attribute does
        d.update(overrides)
        return cls(**d)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike, **overrides: Any) -> "ElectraConfig":
        """The config of a config.json; ValueError naming the file (and the key) when it is not a JSON
        object or holds an invalid entry (error.config.file)."""
        d = read_config_file(path)
        try:
            return cls.from_dict(d, **overrides)
        except (ValueError, TypeError) as e:
            raise ValueError(f"invalid config file {str(path)!r}: {e}") from e

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        from electra_core.files import atomic_write_bytes

        os.makedirs(save_directory, exist_ok=True)
        atomic_write_bytes(Path(save_directory) / CONFIG_NAME, self.to_json_string().encode("utf-8"))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> "ElectraConfig":
        """config.json of a directory or hub id. Keywords: the hub options (revision, cache_dir,
        local_files_only, token, proxies, force_download, subfolder) and config fields that override
        the file's values; anything else is a TypeError (error.loader.keyword)."""
        from electra_core.hub import resolve_file
        from electra_core.pretrained_args import parse_pretrained_args

        args = parse_pretrained_args(kwargs, caller="ElectraConfig.from_pretrained")
        if args.use_safetensors is not None or args.from_pt:
            raise TypeError("ElectraConfig.from_pretrained reads no weights: use_safetensors / from_pt do not apply")
        path = resolve_file(name_or_path, CONFIG_NAME, hub=args.hub)
        return cls.from_json_file(path, **args.config_overrides)

    # -- comparison / display -------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, ElectraConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ElectraConfig {self.to_json_string()}"


def read_config_file(path: str | os.PathLike) -> dict:
    """The JSON object in ``path``; ValueError naming the file when it is empty, not UTF-8 text, not
    JSON or not an object (error.config.file)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read config file {str(path)!r}: {e}") from e
    if not raw.strip():
        raise ValueError(f"config file {str(path)!r} is empty; expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"config file {str(path)!r} is not UTF-8 text (binary data at byte {e.start}); "
                         f"expected a JSON object") from e
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"config file {str(path)!r} is not valid JSON: {e}") from e
    if not isinstance(d, dict):
        raise ValueError(f"config file {str(path)!r} must hold a JSON object, got a {type(d).__name__}")
    return d


def label_map(value: Any, where: str) -> dict[int, str]:
    """``value`` as {int index: str label}; JSON's string keys "0", "1", ... are converted."""
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping of label index to label name, got {type(value).__name__} "
                         f"{value!r:.80}")
    labels = {}
    for key, label in value.items():
        labels[_label_index(key, where)] = label
        if not isinstance(label, str):
            raise ValueError(f"{where}[{key!r}] must be a label name (str), got {type(label).__name__} {label!r:.80}")
    return labels


def _label_index(key: Any, where: str) -> int:
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().lstrip("-").isdigit():
        return int(key)
    raise ValueError(f"{where} key {key!r} is not an integer label index")


def _reserved_names() -> frozenset[str]:
    """Attributes of the ElectraConfig class (methods, properties) an unknown key must not shadow."""
    return frozenset(n for n in dir(ElectraConfig) if n not in _CONFIG.passthrough) | {"_extra"}


def _check_extra_key(key: Any) -> None:
    """An unknown key is kept as an attribute, unless it would shadow a method, property or internal name."""
    if not isinstance(key, str):
        raise ValueError(f"config key {key!r} is not a string")
    if key.startswith("__") or key in _reserved_names():
        raise ValueError(f"config key {key!r} is reserved: it names a method, property or internal attribute of "
                         f"ElectraConfig, not a config field")


def _check_field(f, value: Any) -> None:
    where = f"ElectraConfig.{f.name}"
    if value is None:
        if f.nullable:
            return
        raise ValueError(f"{where} must not be None")
    if not isinstance(value, _TYPES[f.type]) or (f.type in ("int", "float") and isinstance(value, bool)):
        raise ValueError(f"{where} must be of type {f.type}, got {type(value).__name__} {value!r}")
    if f.type == "float" and _has_range(f) and not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r} (error.config.non_finite)")
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


def _has_range(f) -> bool:
    return any(b is not None for b in (f.minimum, f.maximum, f.exclusive_minimum, f.exclusive_maximum))
