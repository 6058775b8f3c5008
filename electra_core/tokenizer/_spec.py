"""The tokenizer section of the spec (``spec/data/tokenizer.yaml``)."""
from __future__ import annotations

from spec import load_spec


def tokenizer_spec():
    """``load_spec().tokenizer``; until the loader carries the section, the section's own loader."""
    section = getattr(load_spec(), "tokenizer", None)
    if section is not None:
        return section
    from spec.sections.tokenizer import load_tokenizer_spec

    return load_tokenizer_spec()
