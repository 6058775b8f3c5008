"""AutoTokenizer for ELECTRA checkpoints: reads tokenizer_config.json (or config.json's model_type) and
returns an ElectraTokenizerFast, or raises tokenizer.error.unsupported_tokenizer for anything else."""
from __future__ import annotations

import os
from typing import Any

from electra_core.tokenizer import files
from electra_core.tokenizer._spec import tokenizer_spec
from electra_core.tokenizer.electra import ElectraTokenizerFast


class AutoTokenizer:
    """``AutoTokenizer.from_pretrained("org/name")``: the documented entry point; ELECTRA/BERT WordPiece only."""

    def __init__(self, *_: Any, **__: Any):
        raise TypeError("AutoTokenizer cannot be instantiated; use AutoTokenizer.from_pretrained(name_or_path)")

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **kwargs: Any) -> ElectraTokenizerFast:
        spec = tokenizer_spec()
        hub = {k: kwargs.pop(k) for k in files.HUB_KWARGS if k in kwargs}
        kwargs.pop("use_fast", None)  # there is only the fast tokenizer
        found = files.locate(name_or_path, **hub)
        declared = found.read_json("config").get("tokenizer_class")
        if declared is not None:
            if declared not in spec.accepted_tokenizer_classes:
                raise ValueError(f"{str(name_or_path)!r} declares tokenizer_class={declared!r}; this AutoTokenizer "
                                 f"only builds ELECTRA tokenizers ({list(spec.accepted_tokenizer_classes)})")
        else:
            model = files.locate(name_or_path, names=("model_config", "vocab", "tokenizer"), **hub)
            model_type = model.read_json("model_config").get("model_type")
            if model_type is not None and model_type not in spec.accepted_model_types:
                raise ValueError(f"{str(name_or_path)!r} is a {model_type!r} checkpoint with no tokenizer_class; this "
                                 f"AutoTokenizer only builds ELECTRA tokenizers for model types "
                                 f"{list(spec.accepted_model_types)}")
        return ElectraTokenizerFast._from_files(found, kwargs)
