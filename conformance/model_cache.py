"""The ``model_cache`` fixture: build each model once per session, count builds and compilations.

Hypothesis draws many examples per test; building (and, for compiled runs, compiling) a model per
example would dominate the run time. Models are cached per (adapter, class, config, dtype, device,
seed); compiled calls are counted per distinct call signature (model, input shapes/dtypes, flags), which
is what triggers a new jax.jit / tf.function trace.

It is also where a test meets the adapter's Capabilities: a config outside the declared values, or a call
with an input, flag, input format or tuple output the implementation lacks, skips the test with
"not supported by <impl>: <feature>" (tests leave out the side features they do not test; see
conformance/tests/_helpers.py ``within``).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from conformance.pairs import call_features

#: the value of each call flag that asks for nothing beyond the plain call: an implementation without the
#: flag honours it by ignoring the flag
NEUTRAL_FLAGS = {"output_attentions": False, "output_hidden_states": False, "use_cache": False, "return_dict": True}


@dataclass
class _Entry:
    handle: Any
    initial_weights: dict | None = None  # snapshot taken before foreign weights are first loaded
    foreign_weights: int | None = None  # id() of the state dict currently loaded, None = initial


@dataclass
class ModelStore:
    """Session-wide store shared by every test."""

    entries: dict = field(default_factory=dict)
    signatures: set = field(default_factory=set)
    family_counts: dict = field(default_factory=dict)  # family -> {"builds": n, "compilations": n}

    def count(self, family: str, what: str) -> None:
        counts = self.family_counts.setdefault(family, {"builds": 0, "compilations": 0})
        counts[what] += 1


def _config_key(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True, default=str)


def _input_signature(inputs: Mapping[str, Any]) -> tuple:
    sig = []
    for name, value in sorted(inputs.items()):
        if value is None:
            continue
        arr = np.asarray(value) if not isinstance(value, (dict, list)) else None
        sig.append((name, arr.shape, str(arr.dtype)) if arr is not None else (name, type(value).__name__))
    return tuple(sig)


@functools.cache
def documented_inputs() -> frozenset[str]:
    """Every call argument and label argument of every spec class."""
    from spec import load_spec

    spec = load_spec()
    return frozenset(p.name for c in spec.classes.values() for p in c.call) | frozenset(
        name for c in spec.classes.values() for name in (c.labels or ()))


class BoundModelCache:
    """``model_cache`` as a test sees it: bound to the test's adapter, device, family and record."""

    def __init__(self, store: ModelStore, adapter, capabilities, device: str, family: str, record):
        self.store, self.adapter, self.device, self.family, self.record = store, adapter, device, family, record
        self.capabilities = capabilities

    def require_config(self, class_name: str, config: Mapping[str, Any]) -> None:
        """Skip unless the implementation supports ``config`` (its Capabilities)."""
        support = self.capabilities.supports_config(class_name, config)
        if not support.ok:
            self.capabilities.skip(support.reason)

    def call_request(self, inputs: Mapping[str, Any], flags: Mapping[str, Any] | None, *,
                     tuple_form: bool = False, input_format: str = "kwargs") -> dict:
        """The flags to pass for a call, the neutral ones the implementation lacks dropped; skips when
        the call asks for an input, a flag value, a tuple output or an input format it lacks."""
        caps = self.capabilities
        # an input that no spec class takes is a test's deliberate mistake (an unknown key), passed on as is
        wanted = [f"input:{k}" for k, v in inputs.items() if v is not None and k in documented_inputs()]
        kept = {}
        for name, value in (flags or {}).items():
            if caps.lacking(f"flag:{name}") and (value is None or value == NEUTRAL_FLAGS.get(name)):
                continue
            kept[name] = value
            wanted.append(f"flag:{name}")
        wanted += ["flag:return_dict"] if tuple_form else []
        caps.skip_unless(*wanted, f"format:{input_format}")
        return kept

    def get(self, class_name: str, config: Mapping[str, Any], *, dtype: str = "float32", seed: int = 0,
            weights: Mapping[str, np.ndarray] | None = None):
        """A built model (shared: do not mutate it except through ``weights``). ``weights`` (canonical
        names) are loaded into it; a later call without ``weights`` restores the seed's initial weights."""
        self.require_config(class_name, config)
        key = (self.adapter.name, class_name, _config_key(config), dtype, self.device, seed)
        entry = self.store.entries.get(key)
        if entry is None:
            entry = _Entry(self.build(class_name, config, dtype=dtype, seed=seed))
            self.store.entries[key] = entry
        if weights is not None:
            if entry.initial_weights is None:
                entry.initial_weights = self.adapter.get_weights(entry.handle)
            if entry.foreign_weights != id(weights):
                self.adapter.load_weights(entry.handle, weights)
                entry.foreign_weights = id(weights)
        elif entry.foreign_weights is not None:
            self.adapter.load_weights(entry.handle, entry.initial_weights)
            entry.foreign_weights = None
        return entry.handle

    def build(self, class_name: str, config: Mapping[str, Any], *, dtype: str = "float32", seed: int = 0):
        """A fresh, uncached model (for tests that mutate it)."""
        self.require_config(class_name, config)
        handle = self.adapter.build(class_name, dict(config), seed=seed, dtype=dtype, device=self.device)
        self.store.count(self.family, "builds")
        self.record.builds += 1
        return handle

    def run(self, handle, inputs: Mapping[str, Any], **kwargs):
        """``adapter.run`` that counts compilations (new compiled call signatures); skips a call the
        implementation cannot make (``call_request``)."""
        kwargs["flags"] = self.call_request(inputs, kwargs.get("flags"), tuple_form=kwargs.get("tuple_form", False),
                                            input_format=kwargs.get("input_format", "kwargs"))
        self._record(handle, inputs, kwargs["flags"], kwargs.get("tuple_form", False))
        if kwargs.get("compiled"):
            flags = tuple(sorted((kwargs.get("flags") or {}).items()))
            sig = (id(handle.native), _input_signature(inputs), flags, bool(kwargs.get("train")),
                   bool(kwargs.get("tuple_form")), kwargs.get("input_format", "kwargs"))
            if sig not in self.store.signatures:
                self.store.signatures.add(sig)
                self.store.count(self.family, "compilations")
                self.record.compilations += 1
        return self.adapter.run(handle, inputs, **kwargs)

    def run_cached(self, handle, inputs: Mapping[str, Any], prefix_len: int, *, flags: Mapping[str, Any] | None = None,
                   tuple_form: bool = False):
        """``adapter.run_cached`` (protocol, base.py): inputs[..., prefix_len:] after a cached call on the
        prefix; recorded as a call with past_key_values. Skips when the implementation lacks the method."""
        self.capabilities.skip_unless("method:run_cached")
        flags = self.call_request({**inputs, "past_key_values": prefix_len}, flags, tuple_form=tuple_form)
        self._record(handle, {**inputs, "past_key_values": prefix_len}, flags, tuple_form)
        return self.adapter.run_cached(handle, inputs, prefix_len, flags=flags, tuple_form=tuple_form)

    def _record(self, handle, inputs: Mapping[str, Any], flags: Mapping[str, Any], tuple_form: bool) -> None:
        """The call's features (pairs.call_features); a tuple-form call passed return_dict."""
        flags = {**flags, **({"return_dict": True} if tuple_form else {})}
        self.record.feature_sets.add((handle.class_name, call_features(handle.config, inputs, flags)))
