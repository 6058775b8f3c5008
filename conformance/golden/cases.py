"""The golden cases: small configs, which reference classes run on each, and how their inputs are drawn.

Numpy only (no torch): ``generate.py`` turns these into files with the PyTorch reference. Each config
is a set of overrides of ElectraConfig's defaults (the defaults themselves come from the reference's
config class, never from here). Input drawing uses numpy's PCG64 generator, whose streams are stable
across platforms and numpy versions, so the files regenerate byte for byte.

Shape keys: B batch, C choices, S sequence, L layers, N heads, K num_labels, V vocab.
"""
from __future__ import annotations

import zlib

import numpy as np

ALL_HEADS = (
    "ElectraModel", "ElectraForPreTraining", "ElectraForMaskedLM", "ElectraForSequenceClassification",
    "ElectraForMultipleChoice", "ElectraForTokenClassification", "ElectraForQuestionAnswering",
)

TINY = dict(vocab_size=40, embedding_size=16, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=24, max_position_embeddings=16, type_vocab_size=2)

# Each case: id, config overrides, reference classes, input options; the question-answering head needs
# num_labels == 2 (start and end logits), so its config keeps the default where a case changes it
# (``config_for``).
#   padding: per batch row, "none" | "right" | "left" | "single" (one visible token)
#   flags: extra call flags per class (the decoder's bare model is asked for its key/value cache)
#   position_ids: pass explicit (shuffled-offset) position ids;  head_mask: None | "heads" (N,) | "layers" (L, N)
#   token_types: False omits token_type_ids (ids and mask only: what the barest encoder takes)
#   encoder: cross-attention inputs, {"seq": Se, "padding": per row as above} -> encoder_hidden_states (B, Se, H)
#            and encoder_attention_mask (B, Se)
#   cache_prefix: a cached call (no labels): the golden outputs are those of the call on positions cache_prefix..
#            (B, S - cache_prefix, ...) with the key/value cache of the earlier positions and the attention mask
#            over all positions (generate.py builds that cache one token per call)
CASES = (
    dict(id="abs_gelu", config=dict(TINY),
         classes=ALL_HEADS, batch=3, seq=8, choices=3,
         padding=("none", "right", "left"), position_ids=True, head_mask=None),
    dict(id="proj_relkq_gelu_new_untied",
         config=dict(TINY, embedding_size=8, num_hidden_layers=1, num_attention_heads=4, hidden_act="gelu_new",
                     position_embedding_type="relative_key_query", tie_word_embeddings=False, num_labels=3,
                     summary_type="mean", summary_use_proj=False, summary_activation=None, type_vocab_size=3),
         classes=ALL_HEADS, batch=3, seq=7, choices=2,
         padding=("right", "none", "single"), position_ids=False, head_mask="layers"),
    dict(id="relk_relu_regression",
         config=dict(TINY, hidden_size=12, embedding_size=12, num_attention_heads=3, hidden_act="relu",
                     position_embedding_type="relative_key", classifier_dropout=0.3, num_labels=1,
                     summary_type="last", summary_activation="tanh"),
         classes=("ElectraModel", "ElectraForPreTraining", "ElectraForSequenceClassification",
                  "ElectraForMultipleChoice", "ElectraForTokenClassification"),
         batch=2, seq=9, choices=2, padding=("left", "right"), position_ids=False, head_mask="heads"),
    dict(id="multilabel_cls_index",
         config=dict(TINY, num_hidden_layers=1, hidden_act="silu", num_labels=3,
                     problem_type="multi_label_classification", summary_type="cls_index",
                     summary_activation="tanh"),
         classes=("ElectraForSequenceClassification", "ElectraForMultipleChoice"),
         batch=2, seq=6, choices=3, padding=("none", "right"), position_ids=True, head_mask=None),
    # the minimal core a plain encoder port offers: absolute positions with position_ids omitted (0..S-1),
    # no head_mask, no decoder, every padding side; one activation per case, and beyond it one feature:
    # the embedding projection (E != H), a large layer_norm_eps, nothing
    dict(id="core_gelu_proj", config=dict(TINY, embedding_size=8),
         classes=ALL_HEADS, batch=3, seq=8, choices=2,
         padding=("none", "right", "left"), position_ids=False, head_mask=None),
    dict(id="core_gelu_new_eps", config=dict(TINY, hidden_act="gelu_new", layer_norm_eps=1e-3),
         classes=ALL_HEADS, batch=3, seq=7, choices=2,
         padding=("left", "none", "right"), position_ids=False, head_mask=None),
    dict(id="core_relu", config=dict(TINY, hidden_act="relu"),
         classes=ALL_HEADS, batch=2, seq=6, choices=2,
         padding=("right", "left"), position_ids=False, head_mask=None),
    dict(id="core_ids_mask", config=dict(TINY, embedding_size=12),
         classes=ALL_HEADS, batch=3, seq=6, choices=2,
         padding=("none", "left", "right"), position_ids=False, head_mask=None, token_types=False),
    dict(id="decoder",
         config=dict(TINY, is_decoder=True, use_cache=True),
         classes=("ElectraModel", "ElectraForCausalLM"), flags={"ElectraModel": {"use_cache": True}},
         batch=3, seq=8, choices=1, padding=("none", "right", "right"), position_ids=False, head_mask=None),
    dict(id="cross_attention",
         config=dict(TINY, is_decoder=True, add_cross_attention=True, use_cache=False),
         classes=("ElectraModel", "ElectraForCausalLM"),
         batch=3, seq=8, choices=1, padding=("none", "right", "right"), position_ids=False, head_mask=None,
         encoder=dict(seq=6, padding=("right", "none", "left"))),
    # features in combination, where one changes where the other applies: a per-layer head mask over three
    # layers (distinct rows: one masked head, one scaled head, in different layers) on every head; and the
    # same in a decoder with cross-attention (the head mask scales the cross-attention heads too) and
    # explicit offset position ids
    dict(id="layer_head_mask", config=dict(TINY, num_hidden_layers=3),
         classes=ALL_HEADS, batch=3, seq=7, choices=2,
         padding=("right", "left", "none"), position_ids=False, head_mask="layers"),
    dict(id="cross_attention_head_mask",
         config=dict(TINY, is_decoder=True, add_cross_attention=True, use_cache=False, num_hidden_layers=3),
         classes=("ElectraModel", "ElectraForCausalLM"),
         batch=2, seq=7, choices=1, padding=("left", "right"), position_ids=True, head_mask="layers",
         encoder=dict(seq=5, padding=("none", "right"))),
    # cached calls, one feature beside the cache each: default positions that continue after the cache (a chunk
    # of three tokens, padding on both sides); relative distances after a cache (one token: the reference's rule
    # for chunks differs, decision.relative_positions_with_cache); cross-attention after a cache
    dict(id="decoder_cache", config=dict(TINY, is_decoder=True, use_cache=True),
         classes=("ElectraModel", "ElectraForCausalLM"), flags={"ElectraModel": {"use_cache": True}},
         batch=3, seq=8, choices=1, padding=("none", "left", "right"), position_ids=False, head_mask=None,
         cache_prefix=5),
    dict(id="relkq_cache", config=dict(TINY, is_decoder=True, use_cache=True,
                                       position_embedding_type="relative_key_query"),
         classes=("ElectraModel", "ElectraForCausalLM"), flags={"ElectraModel": {"use_cache": True}},
         batch=2, seq=7, choices=1, padding=("none", "left"), position_ids=False, head_mask=None, cache_prefix=6),
    dict(id="cross_attention_cache", config=dict(TINY, is_decoder=True, add_cross_attention=True, use_cache=True),
         classes=("ElectraModel", "ElectraForCausalLM"), flags={"ElectraModel": {"use_cache": True}},
         batch=2, seq=6, choices=1, padding=("none", "right"), position_ids=False, head_mask=None,
         encoder=dict(seq=5, padding=("right", "none")), cache_prefix=3),
)

#: call flags every golden output was produced with (``flags_for`` adds a case's per-class extras)
FLAGS = {"output_hidden_states": True, "output_attentions": True, "return_dict": True}


def flags_for(case: dict, class_name: str) -> dict:
    return {**FLAGS, **case.get("flags", {}).get(class_name, {})}


def config_for(case: dict, class_name: str) -> dict:
    """Config overrides of one reference class on a case."""
    config = dict(case["config"])
    if class_name == "ElectraForQuestionAnswering":
        config.pop("num_labels", None)
    return config


def case_seed(*parts: str) -> int:
    """A stable 32-bit seed from names (crc32; Python's hash() is salted per process)."""
    return zlib.crc32("/".join(parts).encode())


def _mask(padding: tuple[str, ...], seq: int) -> np.ndarray:
    """attention_mask (B, S): 1 = visible. right/left pad a third of the row; single keeps one token."""
    rows = []
    pad = max(1, seq // 3)
    for kind in padding:
        row = np.ones(seq, np.int64)
        if kind == "right":
            row[seq - pad:] = 0
        elif kind == "left":
            row[:pad] = 0
        elif kind == "single":
            row[1:] = 0
        rows.append(row)
    return np.stack(rows)


def draw_inputs(case: dict, class_name: str) -> dict[str, np.ndarray]:
    """Call inputs (labels included) of one reference class on one case, as int64/float32 numpy arrays."""
    rng = np.random.default_rng(case_seed(case["id"], class_name))
    cfg = config_for(case, class_name)
    vocab, types, layers = cfg["vocab_size"], cfg["type_vocab_size"], cfg["num_hidden_layers"]
    heads, labels_k, pad_id = cfg["num_attention_heads"], cfg.get("num_labels", 2), 0
    seq = case["seq"]
    mc = class_name == "ElectraForMultipleChoice"
    rows = case["batch"] * (case["choices"] if mc else 1)
    padding = tuple(case["padding"][i % len(case["padding"])] for i in range(rows))
    mask = _mask(padding, seq)                                              # (B*, S)
    ids = rng.integers(1, vocab, size=(rows, seq), dtype=np.int64)
    ids[0, 0], ids[0, -1] = vocab - 1, 1                                   # boundary ids
    ids = np.where(mask == 1, ids, pad_id)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if case.get("token_types", True):
        inputs["token_type_ids"] = rng.integers(0, types, size=(rows, seq), dtype=np.int64)
    if case["position_ids"]:
        offsets = rng.integers(0, cfg["max_position_embeddings"] - seq + 1, size=(rows, 1))
        inputs["position_ids"] = (np.arange(seq)[None, :] + offsets).astype(np.int64)
    if case["head_mask"] is not None:
        shape = (heads,) if case["head_mask"] == "heads" else (layers, heads)
        head_mask = np.ones(shape, np.float32)
        head_mask.reshape(-1)[1] = 0.0                                      # one masked head
        head_mask.reshape(-1)[-1] = 0.5                                     # and one scaled head
        inputs["head_mask"] = head_mask
    if "encoder" in case:
        inputs.update(_encoder_inputs(rng, case["encoder"], rows, cfg["hidden_size"]))
    if mc:
        inputs = {k: (v.reshape(case["batch"], case["choices"], seq) if k != "head_mask" else v)
                  for k, v in inputs.items()}
    if "cache_prefix" not in case:
        inputs.update(_labels(rng, class_name, case, mask, ids, labels_k))
    return inputs


def _encoder_inputs(rng, encoder: dict, rows: int, hidden: int) -> dict[str, np.ndarray]:
    """encoder_hidden_states (B, Se, H) standard normal and encoder_attention_mask (B, Se), Se = encoder["seq"]."""
    seq = encoder["seq"]
    padding = tuple(encoder["padding"][i % len(encoder["padding"])] for i in range(rows))
    states = rng.standard_normal((rows, seq, hidden)).astype(np.float32)
    return {"encoder_hidden_states": states, "encoder_attention_mask": _mask(padding, seq)}


def _labels(rng, class_name: str, case: dict, mask: np.ndarray, ids: np.ndarray, k: int) -> dict:
    batch, seq = case["batch"], case["seq"]
    if class_name == "ElectraForPreTraining":
        return {"labels": rng.integers(0, 2, size=mask.shape, dtype=np.int64)}
    if class_name == "ElectraForMaskedLM":
        masked = rng.random(mask.shape) < 0.5
        masked[0, 0] = True
        return {"labels": np.where(masked & (mask == 1), rng.integers(0, ids.max() + 1, size=mask.shape), -100)}
    if class_name == "ElectraForCausalLM":
        return {"labels": np.where(mask == 1, ids, -100)}
    if class_name == "ElectraForTokenClassification":
        return {"labels": np.where(mask == 1, rng.integers(0, k, size=mask.shape, dtype=np.int64), -100)}
    if class_name == "ElectraForSequenceClassification":
        problem = case["config"].get("problem_type")
        if k == 1 or problem == "regression":
            return {"labels": rng.normal(size=(batch,) if k == 1 else (batch, k)).astype(np.float32)}
        if problem == "multi_label_classification":
            return {"labels": rng.integers(0, 2, size=(batch, k)).astype(np.float32)}
        return {"labels": rng.integers(0, k, size=(batch,), dtype=np.int64)}
    if class_name == "ElectraForMultipleChoice":
        return {"labels": rng.integers(0, case["choices"], size=(batch,), dtype=np.int64)}
    if class_name == "ElectraForQuestionAnswering":
        start = rng.integers(0, seq, size=(batch,), dtype=np.int64)
        end = np.minimum(start + rng.integers(0, 3, size=(batch,)), seq - 1)
        end[-1] = seq + 3                                                   # outside: clamped and ignored
        return {"start_positions": start, "end_positions": end.astype(np.int64)}
    return {}
