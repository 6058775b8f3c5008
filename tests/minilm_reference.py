"""Reference side of tests/test_pretrained_minilm.py, run in its own process (torch stays out of the
TF/JAX test process):

    python tests/minilm_reference.py CONVERTED_DIR OUT.npz SENTENCE...

Loads the package's model with transformers' PyTorch BertModel and the converted checkpoint with its
PyTorch ElectraModel, tokenizes with transformers' tokenizer of the package, and saves the inputs and
both last_hidden_states (B, S, H) to OUT.npz, with ElectraModel's loading problems
(missing / unexpected / mismatched parameter names; empty when the conversion is exact).
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("USE_FLAX", "0")


def main(converted: str, out: str, sentences: list[str]) -> None:
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertModel, ElectraModel

    from electra_core.convert.minilm_package import find_minilm_package

    package = find_minilm_package()
    tokenizer = AutoTokenizer.from_pretrained(str(package))
    inputs = tokenizer(sentences, padding=True, return_tensors="pt")
    torch.manual_seed(0)
    with torch.no_grad():
        bert = BertModel.from_pretrained(str(package), add_pooling_layer=False, attn_implementation="eager").eval()
        electra, info = ElectraModel.from_pretrained(converted, attn_implementation="eager",
                                                     output_loading_info=True)
        electra.eval()
        bert_out = bert(**inputs).last_hidden_state.numpy()
        electra_out = electra(**inputs).last_hidden_state.numpy()
    problems = np.array([f"{kind}: {name}" for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
                         for name in info[kind]], dtype=str)
    np.savez(out, bert=bert_out, electra=electra_out, loading_problems=problems,
             **{k: v.numpy() for k, v in inputs.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
