"""The keyword arguments of ``from_pretrained`` (clause error.loader.keyword), shared by both frameworks.

Every keyword is one of three kinds:

* a hub option (``revision``, ``cache_dir``, ``local_files_only``, ``token``, ``proxies``,
  ``force_download``, ``subfolder``): sent with every file request of the call (config, weights, shards);
* a loader option (``use_safetensors``, ``from_pt``): narrows which weight files are read;
* an ElectraConfig field (``num_labels``, ``hidden_dropout_prob``, ...): overrides the loaded config.

Anything else raises TypeError naming the keyword; it never becomes a config attribute.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Mapping

from electra_core.config import ElectraConfig, config_field_names, label_map
from electra_core.hub import HUB_OPTION_NAMES, HubOptions

LOADER_OPTION_NAMES = ("use_safetensors", "from_pt")


@dataclass(frozen=True, eq=False)
class PretrainedArgs:
    """from_pretrained keywords sorted by kind."""

    hub: HubOptions
    use_safetensors: bool | None
    from_pt: bool
    config_overrides: dict

    def formats(self, preferred: tuple[str, ...]) -> tuple[str, ...]:
        """The weight formats to read, in order: ``preferred`` narrowed by use_safetensors / from_pt
        (True: only model.safetensors; use_safetensors=False: only the framework's own file)."""
        if self.from_pt or self.use_safetensors:
            return ("safetensors",)
        if self.use_safetensors is False:
            return tuple(f for f in preferred if f != "safetensors")
        return preferred


def parse_pretrained_args(kwargs: Mapping[str, Any], *, caller: str) -> PretrainedArgs:
    """Sort ``kwargs`` of ``caller`` (e.g. "FlaxElectraModel.from_pretrained"); TypeError for anything
    that is neither a hub option, a loader option nor a config field."""
    fields = config_field_names()
    unknown = sorted(k for k in kwargs if k not in HUB_OPTION_NAMES and k not in LOADER_OPTION_NAMES
                     and k not in fields)
    if unknown:
        raise TypeError(f"{caller} got unexpected keyword argument(s) {unknown}: accepted are the hub options "
                        f"{list(HUB_OPTION_NAMES)}, the loader options {list(LOADER_OPTION_NAMES)} and "
                        f"ElectraConfig fields")
    use_safetensors = kwargs.get("use_safetensors")
    from_pt = kwargs.get("from_pt", False)
    _check_flag("use_safetensors", use_safetensors, nullable=True)
    _check_flag("from_pt", from_pt, nullable=False)
    if from_pt and use_safetensors is False:
        raise ValueError("from_pt=True reads model.safetensors (pickled pytorch_model.bin is never read), "
                         "which contradicts use_safetensors=False")
    hub = HubOptions(**{k: kwargs[k] for k in HUB_OPTION_NAMES if k in kwargs})
    _check_flag("local_files_only", hub.local_files_only, nullable=False)
    _check_flag("force_download", hub.force_download, nullable=False)
    overrides = {k: v for k, v in kwargs.items() if k in fields}
    return PretrainedArgs(hub, use_safetensors, bool(from_pt), overrides)


def _check_flag(name: str, value: Any, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, bool):
        allowed = "True, False or None" if nullable else "True or False"
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__} {value!r}")


def with_overrides(config: ElectraConfig, overrides: Mapping[str, Any]) -> ElectraConfig:
    """A validated copy of ``config`` with the config-field ``overrides`` applied (num_labels rebuilds
    id2label; label2id is derived and ignored)."""
    updated = ElectraConfig.from_dict(config.to_dict())
    for key, value in overrides.items():
        if key == "id2label":
            updated.id2label = label_map(value, "id2label")
        elif key != "label2id":
            setattr(updated, key, value)
    return updated.validate()


def resolve_config(args: PretrainedArgs, name_or_path, config: ElectraConfig | None) -> ElectraConfig:
    """The model's config: ``config`` if given, else the config.json of ``name_or_path`` (requested with the
    call's hub options); then the config-field overrides of the call."""
    from electra_core.config import CONFIG_NAME
    from electra_core.hub import resolve_file

    if config is None:
        config = ElectraConfig.from_json_file(resolve_file(name_or_path, CONFIG_NAME, hub=args.hub))
    elif not isinstance(config, ElectraConfig):
        raise TypeError(f"config must be an ElectraConfig or None, got {type(config).__name__}")
    return with_overrides(config, args.config_overrides) if args.config_overrides else config


def load_weights(args: PretrainedArgs, name_or_path, preferred: tuple[str, ...], **expectation):
    """The first weight file of the formats the call allows, requested with the call's hub options.
    ``expectation``: load_state's expected / base_prefix / ignore_mismatched_sizes (the model's shapes,
    checked before any tensor is read: files.load.shapes_first)."""
    from electra_core.checkpoint import load_state

    return load_state(name_or_path, hub=args.hub, formats=args.formats(preferred), **expectation)


def reading_checkpoint(args: PretrainedArgs, name_or_path) -> contextlib.AbstractContextManager:
    """Hold the shared lock of the local checkpoint folder (its subfolder, if the call names one) while
    from_pretrained reads config.json and the weights, so both come from one whole checkpoint
    (files.save.concurrent); a half-save left in the folder is completed first (files.save.crash_safe).
    Hub ids and hub cache paths are not locked."""
    from electra_core.checkpoint.lock import checkpoint_lock, local_checkpoint_folder

    folder = local_checkpoint_folder(name_or_path, args.hub.subfolder)
    return checkpoint_lock(folder, shared=True) if folder is not None else contextlib.nullcontext()
