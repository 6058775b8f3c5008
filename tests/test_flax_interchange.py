"""Checkpoints interchange with the reference package (transformers 4.57.6): what its PyTorch classes save
(model.safetensors) and what its Flax classes save (flax_model.msgpack) loads into impl_flax and gives the
PyTorch reference's outputs; what impl_flax saves loads into both and gives equal outputs. All 8 classes.
Run with -s to see the max errors."""
from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

import impl_flax
from flax_helpers import FLAX_CLASSES, compare_outputs, inputs_for, tiny_config, torch_call, torch_reference
from spec import load_spec

pytestmark = pytest.mark.reference


def _hf_flax_class(class_name):
    import transformers

    return getattr(transformers, class_name)


def _call_ours(model, inputs):
    with jax.disable_jit():
        return model(**inputs)


def _hf_flax_call(model, inputs):
    # transformers' Flax port defaults token_type_ids to ones (decision.flax_token_type_ids_default): pass them
    return model(**inputs)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Per class: the PyTorch reference model, its save_pretrained directory, and the directory that
    transformers' Flax class (converted from it) saved."""
    made = {}
    for class_name in FLAX_CLASSES:
        config = tiny_config(class_name, num_hidden_layers=1)
        pt_model = torch_reference(class_name, config, seed=1)
        pt_dir = tmp_path_factory.mktemp("pt")
        pt_model.save_pretrained(pt_dir)
        flax_dir = tmp_path_factory.mktemp("hf_flax")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_flax = _hf_flax_class(class_name).from_pretrained(pt_dir, from_pt=True)
        hf_flax.save_pretrained(flax_dir)
        made[class_name] = (config, pt_model, pt_dir, flax_dir)
    return made


@pytest.mark.parametrize("source", ["pytorch_safetensors", "hf_flax_msgpack"])
@pytest.mark.parametrize("class_name", FLAX_CLASSES)
def test_reference_checkpoints_load_and_match_pytorch(checkpoints, class_name, source):
    config, pt_model, pt_dir, flax_dir = checkpoints[class_name]
    directory = pt_dir if source == "pytorch_safetensors" else flax_dir
    expected_file = "model.safetensors" if source == "pytorch_safetensors" else "flax_model.msgpack"
    assert (directory / expected_file).exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete checkpoint loads without missing/unexpected keys
        model = getattr(impl_flax, class_name).from_pretrained(directory)
    inputs = inputs_for(class_name, config)
    worst = compare_outputs(_call_ours(model, inputs), torch_call(pt_model, inputs), where=f"{class_name} {source}: ")
    print(f"\n{class_name} from {source}: max abs error vs PyTorch {worst:.2e}")


def test_checkpoint_of_our_save_loads_in_transformers(checkpoints, tmp_path):
    import transformers

    worst = {}
    for class_name in FLAX_CLASSES:
        config, pt_model, pt_dir, _ = checkpoints[class_name]
        ours = getattr(impl_flax, class_name).from_pretrained(pt_dir)
        target = tmp_path / class_name
        ours.save_pretrained(target)
        inputs = inputs_for(class_name, config)
        expected = _call_ours(ours, inputs)
        pt_loaded = getattr(transformers, load_spec().classes[class_name].reference).from_pretrained(
            target, use_safetensors=True).eval()
        worst[class_name, "pt"] = compare_outputs(expected, torch_call(pt_loaded, inputs), where="pt ")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_flax = _hf_flax_class(class_name).from_pretrained(target)
        worst[class_name, "hf_flax"] = compare_outputs(expected, _hf_flax_call(hf_flax, inputs), where="hf flax ")
    for (class_name, where), error in worst.items():
        print(f"\nour {class_name} checkpoint in transformers' {where} class: max abs error {error:.2e}")
