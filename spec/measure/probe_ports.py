"""Run transformers' PyTorch, TF and Flax ELECTRA classes on tiny configs and print what they do
where the spec has to decide (decisions.yaml). Usage:

    python -m spec.measure.probe_ports pt_flax     # PyTorch vs Flax facts (one process)
    python -m spec.measure.probe_ports tf          # TF port facts (sets TF_USE_LEGACY_KERAS=1 itself)

Each fact is printed as `name: value` (JSON value).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np

TINY = dict(vocab_size=32, embedding_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=20, max_position_embeddings=16, hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0)


def fact(name, value):
    print(f"{name}: {json.dumps(value, default=str)}", flush=True)


def attempt(fn):
    try:
        return ("ok", fn())
    except Exception as e:  # we record what the port raises
        return ("raises", f"{type(e).__name__}: {str(e)[:160]}")


def pt_model(cls_name, **cfg):
    import torch
    import transformers as t
    torch.manual_seed(0)
    return getattr(t, cls_name)(t.ElectraConfig(**{**TINY, **cfg})).eval()


def port(prefix, pt, **kw):
    import transformers as t
    d = tempfile.mkdtemp()
    pt.save_pretrained(d)
    return getattr(t, prefix + type(pt).__name__).from_pretrained(d, from_pt=True, **kw)


def pt_run(m, **inputs):
    import torch
    with torch.no_grad():
        return m(**{k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in inputs.items()})


IDS = np.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])


def maxdiff(a, b):
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def probe_pt_flax():
    import jax
    pt = pt_model("ElectraModel")
    fx = port("Flax", pt)
    ref = pt_run(pt, input_ids=IDS).last_hidden_state.numpy()
    ref_tt0 = pt_run(pt, input_ids=IDS, token_type_ids=np.zeros_like(IDS)).last_hidden_state.numpy()
    out = np.asarray(fx(IDS).last_hidden_state)
    fact("flax.token_type_ids_default.maxdiff_vs_pt_default", maxdiff(out, ref))
    fact("flax.token_type_ids_default.maxdiff_vs_pt_ones", maxdiff(out, pt_run(pt, input_ids=IDS, token_type_ids=np.ones_like(IDS)).last_hidden_state.numpy()))
    fact("pt.token_type_ids_default.maxdiff_vs_zeros", maxdiff(ref, ref_tt0))
    # fully masked row: -10000 vs dtype min
    zero_mask = MASK.copy(); zero_mask[1] = 0
    a = pt_run(pt, input_ids=IDS, attention_mask=zero_mask, token_type_ids=np.zeros_like(IDS)).last_hidden_state.numpy()
    b = np.asarray(fx(IDS, attention_mask=zero_mask, token_type_ids=np.zeros_like(IDS)).last_hidden_state)
    fact("flax.fully_masked_row.maxdiff_vs_pt", maxdiff(a[1], b[1]))
    # head mask: fractional values, (heads,) shape
    hm = np.array([[0.5, 1.0]], dtype=np.float32)
    a = pt_run(pt, input_ids=IDS, head_mask=hm, token_type_ids=np.zeros_like(IDS)).last_hidden_state.numpy()
    b = np.asarray(fx(IDS, head_mask=hm, token_type_ids=np.zeros_like(IDS)).last_hidden_state)
    fact("flax.fractional_head_mask.maxdiff_vs_pt", maxdiff(a, b))
    fact("flax.head_mask_1d", attempt(lambda: np.asarray(fx(IDS, head_mask=np.array([1.0, 0.0])).last_hidden_state).shape))
    fact("pt.head_mask_1d", attempt(lambda: tuple(pt_run(pt, input_ids=IDS, head_mask=np.array([1.0, 0.0], dtype=np.float32)).last_hidden_state.shape)))
    # bad ids / long sequences
    bad = IDS.copy(); bad[0, 0] = 40
    fact("pt.ids_out_of_range", attempt(lambda: pt_run(pt, input_ids=bad).last_hidden_state.shape))
    fact("flax.ids_out_of_range", attempt(lambda: np.asarray(fx(bad).last_hidden_state).shape))
    long = np.ones((1, 20), dtype=np.int64)
    fact("pt.too_long", attempt(lambda: tuple(pt_run(pt, input_ids=long).last_hidden_state.shape)))
    fact("flax.too_long", attempt(lambda: np.asarray(fx(long).last_hidden_state).shape))
    fact("flax.float_ids", attempt(lambda: np.asarray(fx(IDS.astype(np.float32) + 0.7).last_hidden_state).shape))
    # relative positions
    for kind in ("relative_key", "relative_key_query"):
        ptr = pt_model("ElectraModel", position_embedding_type=kind)
        fxr = port("Flax", ptr)
        leaves = jax.tree_util.tree_leaves_with_path(fxr.params)
        fact(f"flax.{kind}.has_distance_embedding", any("distance" in jax.tree_util.keystr(p) for p, _ in leaves))
        fact(f"flax.{kind}.maxdiff_vs_pt", maxdiff(pt_run(ptr, input_ids=IDS, token_type_ids=np.zeros_like(IDS)).last_hidden_state.numpy(),
                                                   fxr(IDS, token_type_ids=np.zeros_like(IDS)).last_hidden_state))
    # sequence summary options in multiple choice
    mc_ids = np.stack([IDS, IDS[::-1]])  # (2, 2, 6)
    for opt in ({"summary_type": "last"}, {"summary_type": "mean"}, {"summary_use_proj": False},
                {"summary_activation": None}):
        ptm = pt_model("ElectraForMultipleChoice", **opt)
        fxm = port("Flax", ptm)
        fact(f"flax.multiple_choice.{list(opt)[0]}={list(opt.values())[0]}.maxdiff_vs_pt",
             maxdiff(pt_run(ptm, input_ids=mc_ids, token_type_ids=np.zeros_like(mc_ids)).logits.numpy(),
                     fxm(mc_ids, token_type_ids=np.zeros_like(mc_ids)).logits))
    # generator activation with hidden_act != gelu
    ptg = pt_model("ElectraForMaskedLM", hidden_act="relu")
    fxg = port("Flax", ptg)
    fact("flax.generator_act_relu.maxdiff_vs_pt", maxdiff(pt_run(ptg, input_ids=IDS, token_type_ids=np.zeros_like(IDS)).logits.numpy(),
                                                          fxg(IDS, token_type_ids=np.zeros_like(IDS)).logits))
    # untied generator head
    ptu = pt_model("ElectraForMaskedLM", tie_word_embeddings=False)
    fxu = port("Flax", ptu)
    fact("flax.untied_lm_head.maxdiff_vs_pt", maxdiff(pt_run(ptu, input_ids=IDS, token_type_ids=np.zeros_like(IDS)).logits.numpy(),
                                                      fxu(IDS, token_type_ids=np.zeros_like(IDS)).logits))
    # causal LM: cache without add_cross_attention; incremental == full
    ptc = pt_model("ElectraForCausalLM", is_decoder=True)
    fxc = port("Flax", ptc)
    ids = IDS[:1]
    full = np.asarray(fxc(ids, token_type_ids=np.zeros_like(ids)).logits)
    ptfull = pt_run(ptc, input_ids=ids, token_type_ids=np.zeros_like(ids)).logits.numpy()
    fact("flax.causal_lm.full_maxdiff_vs_pt", maxdiff(full, ptfull))
    fact("flax.causal_lm.init_cache", attempt(lambda: sorted(fxc.init_cache(1, 6).keys())))
    fxx = port("Flax", pt_model("ElectraForCausalLM", is_decoder=True, add_cross_attention=True))
    fact("flax.causal_lm_cross.init_cache", attempt(lambda: sorted(fxx.init_cache(1, 6).keys())))
    enc = np.zeros((1, 3, 16), np.float32)

    def chunked():
        cache = fxx.init_cache(1, 6)
        full = np.asarray(fxx(ids, token_type_ids=np.zeros_like(ids), encoder_hidden_states=enc).logits)
        o1 = fxx(ids[:, :4], attention_mask=np.ones((1, 6), "i4"), token_type_ids=np.zeros((1, 4), "i4"),
                 position_ids=np.arange(4)[None], encoder_hidden_states=enc, past_key_values=cache)
        o2 = fxx(ids[:, 4:], attention_mask=np.ones((1, 6), "i4"), token_type_ids=np.zeros((1, 2), "i4"),
                 position_ids=np.arange(4, 6)[None], encoder_hidden_states=enc, past_key_values=o1.past_key_values)
        return maxdiff(np.concatenate([o1.logits, o2.logits], 1), full)
    fact("flax.causal_lm_cross.chunked_vs_full_maxdiff", attempt(chunked))
    fxd = port("Flax", pt_model("ElectraModel", hidden_dropout_prob=0.1))
    fact("flax.train_without_rng_dropout_0.1", attempt(lambda: np.asarray(fxd(IDS, train=True).last_hidden_state).shape))
    # PT loss shapes and QA clamping
    ptq = pt_model("ElectraForQuestionAnswering")
    out = pt_run(ptq, input_ids=IDS, start_positions=np.array([1, 40]), end_positions=np.array([2, 40]))
    fact("pt.qa_loss_shape", list(out.loss.shape))
    import torch
    ce = torch.nn.CrossEntropyLoss()
    s, e = out.start_logits, out.end_logits
    manual = (ce(s[:1], torch.tensor([1])) + ce(e[:1], torch.tensor([2]))) / 2
    fact("pt.qa_out_of_range_ignored.maxdiff", float((manual - out.loss).abs()))
    ptp = pt_model("ElectraForPreTraining")
    fact("pt.pretraining_loss_shape", list(pt_run(ptp, input_ids=IDS, attention_mask=MASK, labels=np.zeros_like(IDS)).loss.shape))
    pts = pt_model("ElectraForSequenceClassification", num_labels=3)
    fact("pt.seqcls_float_labels_infers", pts.config.problem_type)
    o = pt_run(pts, input_ids=IDS, labels=np.array([[1.0, 0, 1], [0, 1, 0]], dtype=np.float32))
    fact("pt.seqcls_multilabel_problem_type", pts.config.problem_type)


def probe_tf():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tensorflow as tf
    pt = pt_model("ElectraModel")
    tfm = port("TF", pt)
    ref = pt_run(pt, input_ids=IDS).last_hidden_state.numpy()
    fact("tf.token_type_ids_default.maxdiff_vs_pt", maxdiff(tfm(IDS).last_hidden_state, ref))
    zero_mask = MASK.copy(); zero_mask[1] = 0
    a = pt_run(pt, input_ids=IDS, attention_mask=zero_mask).last_hidden_state.numpy()
    fact("tf.fully_masked_row.maxdiff_vs_pt", maxdiff(a[1], tfm(IDS, attention_mask=zero_mask).last_hidden_state[1]))
    fact("tf.head_mask", attempt(lambda: tfm(IDS, head_mask=np.ones((1, 2), np.float32)).last_hidden_state.shape))
    bad = IDS.copy(); bad[0, 0] = 40
    fact("tf.ids_out_of_range", attempt(lambda: tfm(bad).last_hidden_state.shape))
    fact("tf.too_long", attempt(lambda: tuple(tfm(np.ones((1, 20), np.int64)).last_hidden_state.shape)))
    fact("tf.float_ids", attempt(lambda: tuple(tfm(IDS.astype(np.float32)).last_hidden_state.shape)))
    fact("tf.inputs_embeds_kwarg_only", attempt(lambda: tuple(tfm(inputs_embeds=np.zeros((2, 6, 8), np.float32)).last_hidden_state.shape)))
    fact("tf.inputs_embeds_width_E", attempt(lambda: tuple(tfm({"inputs_embeds": np.zeros((2, 6, 8), np.float32)}).last_hidden_state.shape)))
    fact("tf.inputs_embeds_width_H", attempt(lambda: tuple(tfm({"inputs_embeds": np.zeros((2, 6, 16), np.float32)}).last_hidden_state.shape)))
    fact("tf.both_ids_and_embeds", attempt(lambda: tfm(IDS, inputs_embeds=np.zeros((2, 6, 8), np.float32))))
    for kind in ("relative_key",):
        ptr = pt_model("ElectraModel", position_embedding_type=kind)
        tfr = port("TF", ptr)
        fact(f"tf.{kind}.has_distance_embedding", any("distance" in w.name for w in tfr.weights))
        fact(f"tf.{kind}.maxdiff_vs_pt", maxdiff(pt_run(ptr, input_ids=IDS).last_hidden_state.numpy(), tfr(IDS).last_hidden_state))
    mc_ids = np.stack([IDS, IDS[::-1]])
    for opt in ({"summary_type": "last"}, {"summary_type": "mean"}):
        ptm = pt_model("ElectraForMultipleChoice", **opt)
        tfmc = port("TF", ptm)
        fact(f"tf.multiple_choice.{list(opt)[0]}={list(opt.values())[0]}.maxdiff_vs_pt",
             maxdiff(pt_run(ptm, input_ids=mc_ids).logits.numpy(), tfmc(mc_ids).logits))
    ptg = pt_model("ElectraForMaskedLM", hidden_act="relu")
    fact("tf.generator_act_relu.maxdiff_vs_pt", maxdiff(pt_run(ptg, input_ids=IDS).logits.numpy(), port("TF", ptg)(IDS).logits))
    ptu = pt_model("ElectraForMaskedLM", tie_word_embeddings=False)
    fact("tf.untied_lm_head.maxdiff_vs_pt", attempt(lambda: maxdiff(pt_run(ptu, input_ids=IDS).logits.numpy(), port("TF", ptu)(IDS).logits)))
    # losses
    lab = IDS.copy(); lab[1, 4:] = -100
    fact("tf.masked_lm_loss_shape", attempt(lambda: port("TF", ptg)(IDS, labels=lab).loss.shape.as_list()))
    fact("tf.token_cls_loss_shape", attempt(lambda: port("TF", pt_model("ElectraForTokenClassification", num_labels=3))(IDS, labels=np.zeros_like(IDS)).loss.shape.as_list()))
    fact("tf.seq_cls_loss_shape", attempt(lambda: port("TF", pt_model("ElectraForSequenceClassification", num_labels=3))(IDS, labels=np.array([0, 2])).loss.shape.as_list()))
    fact("tf.seq_cls_regression_loss_shape", attempt(lambda: port("TF", pt_model("ElectraForSequenceClassification", num_labels=1))(IDS, labels=np.array([0.5, 2.0], np.float32)).loss.shape.as_list()))
    fact("tf.seq_cls_multilabel", attempt(lambda: port("TF", pt_model("ElectraForSequenceClassification", num_labels=3, problem_type="multi_label_classification"))(IDS, labels=np.array([[1.0, 0, 1], [0, 1, 0]], np.float32)).loss.shape.as_list()))
    fact("tf.mc_loss_shape", attempt(lambda: port("TF", pt_model("ElectraForMultipleChoice"))(mc_ids, labels=np.array([0, 1])).loss.shape.as_list()))
    fact("tf.seq_cls_regression_tf_labels_loss_shape", attempt(lambda: port("TF", pt_model("ElectraForSequenceClassification", num_labels=1))(IDS, labels=tf.constant([0.5, 2.0])).loss.shape.as_list()))
    ptq = pt_model("ElectraForQuestionAnswering")
    tfq = port("TF", ptq)
    o = tfq(IDS, start_positions=np.array([1, 3]), end_positions=np.array([2, 4]))
    fact("tf.qa_loss_shape", o.loss.shape.as_list())
    fact("tf.qa_out_of_range", attempt(lambda: np.asarray(tfq(IDS, start_positions=np.array([1, 40]), end_positions=np.array([2, 40])).loss).tolist()))
    ptp = pt_model("ElectraForPreTraining")
    fact("tf.pretraining_labels", attempt(lambda: port("TF", ptp)(IDS, labels=np.zeros_like(IDS)).loss))
    # input formats
    fact("tf.list_input", attempt(lambda: tuple(tfm([IDS, MASK]).last_hidden_state.shape)))
    fact("tf.dict_input", attempt(lambda: tuple(tfm({"input_ids": IDS, "attention_mask": MASK}).last_hidden_state.shape)))
    fact("tf.int32_ids", attempt(lambda: tuple(tfm(tf.constant(IDS, tf.int32)).last_hidden_state.shape)))


if __name__ == "__main__":
    {"pt_flax": probe_pt_flax, "tf": probe_tf}[sys.argv[1]]()
