"""Model output containers. Every output class and its ordered fields come from
``spec/data/outputs.yaml``; ``output_class(name)`` builds (and caches) the Python class.

An output is an ordered mapping holding only its present (non-None) fields, readable by attribute
(absent fields read as None), by key, and by index over the present fields; ``to_tuple()`` drops
absent fields, which is also the ``return_dict=False`` form.
"""
from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from spec import load_spec


class ModelOutput(OrderedDict):
    _fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()
        if len(args) == 1 and not kwargs and _is_pairs(args[0]):
            # the form tf.nest / copy use to rebuild a mapping
            items = dict(args[0].items() if isinstance(args[0], Mapping) else args[0])
        else:
            if len(args) > len(self._fields):
                raise TypeError(f"{type(self).__name__} takes at most {len(self._fields)} positional fields")
            items = dict(zip(self._fields, args))
            for k, v in kwargs.items():
                if k in items:
                    raise TypeError(f"{type(self).__name__} got field {k!r} twice")
                items[k] = v
        unknown = set(items) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}; fields: {list(self._fields)}")
        for name in self._fields:
            if items.get(name) is not None:
                OrderedDict.__setitem__(self, name, items[name])

    def __getattr__(self, name: str) -> Any:
        if name in type(self)._fields:
            return self.get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._fields:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        self[name] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._fields:
            raise KeyError(f"{type(self).__name__} has no field {key!r}")
        if value is None:
            self.pop(key, None)
            return
        # keep field order even when a later field was set first
        rest = {k: self[k] for k in self._fields if k in self and k != key}
        OrderedDict.clear(self)
        for k in self._fields:
            if k == key:
                OrderedDict.__setitem__(self, k, value)
            elif k in rest:
                OrderedDict.__setitem__(self, k, rest[k])

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return OrderedDict.__getitem__(self, key)

    def to_tuple(self) -> tuple:
        return tuple(self[k] for k in self._fields if k in self)

    def __reduce__(self):
        return (type(self), (list(self.items()),))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={_summary(v)}" for k, v in self.items())
        return f"{type(self).__name__}({body})"


def _is_pairs(x: Any) -> bool:
    if isinstance(x, Mapping):
        return True
    if isinstance(x, (list, tuple)) and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in x):
        return len(x) > 0
    return hasattr(x, "__next__")  # a generator of pairs


def _summary(v: Any) -> str:
    shape = getattr(v, "shape", None)
    if shape is not None:
        return f"<{type(v).__name__} shape={tuple(shape)} dtype={getattr(v, 'dtype', '?')}>"
    if isinstance(v, tuple):
        return f"tuple[{len(v)}]"
    return repr(v)


@functools.lru_cache(maxsize=None)
def output_class(name: str) -> type[ModelOutput]:
    """The output class ``name`` of the spec, e.g. ``output_class("FlaxMaskedLMOutput")``."""
    spec_class = load_spec().outputs[name]
    return type(name, (ModelOutput,), {"_fields": spec_class.field_names, "__doc__": _doc(spec_class)})


def _doc(spec_class) -> str:
    lines = [f"{spec_class.name}: fields in tuple order (absent ones dropped)."]
    for f in spec_class.fields:
        shape = f"tuple of {f.tuple} x ({f.shape})" if f.tuple else (f.container or f"({f.shape})")
        lines.append(f"  {f.name}: {shape}, present when {f.present_when}")
    return "\n".join(lines)
