"""from_pretrained / save_pretrained for the TF classes, through electra_core.checkpoint
(config.json + model.safetensors with PyTorch names, or tf_model.h5 as transformers' TF classes write it)."""
from __future__ import annotations

from electra_core.checkpoint import save_state
from electra_core.pretrained_args import load_weights, parse_pretrained_args, reading_checkpoint, resolve_config
from electra_core.checkpoint.param_spec import params_data
from impl_tf.weights import assign_match, canonical_state, expected_shapes

LOAD_FORMATS = ("safetensors", "h5")


def load_pretrained(cls, name_or_path, *, ignore_mismatched_sizes=False, config=None, **kwargs):
    """Keywords: hub options, loader options and config fields (electra_core.pretrained_args)."""
    args = parse_pretrained_args(kwargs, caller=f"{cls.__name__}.from_pretrained")
    with reading_checkpoint(args, name_or_path):  # config.json and weights of one whole checkpoint
        config = resolve_config(args, name_or_path, config)
        model = cls(config)  # checks the config (and its parameter memory) before any file is read
        loaded = load_weights(args, name_or_path, LOAD_FORMATS, expected=expected_shapes(model),
                              base_prefix="electra.", ignore_mismatched_sizes=ignore_mismatched_sizes)
    assign_match(model, loaded.match)  # shapes checked before any tensor was read (files.load.shapes_first)
    return model


def save_pretrained(model, directory, formats=("safetensors",)):
    scope = params_data()["naming"]["tf_model_scopes"].get(type(model).__name__)
    save_state(directory, canonical_state(model), model.config, formats=formats, tf_model_scope=scope)
