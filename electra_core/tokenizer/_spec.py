"""The tokenizer section of the spec (``spec/data/tokenizer.yaml``)."""
from __future__ import annotations

from spec import load_spec


def tokenizer_spec():
    """``load_spec().tokenizer`` (spec.sections.tokenizer.TokenizerSpec)."""
    return load_spec().tokenizer
