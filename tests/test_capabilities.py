"""Capabilities (conformance/adapters/base.py): what an adapter declares, how the registry checks it,
and how the strategies and the model cache keep every test inside it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conformance import strategies as S
from conformance.adapters.base import Capabilities, Handle, Support
from conformance.checks import TestRecord as Record
from conformance.model_cache import BoundModelCache, ModelStore
from conformance.registry import AdapterError, check_capabilities

BARE = Capabilities(classes=("FlaxElectraModel",), inputs=frozenset({"input_ids", "attention_mask"}),
                    flags=frozenset(), outputs=frozenset({"last_hidden_state"}), dtypes=("float32",),
                    config={"hidden_act": ("relu",), "position_embedding_type": ("absolute",)}, impl="bare")


def test_lacking_names_each_missing_feature_in_order():
    assert BARE.lacking("input:input_ids", "input:head_mask", "flag:output_attentions", "class:FlaxElectraModel",
                        "dtype:bfloat16") == ["input head_mask", "flag output_attentions", "dtype bfloat16"]
    with pytest.raises(ValueError, match="kind one of"):
        BARE.lacking("inputs:head_mask")


def test_skip_reason_names_the_implementation_and_the_feature():
    with pytest.raises(pytest.skip.Exception, match=r"^not supported by bare: input head_mask, method loss$"):
        BARE.skip_unless("input:input_ids", "input:head_mask", "method:loss")
    BARE.skip_unless("input:attention_mask")  # offered: no skip


def test_supports_config_checks_values_then_the_relation():
    assert BARE.supports_config("FlaxElectraModel", {"hidden_act": "relu", "vocab_size": 7}).ok
    refused = BARE.supports_config("FlaxElectraModel", {"hidden_act": "gelu"})
    assert not refused.ok and "hidden_act='gelu'" in refused.reason and "'relu'" in refused.reason

    def one_dropout(class_name, config):
        same = config.get("hidden_dropout_prob") == config.get("attention_probs_dropout_prob")
        return Support(same, "one dropout rate for hidden states and attention")

    caps = dataclasses.replace(BARE, config_check=one_dropout)
    assert caps.supports_config("FlaxElectraModel", {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}).ok
    assert caps.supports_config("FlaxElectraModel", {"hidden_dropout_prob": 0.1,
                                                     "attention_probs_dropout_prob": 0.0}).reason.startswith("one")


class _Adapter:
    name, framework = "x", "flax"

    def __init__(self, caps):
        self._caps = caps

    def capabilities(self):
        return self._caps

    def loss(self, handle, outputs, inputs):  # an optional method it really has
        return 0.0


@pytest.mark.parametrize("change,words", [
    (dict(classes=("TFElectraModel",)), "'TFElectraModel' is not a spec flax class"),
    (dict(classes=()), "declares no class"),
    (dict(config={"hidden_activation": ("relu",)}), "'hidden_activation' is not an ElectraConfig field"),
    (dict(config={"hidden_act": ["relu"]}), "must be a non-empty tuple"),
    (dict(dtypes=("float64",)), "dtype 'float64' is not a spec dtype"),
    (dict(methods=frozenset({"fit"})), "'fit' is not an optional protocol method"),
    (dict(methods=frozenset({"run_chunks"})), "declares 'run_chunks' but has no such method"),
    (dict(files=("safetensors",)), "declares 'save' but has no such method"),
])
def test_registry_refuses_a_declaration_that_is_not_true(change, words):
    check_capabilities("x", _Adapter(dataclasses.replace(BARE, methods=frozenset({"loss"}))))  # the true one passes
    with pytest.raises(AdapterError, match="capabilities"):
        check_capabilities("x", _Adapter({"classes": ["FlaxElectraModel"]}))  # a dict is no declaration
    with pytest.raises(AdapterError) as err:
        check_capabilities("x", _Adapter(dataclasses.replace(BARE, **change)))
    assert words in str(err.value)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_cases_stay_inside_the_declaration(data):
    case = data.draw(S.cases(BARE, "FlaxElectraModel", args=("input_ids", "attention_mask", "token_type_ids")))
    assert case.config["hidden_act"] == "relu" and case.config["position_embedding_type"] == "absolute"
    assert set(case.inputs) == {"input_ids", "attention_mask"}  # token_type_ids left out: a side input it lacks


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
def test_a_required_input_it_lacks_skips_before_drawing():
    with pytest.raises(pytest.skip.Exception, match="not supported by bare: input token_type_ids"):
        S.cases(BARE, "FlaxElectraModel", requires=("token_type_ids",)).example()


def test_no_bucket_fits_skips_with_the_reason():
    with pytest.raises(pytest.skip.Exception, match="not supported by bare: config hidden_act='gelu'"):
        S.fitting_buckets(BARE, "FlaxElectraModel", overrides={"hidden_act": "gelu"})


class _Recorder:
    name = "bare"

    def __init__(self):
        self.calls = []

    def run(self, handle, inputs, **kwargs):
        self.calls.append((sorted(inputs), kwargs["flags"]))
        return None


def _cache():
    return BoundModelCache(ModelStore(), _Recorder(), BARE, "cpu", "test", record=Record())


_HANDLE = Handle("FlaxElectraModel", {"hidden_act": "relu"}, "float32", "cpu", native=None)


def test_neutral_flags_it_lacks_are_dropped_others_skip():
    cache, ids = _cache(), {"input_ids": np.zeros((1, 3), np.int32)}
    cache.run(_HANDLE, ids, flags={"output_attentions": False, "output_hidden_states": None, "return_dict": True})
    assert cache.adapter.calls == [(["input_ids"], {})]
    with pytest.raises(pytest.skip.Exception, match="flag output_attentions"):
        cache.run(_HANDLE, ids, flags={"output_attentions": True})
    with pytest.raises(pytest.skip.Exception, match="flag return_dict"):
        cache.run(_HANDLE, ids, tuple_form=True)
    with pytest.raises(pytest.skip.Exception, match="input head_mask"):
        cache.run(_HANDLE, dict(ids, head_mask=np.ones(2, np.float32)))
    with pytest.raises(pytest.skip.Exception, match="format dict"):
        cache.run(_HANDLE, ids, input_format="dict")
    assert len(cache.adapter.calls) == 1  # nothing it lacks reached the adapter
    cache.run(_HANDLE, dict(ids, input_idz=ids["input_ids"]))  # a key no class takes: a test's deliberate mistake
    assert cache.adapter.calls[-1] == (["input_ids", "input_idz"], {})
