"""Max abs error of transformers' Flax / TF ElectraModel vs its PyTorch ElectraModel on trained weights
(all-MiniLM-L6-v2 converted to ELECTRA: H384, L6, 12 heads) and real text, float32 on CPU; also the
masked-LM logits over the full 30522-token vocabulary (ElectraForMaskedLM with the trained encoder and
a random generator head). Usage:
    python -m electra_core.convert.minilm DIR && python -m spec.measure.trained_errors DIR flax|tf"""
from __future__ import annotations

import os
import sys

import numpy as np

TEXTS = ["The quick brown fox jumps over the lazy dog.",
         "ELECTRA trains a discriminator to detect replaced tokens, which is far more sample-efficient than masked language modelling.",
         "Paris is the capital of France.",
         "A conformance suite checks that every clause of the specification holds for an implementation."]


def main(model_dir: str, framework: str) -> None:
    if framework == "tf":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import torch
    import transformers as t

    tok = t.AutoTokenizer.from_pretrained(model_dir)
    enc = tok(TEXTS, padding=True, return_tensors="np")
    ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
    real = mask.astype(bool)
    prefix = "Flax" if framework == "flax" else "TF"
    for cls_name, field in (("ElectraModel", "last_hidden_state"), ("ElectraForMaskedLM", "logits")):
        torch.manual_seed(0)
        pt = getattr(t, cls_name).from_pretrained(model_dir).eval()
        with torch.no_grad():
            ref = pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                     token_type_ids=torch.tensor(types), output_hidden_states=True)
        tmp = os.path.join(model_dir, f"_measure_{cls_name}")
        pt.save_pretrained(tmp)
        other = getattr(t, prefix + cls_name).from_pretrained(tmp, from_pt=True)
        out = other(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        for key in (field, "hidden_states"):
            a = ref[key] if key == field else ref[key][-1]
            b = out[key] if key == field else out[key][-1]
            a, b = a.numpy()[real], np.asarray(b)[real]
            err = np.abs(a.astype(np.float64) - b)
            print(f"{prefix}{cls_name}.{key}: max_abs_err={err.max():.3e} max|ref|={np.abs(a).max():.3e} "
                  f"max_err/(1+|ref|)={(err / (1 + np.abs(a))).max():.3e} seq={ids.shape[1]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
