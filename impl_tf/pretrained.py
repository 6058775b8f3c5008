"""from_pretrained / save_pretrained for the TF classes, through electra_core.checkpoint
(config.json + model.safetensors with PyTorch names, or tf_model.h5 as transformers' TF classes write it)."""
from __future__ import annotations

from electra_core import ElectraConfig
from electra_core.checkpoint import load_state, save_state
from electra_core.checkpoint.param_spec import params_data
from impl_tf.weights import assign_canonical_state, canonical_state

LOAD_FORMATS = ("safetensors", "h5")


def load_pretrained(cls, name_or_path, *, revision=None, cache_dir=None, local_files_only=False,
                    ignore_mismatched_sizes=False, config=None, **config_overrides):
    where = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
    if config is None:
        config = ElectraConfig.from_pretrained(name_or_path, **where)
    for key, value in config_overrides.items():  # num_labels rebuilds id2label, as in transformers
        setattr(config, key, value)
    config.validate()
    loaded = load_state(name_or_path, **where, formats=LOAD_FORMATS)
    model = cls(config)
    assign_canonical_state(model, loaded.state, ignore_mismatched_sizes=ignore_mismatched_sizes)
    return model


def save_pretrained(model, directory, formats=("safetensors",)):
    scope = params_data()["naming"]["tf_model_scopes"].get(type(model).__name__)
    save_state(directory, canonical_state(model), model.config, formats=formats, tf_model_scope=scope)
