"""Shared logic of the golden-data families (numerics, persistence); not a test module.

The golden cases come from conformance/golden (conformance.golden_data). Outputs and other-framework
models are cached per session: each (adapter, device, case) runs once whichever test needs it first.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pytest

from conformance.golden_data import GoldenCase
from spec import load_spec

#: this project's adapter of each framework (conformance/registry.py names)
OURS = {"tf": "tf", "flax": "flax"}

WEIGHTS: dict[str, dict] = {}  # case id -> state dict; one object per case (model_cache compares by identity)
OUTPUTS: dict[tuple[str, str, str], dict] = {}  # (adapter name, device, case id) -> output fields
OTHER_ADAPTERS: dict[str, Any] = {}  # framework -> our adapter of it, or the reason it is unavailable
OTHER_MODELS: dict[tuple, Any] = {}  # (adapter name, device, case id) -> handle


def weights_of(case: GoldenCase) -> dict:
    if case.id not in WEIGHTS:
        WEIGHTS[case.id] = case.weights()
    return WEIGHTS[case.id]


def class_under_test(adapter, caps, case: GoldenCase, device: str) -> str:
    """The adapter's class for the case's reference class; skips when the implementation (its
    Capabilities ``caps``) lacks it, the case's config or the device."""
    if device not in adapter.available_devices():
        pytest.skip(f"{adapter.name} has no {device} device here")
    class_name = case.class_for(adapter.framework)
    if class_name is None:
        pytest.skip(f"the spec has no {adapter.framework} class for {case.reference_class}")
    caps.skip_unless(f"class:{class_name}")
    support = caps.supports_config(class_name, case.config())
    if not support.ok:
        caps.skip(support.reason)
    support = adapter.supports(class_name, "float32", device)
    if not support.ok:
        caps.skip(f"{class_name} (float32, {device}): {support.reason}")
    return class_name


#: output fields that exist only on request: the flag or inputs that ask for them
_ON_REQUEST = {"hidden_states": "flag:output_hidden_states", "attentions": "flag:output_attentions",
               "cross_attentions": "flag:output_attentions", "past_key_values": "flag:use_cache"}


def call_arguments(case: GoldenCase, class_name: str, caps) -> tuple[dict, dict]:
    """(inputs, flags) of the golden call that the class's signature takes (Flax: no labels,
    no use_cache). The output flags and the label inputs (for the loss) are side requests, left out
    where the implementation lacks them; every other input of the case is needed to match the reference."""
    spec_class = load_spec().classes[class_name]
    names = set(spec_class.call_names)
    side = set(spec_class.labels or ())
    inputs = {k: v for k, v in case.inputs().items() if k in names and not (k in side and caps.lacking(f"input:{k}"))}
    flags = {k: v for k, v in case.flags.items() if k in names and not caps.lacking(f"flag:{k}")}
    return inputs, flags


def expected_fields(case: GoldenCase, class_name: str, caps) -> dict:
    """The reference outputs the implementation must return for the call of ``call_arguments``: those
    it declares (Capabilities.outputs) and asked for (a flag it lacks asks for nothing; no labels, no loss)."""
    inputs, _ = call_arguments(case, class_name, caps)
    labels = set(load_spec().classes[class_name].labels or ())
    out = {}
    for name, value in case.outputs().items():
        if caps.lacking(f"output:{name}") or (name in _ON_REQUEST and caps.lacking(_ON_REQUEST[name])):
            continue
        if name == "loss" and labels and not labels & set(inputs):
            continue
        out[name] = value
    return out


def run_case(caps, case: GoldenCase, class_name: str, handle, runner) -> dict:
    """Output fields of the class on the case's inputs (``runner``: the model_cache or the adapter); a cached
    case (``cache_prefix``) runs through the protocol method run_cached (skipped where the implementation
    lacks it)."""
    inputs, flags = call_arguments(case, class_name, caps)
    if case.cache_prefix is None:
        return dict(runner.run(handle, inputs, flags=flags).fields)
    caps.skip_unless("method:run_cached")
    return dict(runner.run_cached(handle, inputs, case.cache_prefix, flags=flags).fields)


def golden_run(adapter, caps, device: str, model_cache, case: GoldenCase, class_name: str) -> tuple[Any, dict]:
    """(model with the case's weights from model_cache, its outputs on the case's inputs); the
    outputs are computed once per adapter, device and case and shared by the numerics and
    persistence tests."""
    handle = model_cache.get(class_name, case.config(), weights=weights_of(case))
    key = (adapter.name, device, case.id)
    if key not in OUTPUTS:
        OUTPUTS[key] = run_case(caps, case, class_name, handle, model_cache)
    return handle, OUTPUTS[key]


def compare_fields(check, class_name: str, actual: Mapping, expected: Mapping, *, kind: str,
                   clause: str, field_clauses: Mapping[str, str] | None = None) -> list[str]:
    """allclose of every tensor field of the class's output class present in ``expected``, failing
    ``clause`` (or ``field_clauses[field]`` where given); a field the expected outputs have but
    ``actual`` lacks fails its field clause. Returns the names compared."""
    compared = []
    for f in load_spec().output_of(class_name).fields:
        if f.container is not None or f.name not in expected:
            continue
        check.clause(f.id, f"{class_name}.output.{f.name}")
        value = actual.get(f.name)
        check.that(value is not None, clause=f.id,
                   message=f"{f.name} is absent (the call returned {sorted(actual)}) but the reference returned it")
        pairs = [(value, expected[f.name])]
        if f.tuple:
            check.equal(len(value), len(expected[f.name]), clause=f.id, what=f"number of {f.name} entries")
            pairs = list(zip(value, expected[f.name]))
        for a, e in pairs:
            check.allclose(np.asarray(a, dtype=np.float32), e, clause=(field_clauses or {}).get(f.name, clause),
                           kind=kind, field=f.name)
        compared.append(f.name)
    check.that(bool(compared), clause=clause, message=f"no output field of {class_name} to compare")
    return compared


def capabilities_of(adapter):
    """The Capabilities of an adapter the plugin did not select (our other-framework one)."""
    import dataclasses

    return dataclasses.replace(adapter.capabilities(), impl=adapter.name)


def our_other_adapter(framework: str):
    """This project's adapter of the other framework, or pytest.skip naming why it is unavailable."""
    other = {"tf": "flax", "flax": "tf"}[framework]
    if other not in OTHER_ADAPTERS:
        from conformance.registry import AdapterError, resolve_adapter, unmet_requirements

        unmet = unmet_requirements(OURS[other])
        try:
            OTHER_ADAPTERS[other] = (f"it needs {', '.join(unmet)}" if unmet  # an older stack (compat/)
                                     else resolve_adapter(OURS[other]))
        except AdapterError as err:
            OTHER_ADAPTERS[other] = str(err)
    found = OTHER_ADAPTERS[other]
    if isinstance(found, str):
        pytest.skip(f"cross-framework comparison needs this project's {other} adapter: {found}")
    return found


def other_outputs(other, device: str, case: GoldenCase, class_name: str) -> dict:
    """Outputs of our other-framework class on the case (reused from its own golden test when that
    ran in this session)."""
    key = (other.name, device, case.id)
    if key not in OUTPUTS:
        if key not in OTHER_MODELS:
            handle = other.build(class_name, case.config(), seed=0, dtype="float32", device=device)
            other.load_weights(handle, weights_of(case))
            OTHER_MODELS[key] = handle
        OUTPUTS[key] = run_case(capabilities_of(other), case, class_name, OTHER_MODELS[key], other)
    return OUTPUTS[key]
