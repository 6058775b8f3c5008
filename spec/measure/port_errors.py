"""Max abs / rel error of transformers' Flax (arg flax) or TF (arg tf) ELECTRA classes vs its PyTorch classes,
float32 on CPU, 4 random tiny configs x 7 heads. Usage: python -m spec.measure.port_errors flax|tf"""
import os, sys, numpy as np
fw = sys.argv[1]
if fw == "tf":
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import torch, transformers as t
heads = ["Model", "ForPreTraining", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering", "ForMultipleChoice"]
res = {}
for seed in range(4):
    rng = np.random.default_rng(seed)
    cfg = t.ElectraConfig(vocab_size=64, embedding_size=int(rng.choice([8, 16, 32])), hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=37, max_position_embeddings=32, num_labels=3,
                          hidden_dropout_prob=0, attention_probs_dropout_prob=0)
    B, S, C = 2, 12, 3
    for h in heads:
        torch.manual_seed(seed)
        cfg.num_labels = 2 if h == "ForQuestionAnswering" else 3
        pt = getattr(t, "Electra" + h)(cfg).eval()
        shape = (B, C, S) if h == "ForMultipleChoice" else (B, S)
        ids = rng.integers(0, 64, shape); am = np.ones(shape, np.int64); am[..., -3:] = 0
        tt = rng.integers(0, 2, shape)
        with torch.no_grad():
            o = pt(input_ids=torch.tensor(ids), attention_mask=torch.tensor(am), token_type_ids=torch.tensor(tt), output_hidden_states=True, output_attentions=True)
        if fw == "flax":

            import tempfile
            d = tempfile.mkdtemp(); pt.save_pretrained(d)
            m = getattr(t, "FlaxElectra" + h).from_pretrained(d, from_pt=True)
            f = m(ids, attention_mask=am, token_type_ids=tt, output_hidden_states=True, output_attentions=True)
        else:
            import tempfile
            d = tempfile.mkdtemp(); pt.save_pretrained(d)
            m = getattr(t, "TFElectra" + h).from_pretrained(d, from_pt=True)
            f = m(input_ids=ids, attention_mask=am, token_type_ids=tt, output_hidden_states=True, output_attentions=True)
        for k in o.keys():
            a, b = o[k], f[k]
            if isinstance(a, tuple):
                pairs = [(x, y) for x, y in zip(a, b)]
            else:
                pairs = [(a, b)]
            for x, y in pairs:
                x = x.numpy(); y = np.asarray(y)
                if k in ("last_hidden_state", "hidden_states", "logits", "start_logits", "end_logits") and x.ndim >= 2 and x.shape[:2] == (B, S):
                    msk = am.astype(bool)
                    x, y = x[msk], y[msk]  # compare only non-padding positions
                err = np.abs(x - y); key = f"{h}.{k}"
                r = res.setdefault(key, [0, 0, 0])
                r[0] = max(r[0], err.max()); r[1] = max(r[1], (err / (np.abs(x) + 1e-6)).max()); r[2] = max(r[2], np.abs(x).max())
for k, (a, r, m) in sorted(res.items()):
    print(f"{k:50s} max_abs_err={a:.2e} max_rel_err={r:.2e} max|ref|={m:.2e}")
