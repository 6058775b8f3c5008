"""Tokenizer files (the spec's ``files`` section): find them in a directory or hub repo, read the options
and special tokens they carry, and write them back atomically."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from electra_core.files import atomic_write_bytes
from electra_core.hub import HUB_OPTION_NAMES, CheckpointNotFoundError, HubOptions, resolve_file
from electra_core.tokenizer._spec import tokenizer_spec

HUB_KWARGS = HUB_OPTION_NAMES


@dataclass
class TokenizerFiles:
    """Local paths of the tokenizer files of one checkpoint; absent files are None."""

    source: str
    paths: dict[str, Path | None]

    def __getitem__(self, name: str) -> Path | None:
        return self.paths.get(name)

    def read_json(self, name: str) -> dict:
        path = self.paths.get(name)
        if path is None:
            return {}
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"cannot read {str(path)!r}: {e}") from e
        if not isinstance(data, dict):
            raise ValueError(f"{str(path)!r} must hold a JSON object, got {type(data).__name__}")
        return data


def locate(name_or_path: str | os.PathLike, *, names: tuple[str, ...] | None = None, **hub: Any) -> TokenizerFiles:
    """Resolve each tokenizer file (by spec name) of a directory or hub id; needs vocab.txt or tokenizer.json."""
    unknown = set(hub) - set(HUB_KWARGS)
    if unknown:
        raise TypeError(f"unexpected from_pretrained arguments {sorted(unknown)}; hub arguments are {list(HUB_KWARGS)}")
    wanted = names or tuple(f["name"] for f in tokenizer_spec().files)
    options = HubOptions(**hub)
    paths = {name: resolve_file(name_or_path, tokenizer_spec().filename(name), hub=options, required=False)
             for name in wanted}
    if paths.get("vocab") is None and paths.get("tokenizer") is None:
        raise CheckpointNotFoundError(
            f"{str(name_or_path)!r} has no tokenizer: neither {tokenizer_spec().filename('vocab')} nor "
            f"{tokenizer_spec().filename('tokenizer')} was found")
    return TokenizerFiles(str(name_or_path), paths)


def special_tokens_from(config: Mapping[str, Any], special_map: Mapping[str, Any]) -> dict[str, str]:
    """Special token strings: special_tokens_map.json over tokenizer_config.json; entries may be
    strings or AddedToken dicts ({"content": ...})."""
    found = {}
    for role in tokenizer_spec().special_token_defaults:
        for source in (special_map, config):
            value = source.get(role)
            if isinstance(value, Mapping):
                value = value.get("content")
            if isinstance(value, str):
                found[role] = value
                break
    return found


def options_from(config: Mapping[str, Any]) -> dict[str, Any]:
    """The spec options present in tokenizer_config.json; a model_max_length at or above the
    unbounded marker reads back as unbounded (None)."""
    found = {o.name: config[o.name] for o in tokenizer_spec().options if o.name in config}
    limit = found.get("model_max_length")
    if isinstance(limit, (int, float)) and limit >= tokenizer_spec().unbounded_model_max_length:
        found["model_max_length"] = None
    return found


def write(directory: str | os.PathLike, contents: Mapping[str, str]) -> tuple[str, ...]:
    """Write {spec file name: text} into ``directory`` (created if needed), each file atomically."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"cannot save a tokenizer into {str(directory)!r}: it is a file, not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contents.items():
        path = directory / tokenizer_spec().filename(name)
        atomic_write_bytes(path, text.encode("utf-8"))
        written.append(str(path))
    return tuple(written)
