"""An immutable, hashable snapshot of an ElectraConfig for the linen modules.

Modules are dataclasses that flax clones freely; giving them a frozen view keeps a later edit of the
user's (mutable) config from silently changing an already-built architecture.
"""
from __future__ import annotations

from typing import Any


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


class FrozenConfig:
    """Attribute access to the fields of ``config.to_dict()`` plus ``head_dim``; read-only and hashable."""

    __slots__ = ("_items", "_values")

    def __init__(self, config: Any):
        values = dict(config.to_dict())
        values["head_dim"] = config.head_dim
        values["num_labels"] = config.num_labels
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_items", tuple(sorted((k, _hashable(v)) for k, v in values.items())))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"config has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenConfig is read-only")

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrozenConfig) and self._items == other._items

    def __repr__(self) -> str:
        return f"FrozenConfig({dict(self._items)})"
