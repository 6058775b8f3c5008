"""What every adapter in this package shares, whatever the framework: package versions, outputs as
numpy, and ``PackageClasses``, the descriptive half of the protocol for an implementation whose model
classes are attributes of one Python package (impl_tf, impl_flax, transformers)."""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from typing import Any

import numpy as np

from conformance.adapters.base import Capabilities, Support, public_method_signature


def spec_dtypes() -> tuple[str, ...]:
    """The computation dtypes of the spec (tolerances.yaml), which the built-in adapters all run."""
    from spec import load_spec

    return load_spec().tolerances.dtypes


#: the call arguments that are flags (bools) rather than inputs; "training" is the mode, not a flag
_MODE_ARGUMENTS = ("training", "train", "deterministic", "params", "dropout_rng")


def full_capabilities(framework: str, classes, *, methods, input_formats=("kwargs",),
                      files=("safetensors",), apis=("documented", "native"), layouts=()) -> Capabilities:
    """Capabilities of an implementation of the whole documented API for ``classes`` (spec class names of
    ``framework``): every config value, every call argument, flag and output field the spec gives them."""
    from spec import load_spec

    spec = load_spec()
    inputs, flags, outputs = set(), set(), set()
    for name in classes:
        spec_class = spec.classes[name]
        for p in spec_class.call:
            if p.name in _MODE_ARGUMENTS:
                continue
            (flags if p.dtype == "bool" else inputs).add(p.name)
        inputs.update(spec_class.labels or ())
        outputs.update(f.name for f in spec.output_of(name).fields)
    return Capabilities(classes=tuple(classes), inputs=frozenset(inputs), flags=frozenset(flags),
                        outputs=frozenset(outputs), dtypes=spec.tolerances.dtypes, input_formats=tuple(input_formats),
                        files=tuple(files), methods=frozenset(methods), apis=frozenset(apis),
                        layouts=tuple(layouts))


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


#: the inputs with one entry per position (sequence axis last, or next to last for inputs_embeds (B, S, E))
_PER_POSITION = ("input_ids", "token_type_ids", "position_ids")


def split_for_cache(inputs: dict[str, Any], prefix_len: int, *, mask_over_cache: bool) -> tuple[dict, dict]:
    """(first, second) inputs of a cached call (protocol method ``run_cached``): the per-position inputs
    split at ``prefix_len``; the attention mask over the first call's positions for the first call and over
    all positions for the second (``mask_over_cache``: whole for both, as Flax's init_cache length needs);
    the rest (head mask, encoder states and mask) whole for both."""
    first, second = {}, {}
    for name, value in inputs.items():
        if name in _PER_POSITION:
            first[name], second[name] = value[..., :prefix_len], value[..., prefix_len:]
        elif name == "inputs_embeds":
            first[name], second[name] = value[..., :prefix_len, :], value[..., prefix_len:, :]
        elif name == "attention_mask" and not mask_over_cache:
            first[name], second[name] = value[..., :prefix_len], value
        else:
            first[name] = second[name] = value
    return first, second


def to_numpy(value: Any) -> Any:
    """Framework arrays -> numpy, recursively through tuples and lists; a dict (the opaque Flax key/value
    cache) and plain values pass through."""
    if isinstance(value, (tuple, list)):
        return tuple(to_numpy(v) for v in value)
    if isinstance(value, (dict, str)):
        return value
    if callable(getattr(value, "numpy", None)):
        return np.asarray(value.numpy())
    if hasattr(value, "__array__"):
        return np.asarray(value)
    return value


class PackageClasses:
    """model_class, classes, supports and the signatures, answered from the package ``package``: its
    classes are the spec's classes of ``framework`` that it defines."""

    #: the module whose attributes are the model classes
    package: str = ""
    #: "tf" or "flax": selects the spec's classes and the call method (Keras ``call``, Flax ``__call__``)
    framework: str = "tf"
    #: the optional protocol methods the adapter class implements (base.OPTIONAL_METHODS)
    optional_methods: tuple[str, ...] = ()
    #: run(input_format=...) values
    formats: tuple[str, ...] = ("kwargs",)
    #: checkpoint formats save/load handle
    file_formats: tuple[str, ...] = ("safetensors",)
    #: the distribution layouts its distribution methods implement (base.py; spec distribution.yaml)
    layouts: tuple[str, ...] = ()
    #: Capabilities.apis: the documented signatures, the native model object, and extensions it offers
    apis: tuple[str, ...] = ("documented", "native")

    def capabilities(self) -> Capabilities:
        return full_capabilities(self.framework, self.classes(), methods=self.optional_methods,
                                 input_formats=self.formats, files=self.file_formats, layouts=self.layouts,
                                 apis=self.apis)

    def _package_label(self) -> str:
        """How messages name the implementation."""
        return self.package

    def model_class(self, class_name: str):
        if class_name not in self.classes():
            raise ValueError(f"{self._package_label()} has no class {class_name!r}; it implements {self.classes()}")
        return getattr(importlib.import_module(self.package), class_name)

    def classes(self) -> list[str]:
        from spec import load_spec

        module = importlib.import_module(self.package)
        return [c.name for c in load_spec().classes_for(self.framework) if hasattr(module, c.name)]

    def supports(self, class_name: str, dtype: str = "float32", device: str = "cpu") -> Support:
        if class_name not in self.classes():
            return Support(False, f"{self._package_label()} has no {class_name}")
        if dtype not in spec_dtypes():
            return Support(False, f"unknown dtype {dtype!r}; {self._package_label()} runs {list(spec_dtypes())}")
        if device not in self.available_devices():
            return Support(False, f"no {device} device available to {self.framework}")
        return Support(True)

    def available_devices(self) -> list[str]:  # pragma: no cover - every adapter defines it
        raise NotImplementedError

    def constructor_signature(self, class_name: str) -> inspect.Signature:
        return inspect.signature(self.model_class(class_name))

    def call_signature(self, class_name: str) -> inspect.Signature:
        method = "call" if self.framework == "tf" else "__call__"
        signature = inspect.signature(getattr(self.model_class(class_name), method))
        return signature.replace(parameters=[p for n, p in signature.parameters.items() if n != "self"])

    def method_signature(self, class_name: str, method: str) -> inspect.Signature | None:
        """Optional protocol method (base.py)."""
        return public_method_signature(self.model_class(class_name), method)
