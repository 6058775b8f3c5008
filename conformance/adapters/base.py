"""The adapter protocol: how the conformance suite drives an implementation.

An adapter wraps one implementation (ours, transformers' classes, or a third party's) behind a small,
framework-neutral surface: everything goes in and comes out as numpy arrays and plain Python values,
and parameters are exchanged under the spec's canonical (PyTorch state-dict) names. A third party
writes one class like this and runs ``pytest --pyargs conformance --impl mypkg.adapter:Adapter``.

Most implementations offer part of the API only (a bare encoder, another call convention). An adapter
says what it offers with ``capabilities() -> Capabilities``: the suite draws configs and inputs inside
them, never requests a side feature it lacks, and skips a test whose subject it lacks with
"not supported by <impl>: <feature>". The optional methods below are called only when declared in
``Capabilities.methods`` (the registry checks that each declared one exists).

Optional method (not part of the runtime-checked protocol): ``loss(handle, outputs, inputs) -> float``,
the class's loss computed from a RunResult's fields and the label inputs, for frameworks whose
classes take no labels (Flax: impl_flax.losses); the loss family and the golden numerics use it
when present (clause loss.flax_functions).

Optional method (TF adapters): ``export_serving(handle, directory) -> None``, write a SavedModel of the
model to ``directory`` whose "serving_default" signature takes int32 input_ids, attention_mask and
token_type_ids of dynamic shape ((B, S), or (B, C, S) for multiple choice) and returns the output's
tensor fields by name (clause behaviour.tf.saved_model).

Optional methods ``save(handle, directory, formats=("safetensors",)) -> None`` (save_pretrained into
``directory`` in the given formats: "safetensors", "h5", "msgpack") and ``load(class_name, directory,
**kwargs) -> Handle`` (from_pretrained from a local directory; kwargs: ignore_mismatched_sizes, dtype, ...),
declared together by a non-empty ``Capabilities.files``.

Optional method ``run_incremental(handle, inputs, prompt_len) -> np.ndarray``: causal LM only: run
inputs[:, :prompt_len] as a prompt, then one token at a time using the key/value cache (padding given
by inputs["attention_mask"]), and return the logits of every position, (B, S, V).

Optional method: ``model_class(class_name) -> type``, the implementation's own class of that name, for the
clauses about a framework's user-facing API that the protocol does not wrap (behaviour.flax.do_init:
``Cls(config, _do_init=False)``, ``init_weights(rng, input_shape)``, ``from_pretrained(..., _do_init=False)``;
behaviour.tf.resize_token_embeddings: ``model.resize_token_embeddings(n)`` on a built model's ``native``).

Optional method ``method_signature(class_name, method) -> inspect.Signature | None``: the signature of
the class's public method ``method`` as users call it (no ``self``; None when the class has no such
callable attribute). The signatures family checks the spec's ``methods`` with it (<Class>.method.<name>).

Optional method ``call_native(handle, arguments) -> Any``: call the model with exactly ``arguments`` as
keyword arguments, adding none of its own (``run`` always passes the mode, params and return_dict),
and return what the model returned: its output object or tuple, leaves being framework arrays that
``np.asarray`` converts. Values are numpy arrays ((B, S) ids and masks, (B, S, E) inputs_embeds,
(B, Se, H) encoder_hidden_states, ...; (B, C, S) for multiple choice), plain Python values (None,
bools), or ``OWN_PARAMETERS`` standing for the model's own parameter tree (Flax ``params``). The
defaults family (omitted argument == its documented default passed explicitly) and the output-access
check (behaviour.output_access) use it.

Optional method ``run_chunks(handle, inputs, sizes) -> np.ndarray``: causal LM only; feed
inputs["input_ids"] (B, S) in consecutive chunks of ``sizes`` tokens (summing to S), each call passing
the previous call's key/value cache and attention_mask over the cached and current positions
(position_ids omitted where the implementation's default is under test), and return the logits of
every position, (B, S, V). Chunks of several tokens after a cache put relative position distances to
the test (decision.relative_positions_with_cache).

Optional method ``run_cached(handle, inputs, prefix_len, *, flags=None, tuple_form=False) -> RunResult``:
for an is_decoder model of any class that takes past_key_values: call it on inputs[..., :prefix_len] with a
key/value cache (TF: use_cache=True; Flax: through init_cache(B, S)), then return what ``run`` returns for
the rest, inputs[..., prefix_len:], passing that cache as past_key_values. Per-position inputs (ids,
token types, positions, inputs_embeds) are split; the attention mask covers the cached and the current
positions in the second call; head mask and encoder inputs go whole to both. ``prefix_len`` 0 (a class
whose output returns no cache: the Flax heads) is one call of all inputs with a new cache. The combinations family
compares the second call with the full pass's rows (conformance.adapters.common.split_for_cache).

Optional method ``save_pretrained_defaults(handle, directory) -> None``: the model's
``save_pretrained(directory)`` with every optional argument left at its default (decision.save_format).

Optional method ``loss_gradients(handle, inputs) -> (loss, {canonical name: gradient})``: the class's
loss (a float32 scalar) with training off, and its gradient with respect to every parameter as numpy
arrays under canonical names, shaped like ``get_weights``' arrays (Linear weights (out, in), a tied
LM head counted in the word embeddings). ``inputs`` are the call inputs ((B, S) ids and masks; (B, C, S)
for multiple choice) plus the label arguments (labels, start_positions/end_positions); Flax adapters
apply the head's impl_flax.losses function to the outputs (clause loss.differentiable).

Optional distribution methods (family distribution, spec/data/distribution.yaml), for the layouts an
adapter declares in ``Capabilities.layouts`` (names of distribution.yaml's layouts: data, tensor, fsdp),
each called with a ``MeshSpec`` (``--devices cpu:8``); they raise ``MeshUnavailable`` when the process has
fewer devices than the mesh:
``run_distributed(handle, inputs, mesh, layout) -> RunResult``: the call, training off, with the model and the
inputs split over the mesh as the layout says, every output gathered to host numpy arrays.
``distributed_loss_gradients(handle, inputs, mesh, layout) -> (loss, {canonical name: gradient})``: as
``loss_gradients``, computed split.
``sgd_step(handle, inputs, mesh, layout, learning_rate) -> {canonical name: weights}``: one step of plain
gradient descent on the class's loss (labels among ``inputs``), split over the mesh (``mesh`` None: on one
device), returning the updated weights; the handle's own weights are left as they were.
``sgd_step_penalized(handle, inputs, mesh, layout, learning_rate, penalty) -> {canonical name: weights}``
(TF; distribution.own_losses): as ``sgd_step``, with the model carrying its own loss ``penalty * sum(w**2)``
over the word-embedding table w (electra.embeddings.word_embeddings.weight), attached the way a Keras user
attaches one (a weight regularizer, add_loss), which the framework's training step adds to the class's loss.
``parameter_layout(handle, mesh, layout) -> {canonical name: dimension or None}``: after placing the model
on the mesh, the canonical dimension (of get_weights' array) each parameter is divided along, None where
every device holds it whole.
``save_distributed(handle, mesh, layout, directory) -> None``: save_pretrained (safetensors) from the model
placed on the mesh.

Shape keys: B batch, S sequence, C choices, H hidden, V vocab.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np


#: marker value for ``call_native``: the model's own parameter tree (spec default rule ``self.params``)
OWN_PARAMETERS = "self.params"


def public_method_signature(cls: type, method: str) -> inspect.Signature | None:
    """Signature of ``cls.<method>`` as users call it (``self`` dropped), None when ``cls`` has no
    public callable attribute of that name (helper of the optional ``method_signature``)."""
    if method.startswith("_"):
        return None
    value = getattr(cls, method, None)
    if value is None or not callable(value):
        return None
    signature = inspect.signature(value)
    if inspect.isfunction(value):  # a plain method looked up on the class: self is still listed
        parameters = list(signature.parameters.values())[1:]
        signature = signature.replace(parameters=parameters)
    return signature


@dataclass(frozen=True)
class Support:
    """Whether an adapter supports a (class, dtype, device) combination, and if not, why."""

    ok: bool
    reason: str = ""


#: the optional methods an adapter may declare in Capabilities.methods (documented above)
OPTIONAL_METHODS = ("loss", "loss_gradients", "call_native", "run_chunks", "run_incremental", "run_cached",
                    "export_serving",
                    "model_class", "method_signature", "save_pretrained_defaults", "run_distributed",
                    "distributed_loss_gradients", "sgd_step", "sgd_step_penalized", "parameter_layout",
                    "save_distributed")
#: what a feature string names: ``kind:name`` (Capabilities.lacking)
FEATURE_KINDS = ("class", "dtype", "input", "flag", "output", "format", "file", "method", "api", "layout")


class MeshUnavailable(ValueError):
    """The test process has fewer devices of the platform than a mesh asks for (the distribution family
    skips, or fails under --require-devices)."""


@dataclass(frozen=True)
class MeshSpec:
    """A device mesh of ``devices`` devices of one platform, shaped (data, model)."""

    platform: str  # cpu | gpu | tpu
    devices: int
    data: int
    model: int

    @property
    def id(self) -> str:
        """As test ids and reports name it: ``cpu:8=4x2`` (platform:devices=data x model)."""
        return f"{self.platform}:{self.devices}={self.data}x{self.model}"


@dataclass(frozen=True)
class Capabilities:
    """What an implementation offers, declared by its adapter (``capabilities()``).

    ``classes``: the spec class names it implements. ``config``: config fields it supports at some
    values only, field -> those values (a field not named takes every valid value); ``config_check``,
    when given, judges a whole config further (relations between fields: ``(class_name, config) ->
    Support``). ``inputs``: the call arguments it accepts (input_ids, attention_mask, token_type_ids,
    position_ids, head_mask, inputs_embeds, encoder_hidden_states, ..., and the label arguments).
    ``flags``: the call flags it honours (output_attentions, output_hidden_states, use_cache, return_dict;
    return_dict stands for the tuple output of ``run(tuple_form=True)``). ``outputs``: the output fields it
    can return. ``input_formats``: ``run(input_format=...)`` values. ``dtypes``: computation dtypes.
    ``files``: checkpoint formats that ``save``/``load`` read and write in the transformers layout
    (safetensors, h5, msgpack); empty when it has no such files. ``methods``: the optional protocol methods
    it implements. ``apis``: "documented" when its constructors and calls have the documented (transformers
    4.37) signatures (the signatures family), "native" when ``Handle.native`` is a model with the documented
    class API that tests may call directly (Keras fit, resize_token_embeddings, the keyword call), "python_lists"
    when that model also takes id inputs as nested Python lists (an extension the spec allows,
    behaviour.python_lists; transformers' classes refuse lists).
    ``layouts``: the ways of splitting the model over a device mesh its distribution methods implement.
    ``impl``: the implementation's name in skip reasons; the suite sets it to the adapter's ``name``.
    """

    classes: tuple[str, ...]
    inputs: frozenset[str]
    flags: frozenset[str]
    outputs: frozenset[str]
    dtypes: tuple[str, ...]
    config: Mapping[str, tuple] = field(default_factory=dict)
    config_check: Callable[[str, Mapping[str, Any]], Support] | None = None
    input_formats: tuple[str, ...] = ("kwargs",)
    files: tuple[str, ...] = ()
    methods: frozenset[str] = frozenset()
    apis: frozenset[str] = frozenset()
    layouts: tuple[str, ...] = ()  # distribution layouts (distribution.yaml) the distribution methods take
    impl: str = ""

    def skip_unless(self, *features: str) -> None:
        """pytest.skip("not supported by <impl>: <features it lacks>") unless it offers every feature."""
        lacking = self.lacking(*features)
        if lacking:
            self.skip(*lacking)

    def skip(self, *what: str) -> None:
        import pytest

        from conformance.results import unsupported

        pytest.skip(unsupported(self.impl, *what))

    def supports_config(self, class_name: str, config: Mapping[str, Any]) -> Support:
        """Whether a (full or partial) config dict is inside the declared config values."""
        for name, allowed in self.config.items():
            if name in config and config[name] not in allowed:
                return Support(False, f"config {name}={config[name]!r} (supported: "
                                      f"{', '.join(repr(v) for v in allowed)})")
        return self.config_check(class_name, config) if self.config_check is not None else Support(True)

    def _has(self, kind: str, name: str) -> bool:
        return name in {"class": self.classes, "dtype": self.dtypes, "input": self.inputs, "flag": self.flags,
                        "output": self.outputs, "format": self.input_formats, "file": self.files,
                        "method": self.methods, "api": self.apis, "layout": self.layouts}[kind]

    def lacking(self, *features: str) -> list[str]:
        """The features (``kind:name``, kind one of FEATURE_KINDS) it does not offer, as readable
        phrases ("input head_mask"), in the order given."""
        out = []
        for feature in features:
            kind, _, name = feature.partition(":")
            if kind not in FEATURE_KINDS or not name:
                raise ValueError(f"feature {feature!r}: expected 'kind:name' with kind one of {FEATURE_KINDS}")
            if not self._has(kind, name):
                out.append(f"{kind} {name}")
        return out

    def as_dict(self) -> dict:
        """The declaration as plain JSON values (the report's run_info)."""
        return {"classes": list(self.classes), "inputs": sorted(self.inputs), "flags": sorted(self.flags),
                "outputs": sorted(self.outputs), "dtypes": list(self.dtypes),
                "config": {k: list(v) for k, v in sorted(self.config.items())},
                "config_check": self.config_check is not None, "input_formats": list(self.input_formats),
                "files": list(self.files), "methods": sorted(self.methods), "apis": sorted(self.apis),
                "layouts": list(self.layouts)}


@dataclass
class Handle:
    """A built model: the adapter's native object plus what the suite needs to know about it."""

    class_name: str
    config: dict  # ElectraConfig.to_dict() form
    dtype: str  # "float32" | "bfloat16" | "float16": computation dtype
    device: str  # "cpu" | "gpu" | "tpu"
    native: Any  # its own model object (and params, for Flax); tests call it only under Capabilities.apis "native"
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    """Outputs of one call, as numpy.

    ``fields`` maps each *present* output field to a numpy array, or a tuple of arrays for tuple
    fields (hidden_states, attentions, ...); opaque containers (a Flax cache) are passed through as-is.
    ``tuple_form`` is what return_dict=False gave (same conversion), when the suite asked for it.
    """

    fields: Mapping[str, Any]
    tuple_form: tuple | None = None
    output_class: str = ""


@runtime_checkable
class Adapter(Protocol):
    #: short name used in reports and test ids, e.g. "flax", "tf", "hf-flax", "mypkg"
    name: str
    #: "tf" or "flax": which family of spec classes it implements
    framework: str

    def version(self) -> str:
        """Implementation version string (package version, git describe, ...)."""

    def framework_versions(self) -> dict[str, str]:
        """Versions of the frameworks it runs on, e.g. {"tensorflow": "2.21.0"}."""

    def available_devices(self) -> list[str]:
        """Subset of ["cpu", "gpu", "tpu"] present on this machine for this framework."""

    def capabilities(self) -> Capabilities:
        """What it offers (called once per run; see Capabilities)."""

    def supports(self, class_name: str, dtype: str = "float32", device: str = "cpu") -> Support:
        """Support(True) or Support(False, reason)."""

    def constructor_signature(self, class_name: str) -> inspect.Signature:
        """Signature of the class constructor as users see it."""

    def call_signature(self, class_name: str) -> inspect.Signature:
        """Signature of the call (TF ``call``, Flax ``__call__``) as users see it."""

    def build(self, class_name: str, config: dict, *, seed: int = 0, dtype: str = "float32",
              device: str = "cpu") -> Handle:
        """Build a randomly initialised model from a config dict."""

    def get_weights(self, handle: Handle) -> dict[str, np.ndarray]:
        """All parameters under canonical names (PyTorch layout: Linear weight is (out, in))."""

    def load_weights(self, handle: Handle, state_dict: Mapping[str, np.ndarray]) -> None:
        """Set parameters from canonical names; raises on a missing name or a shape mismatch."""

    def run(self, handle: Handle, inputs: Mapping[str, Any], *, flags: Mapping[str, Any] | None = None,
            train: bool = False, seed: int | None = None, compiled: bool = False,
            tuple_form: bool = False, input_format: str = "kwargs") -> RunResult:
        """Call the model. ``inputs``: call arguments (numpy arrays; labels included), absent = omitted.
        ``flags``: output_attentions / output_hidden_states / return_dict / use_cache, passed only if present.
        ``train``: training mode (TF training=True; Flax train=True with a dropout rng from ``seed``).
        ``compiled``: run through tf.function(jit_compile=True) / jax.jit.
        ``tuple_form``: also call with return_dict=False and return that tuple.
        ``input_format``: one of ``Capabilities.input_formats`` ("kwargs"; TF also "tensor", "list", "dict")."""

