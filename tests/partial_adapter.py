"""A deliberately partial adapter, as a third party would write it for a bare encoder (the suite's
self-test of Capabilities: tests/test_partial_adapter.py).

``PartialEncoder`` stands for the third party's own model: a bare ELECTRA encoder (this project's
impl_flax FlaxElectraModel underneath) with a keyword-only call ``encoder(input_ids=..., attention_mask=...)``
that returns the last hidden state (B, S, H) and nothing else: no token types, position ids, head mask,
no attentions or hidden states, no tuple output, float32 on the CPU only, no files. ``PartialEncoderAdapter``
declares exactly that in ``capabilities()`` and refuses (TypeError) anything beyond it, so a suite test
that asks for a feature the implementation did not declare fails instead of passing unnoticed.

``FaultyPartialEncoderAdapter`` plants one numeric fault a real port makes: the config's LayerNorm epsilon
is ignored (every LayerNorm uses 1e-12, the default). The golden case core_gelu_new_eps (layer_norm_eps 1e-3)
would expose it, but its inputs carry token_type_ids, which this encoder lacks (the one golden case it can
run, core_ids_mask, keeps the default epsilon); the float64 NumPy model (test_architecture's
test_whole_model_recomputed) does, on the drawn configs with a large epsilon.

Shape keys: B batch, S sequence, H hidden.
"""
from __future__ import annotations

import inspect
import os
from typing import Any, Mapping

import numpy as np

from conformance.adapters.base import Capabilities, Handle, RunResult, Support
from conformance.adapters.common import package_version

#: every call that asked for an undeclared input, flag, tuple output or input format (read by the tests)
UNDECLARED_REQUESTS: list[str] = []

CLASS_NAME = "FlaxElectraModel"
INPUTS = ("input_ids", "attention_mask")
#: config fields the encoder supports at some values only (every other field takes any valid value)
CONFIG_VALUES = {"hidden_act": ("gelu", "gelu_new", "relu"), "position_embedding_type": ("absolute",),
                 "is_decoder": (False,), "add_cross_attention": (False,)}


class PartialEncoder:
    """The third party's model: a bare encoder built from a config dict, keyword-only call."""

    def __init__(self, config: Mapping[str, Any], *, seed: int = 0):
        import jax.numpy as jnp

        from impl_flax import ElectraConfig, FlaxElectraModel

        for name, allowed in CONFIG_VALUES.items():
            if config.get(name, allowed[0]) not in allowed:
                raise ValueError(f"PartialEncoder supports {name} in {allowed}, not {config[name]!r}")
        self.config = ElectraConfig.from_dict(dict(config))
        self._model = FlaxElectraModel(ElectraConfig.from_dict(self.model_config(dict(config))), seed=seed,
                                       dtype=jnp.float32)
        self._jitted: dict = {}

    def model_config(self, config: dict) -> dict:
        """The config the underlying model is built with (the faulty variant edits it)."""
        return config

    @property
    def params(self):
        return self._model.params

    @params.setter
    def params(self, tree) -> None:
        self._model.params = tree

    def __call__(self, *, input_ids, attention_mask=None):
        """input_ids (B, S) int, attention_mask (B, S) 0/1 -> last hidden state (B, S, H)."""
        return self.apply(self.params, input_ids, attention_mask)

    def _forward(self, params, input_ids, attention_mask, dropout_rng, train: bool):
        return self._model(input_ids, attention_mask=attention_mask, params=params, train=train,
                           dropout_rng=dropout_rng, return_dict=True).last_hidden_state

    def apply(self, params, input_ids, attention_mask=None, *, train: bool = False, dropout_rng=None,
              compiled: bool = False):
        """The call with explicit parameters, training mode and jax.jit (what the adapter's run needs)."""
        import jax

        if not compiled:
            return self._forward(params, input_ids, attention_mask, dropout_rng, train)
        if train not in self._jitted:
            self._jitted[train] = jax.jit(lambda p, i, m, r: self._forward(p, i, m, r, train))
        return self._jitted[train](params, input_ids, attention_mask, dropout_rng)


class _LayerNormEpsIgnoredEncoder(PartialEncoder):
    def model_config(self, config: dict) -> dict:
        return dict(config, layer_norm_eps=1e-12)  # the fault: the configured epsilon never reaches a LayerNorm


class _NativeGuard:
    """``Handle.native`` of the partial adapter: it declares no "native" API, so a suite test that reaches
    for the model object (calls it, reads an attribute) is recorded and refused with TypeError."""

    __slots__ = ("__encoder", "__adapter")

    def __init__(self, encoder: PartialEncoder, adapter: str):
        object.__setattr__(self, "_NativeGuard__encoder", encoder)
        object.__setattr__(self, "_NativeGuard__adapter", adapter)

    def __refuse(self, what: str):
        _record(object.__getattribute__(self, "_NativeGuard__adapter"), f"handle.native{what}")
        raise TypeError(f"handle.native{what}: not declared by the partial encoder (Capabilities.apis has no "
                        f"'native')")

    def __getattr__(self, name: str):
        if name.startswith("__"):  # protocol probes (copy, numpy, pickle) are not a use of the model
            raise AttributeError(name)
        self.__refuse(f".{name}")

    def __call__(self, *args, **kwargs):
        self.__refuse("(...)")

    def __repr__(self) -> str:
        return "<PartialEncoder (native API not declared)>"


def _record(adapter: str, what: str) -> None:
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]
    UNDECLARED_REQUESTS.append(f"{test}: {adapter}: {what}")


def _without_self(signature: inspect.Signature) -> inspect.Signature:
    return signature.replace(parameters=list(signature.parameters.values())[1:])


class PartialEncoderAdapter:
    """Adapter of PartialEncoder: FlaxElectraModel only, input_ids and attention_mask only, the last
    hidden state only, float32 on cpu, keyword inputs, no files, no optional methods."""

    name = "partial"
    framework = "flax"
    model_type: type = PartialEncoder

    # -- description ------------------------------------------------------------------------------
    def version(self) -> str:
        return f"partial-encoder 0.1 (on impl_flax, electra-conformance {package_version('electra-conformance')})"

    def framework_versions(self) -> dict[str, str]:
        return {p: package_version(p) for p in ("jax", "jaxlib", "flax")}

    def available_devices(self) -> list[str]:
        return ["cpu"]

    def capabilities(self) -> Capabilities:
        return Capabilities(classes=(CLASS_NAME,), inputs=frozenset(INPUTS), flags=frozenset(),
                            outputs=frozenset({"last_hidden_state"}), dtypes=("float32",), config=dict(CONFIG_VALUES),
                            input_formats=("kwargs",), files=(), methods=frozenset(), apis=frozenset())

    def classes(self) -> list[str]:
        return [CLASS_NAME]

    def supports(self, class_name: str, dtype: str = "float32", device: str = "cpu") -> Support:
        if class_name != CLASS_NAME:
            return Support(False, f"{self.name} implements {CLASS_NAME} only")
        if dtype != "float32":
            return Support(False, f"{self.name} computes in float32 only")
        if device != "cpu":
            return Support(False, f"{self.name} runs on the cpu only")
        return Support(True)

    def constructor_signature(self, class_name: str) -> inspect.Signature:
        return _without_self(inspect.signature(self.model_type.__init__))

    def call_signature(self, class_name: str) -> inspect.Signature:
        return _without_self(inspect.signature(self.model_type.__call__))

    # -- models and weights -----------------------------------------------------------------------
    def build(self, class_name: str, config: dict, *, seed: int = 0, dtype: str = "float32",
              device: str = "cpu") -> Handle:
        support = self.supports(class_name, dtype, device)
        if not support.ok:
            raise ValueError(support.reason)
        model = self.model_type(config, seed=seed)
        return Handle(class_name, model.config.to_dict(), dtype, device, native=_NativeGuard(model, self.name),
                      extra={"encoder": model})

    def get_weights(self, handle: Handle) -> dict[str, np.ndarray]:
        import jax

        from electra_core.checkpoint import flax_to_pt

        return flax_to_pt(jax.tree_util.tree_map(np.asarray, handle.extra["encoder"].params))

    def load_weights(self, handle: Handle, state_dict: Mapping[str, np.ndarray]) -> None:
        import jax

        from electra_core.checkpoint import expected_shapes, match_state, pt_to_flax

        result = match_state(expected_shapes(handle.class_name, handle.extra["encoder"].config), dict(state_dict))
        if result.missing or result.unexpected:
            raise ValueError(f"{handle.class_name}: state dict does not match the model: missing {result.missing} "
                             f"unexpected {result.unexpected}")
        tree = pt_to_flax({k: np.asarray(v, np.float32) for k, v in result.state.items()})
        handle.extra["encoder"].params = jax.tree_util.tree_map(jax.numpy.asarray, tree)

    # -- running ----------------------------------------------------------------------------------
    def run(self, handle: Handle, inputs: Mapping[str, Any], *, flags: Mapping[str, Any] | None = None,
            train: bool = False, seed: int | None = None, compiled: bool = False, tuple_form: bool = False,
            input_format: str = "kwargs") -> RunResult:
        import jax

        extra = sorted(k for k, v in inputs.items() if v is not None and k not in INPUTS)
        asked = sorted(k for k, v in (flags or {}).items() if v)
        undeclared = [f"input {k}" for k in extra] + [f"flag {k}" for k in asked]
        undeclared += ["tuple output (return_dict=False)"] if tuple_form else []
        undeclared += [f"input format {input_format!r}"] if input_format != "kwargs" else []
        if undeclared:
            _record(self.name, ", ".join(undeclared))
            raise TypeError(f"{self.name}: {', '.join(undeclared)}: not declared by the partial encoder "
                            f"(it takes input_ids and attention_mask as keywords and returns last_hidden_state)")
        if "input_ids" not in inputs:
            raise TypeError(f"{self.name}: input_ids is required")
        rng = jax.random.PRNGKey(0 if seed is None else seed) if train else None
        with jax.default_device(jax.devices("cpu")[0]):
            hidden = handle.extra["encoder"].apply(handle.extra["encoder"].params, np.asarray(inputs["input_ids"]),
                                         None if inputs.get("attention_mask") is None
                                         else np.asarray(inputs["attention_mask"]),
                                         train=train, dropout_rng=rng, compiled=compiled)
        return RunResult(fields={"last_hidden_state": np.asarray(hidden)})


class FaultyPartialEncoderAdapter(PartialEncoderAdapter):
    """The same encoder with the configured layer_norm_eps ignored (1e-12 in every LayerNorm)."""

    name = "partial-faulty"
    model_type = _LayerNormEpsIgnoredEncoder
