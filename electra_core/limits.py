"""A limit on the parameter memory a config may ask for (clause error.config.too_large).

Both implementations call :func:`check_parameter_memory` in their constructors before building
anything, so an absurd config (``num_hidden_layers=10**6``, ``vocab_size=10**12``) is refused at once
instead of hanging or dying in the framework's allocator.

The limit, in bytes of float32 parameters: ``MAX_PARAMETER_BYTES`` below when set (an int), else the
environment variable ``ELECTRA_MAX_PARAMETER_BYTES`` (read at each check), else 16 GiB.
The estimate is computed from the canonical parameter shapes of spec/data/params.yaml without
enumerating the layers, so it costs the same for 1 or 10**6 layers.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any

from electra_core.checkpoint.param_spec import class_entry, config_values, evaluate, params_data

ENV_VAR = "ELECTRA_MAX_PARAMETER_BYTES"
DEFAULT_MAX_PARAMETER_BYTES = 16 * 2**30
#: set to an int (bytes) to override the environment variable and the default; None: not set
MAX_PARAMETER_BYTES: int | None = None
BYTES_PER_PARAMETER = 4  # float32: parameters are created and loaded as float32 (files.dtype_on_load)
_FIELD_ORDER = ("num_hidden_layers", "vocab_size", "max_position_embeddings", "hidden_size", "intermediate_size",
                "embedding_size", "type_vocab_size", "num_labels", "num_attention_heads")


def max_parameter_bytes() -> int:
    """The limit in force: MAX_PARAMETER_BYTES, else $ELECTRA_MAX_PARAMETER_BYTES, else 16 GiB."""
    if MAX_PARAMETER_BYTES is not None:
        return int(MAX_PARAMETER_BYTES)
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_PARAMETER_BYTES
    try:
        value = int(float(raw))
    except ValueError as e:
        raise ValueError(f"{ENV_VAR}={raw!r} is not a number of bytes") from e
    if value < 1:
        raise ValueError(f"{ENV_VAR}={raw!r} must be a positive number of bytes")
    return value


def parameter_groups(class_name: str, config: Any) -> list[tuple[str, int, tuple[str, ...]]]:
    """(canonical name template, parameter count, config fields it scales with) for every parameter
    group of ``class_name``; repeated layers count once per layer."""
    data, entry, values = params_data(), class_entry(class_name), config_values(config)
    groups = []
    for module in ["base", *entry["heads"]]:
        for param in data["modules"][module]:
            if "when" in param and not evaluate(param["when"], values):
                continue
            dims = [int(evaluate(d, values)) for d in param["shape"]]
            repeat = int(evaluate(param["repeat"], values)) if "repeat" in param else 1
            expressions = [str(d) for d in param["shape"]] + ([str(param["repeat"])] if "repeat" in param else [])
            names = set(re.findall(r"[A-Za-z_]\w*", " ".join(expressions)))
            names |= {"hidden_size"} if "head_dim" in names else set()
            drivers = tuple(f for f in _FIELD_ORDER if f in names)
            groups.append((param["name"], math.prod(dims) * repeat, drivers))
    return groups


def parameter_bytes(class_name: str, config: Any) -> int:
    """Estimated bytes of the float32 parameters of ``class_name`` built from ``config``."""
    return BYTES_PER_PARAMETER * sum(count for _, count, _ in parameter_groups(class_name, config))


def spec_class_name(cls: type) -> str:
    """The name of the first class in ``cls``'s MRO that params.yaml describes (user subclasses of a
    spec class count as that class)."""
    known = params_data()["classes"]
    for klass in cls.__mro__:
        if klass.__name__ in known:
            return klass.__name__
    raise ValueError(f"{cls.__name__} derives from no class of spec/data/params.yaml")


def check_parameter_memory(class_name: str, config: Any) -> None:
    """ValueError naming the largest parameter group, the config fields behind it and both sizes when
    the parameters of ``class_name`` would exceed the limit."""
    groups = parameter_groups(class_name, config)
    total = BYTES_PER_PARAMETER * sum(count for _, count, _ in groups)
    limit = max_parameter_bytes()
    if total <= limit:
        return
    name, count, drivers = max(groups, key=lambda g: g[1])
    values = config_values(config)
    fields = ", ".join(f"{f}={values[f]}" for f in drivers) or "the config"
    raise ValueError(f"{class_name} with {fields} needs about {_size(total)} of float32 parameters "
                     f"({total // BYTES_PER_PARAMETER} parameters; the largest, {name}, alone "
                     f"{_size(BYTES_PER_PARAMETER * count)}), over the limit of {_size(limit)} ({limit} bytes; set "
                     f"{ENV_VAR} or electra_core.limits.MAX_PARAMETER_BYTES to change it)")


def _size(n: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
