"""NumPy recomputations the conformance tests compare implementations against.

Everything here is written from the definitions in ``spec/data/losses.yaml`` (which rule, which
reduction, which ignore index) and from textbook formulas; nothing here is copied from an
implementation under test. All math runs in float64.

Shape keys: B batch, S sequence, C choices, K labels, V vocab.
"""
from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax along ``axis`` (float64)."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=axis, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.exp(log_softmax(logits, axis))


def cross_entropy_terms(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example -log p(label): logits (..., K), labels (...) int -> (...). Labels outside
    [0, K) give 0 (callers mask them out)."""
    logp = log_softmax(logits)
    k = logp.shape[-1]
    labels = np.asarray(labels).astype(np.int64)
    safe = np.clip(labels, 0, k - 1)
    picked = np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    return np.where((labels >= 0) & (labels < k), -picked, 0.0)


def bce_with_logits_terms(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Element-wise binary cross-entropy of sigmoid(logits) against targets in [0, 1]."""
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def reduce(terms: np.ndarray, weights: np.ndarray | None, reduction: str, axis=None) -> np.ndarray:
    """Reduce per-element loss ``terms`` with 0/1 ``weights`` (None = all count).

    reduction: "mean" (weighted mean: sum(t*w)/sum(w)), "sum", or "none" (masked terms returned).
    ``axis`` None reduces everything to a scalar; an int or tuple keeps the other axes.
    """
    t = np.asarray(terms, dtype=np.float64)
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64)
    if reduction == "none":
        return t * w
    total = (t * w).sum(axis=axis)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / w.sum(axis=axis)
    raise ValueError(f"unknown reduction {reduction!r}; expected mean, sum or none")


def token_cross_entropy(logits: np.ndarray, labels: np.ndarray, *, ignore_index: int | None,
                        reduction: str = "mean") -> np.ndarray:
    """Cross-entropy over tokens: logits (B,S,K) or (B,K), labels (B,S) or (B,); labels equal to
    ``ignore_index`` do not count."""
    labels = np.asarray(labels)
    terms = cross_entropy_terms(logits, labels)
    weights = None if ignore_index is None else (labels != ignore_index)
    return reduce(terms, weights, reduction)


def causal_lm_loss(logits: np.ndarray, labels: np.ndarray, *, ignore_index: int | None,
                   reduction: str = "mean") -> np.ndarray:
    """Next-token cross-entropy: position t's logits (B,S,V) predict labels[:, t+1] (B,S)."""
    return token_cross_entropy(np.asarray(logits)[:, :-1], np.asarray(labels)[:, 1:],
                               ignore_index=ignore_index, reduction=reduction)


def discriminator_loss(logits: np.ndarray, labels: np.ndarray, attention_mask: np.ndarray | None,
                       *, reduction: str = "mean") -> np.ndarray:
    """Binary cross-entropy of logits (B,S) against labels (B,S) (1 = replaced token), counting only
    positions where attention_mask (B,S) is 1 (all positions when it is None)."""
    terms = bce_with_logits_terms(logits, labels)
    weights = None if attention_mask is None else (np.asarray(attention_mask) == 1)
    return reduce(terms, weights, reduction)


def question_answering_loss(start_logits: np.ndarray, end_logits: np.ndarray, start_positions: np.ndarray,
                            end_positions: np.ndarray, *, clamp: bool, ignored_when_clamped: bool,
                            reduction: str = "mean") -> np.ndarray:
    """(CE(start) + CE(end)) / 2 over the batch: logits (B,S), positions (B,).

    clamp: positions are clipped to [0, S]; ignored_when_clamped: a position equal to S (outside the
    sequence) does not count."""
    s = np.asarray(start_logits).shape[-1]
    parts = []
    for logits, pos in ((start_logits, start_positions), (end_logits, end_positions)):
        pos = np.asarray(pos).astype(np.int64).reshape(-1)
        if clamp:
            pos = np.clip(pos, 0, s)
        terms = cross_entropy_terms(logits, pos)
        weights = (pos != s) if ignored_when_clamped else None
        parts.append(reduce(terms, weights, reduction))
    return (parts[0] + parts[1]) / 2


def regression_loss(logits: np.ndarray, labels: np.ndarray, *, reduction: str = "mean") -> np.ndarray:
    """Mean squared error between logits (B,1) or (B,K) and float labels of the same size."""
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64).reshape(x.shape)
    return reduce((x - y) ** 2, None, reduction)


def multi_label_loss(logits: np.ndarray, labels: np.ndarray, *, reduction: str = "mean") -> np.ndarray:
    """Binary cross-entropy per label: logits (B,K), labels (B,K) in {0,1}."""
    return reduce(bce_with_logits_terms(logits, labels), None, reduction)


def masked_mean(x: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """Mean of ``x`` over ``axis`` counting only positions where mask is nonzero."""
    m = np.asarray(mask, dtype=np.float64)
    while m.ndim < np.ndim(x):
        m = m[..., None]
    return (np.asarray(x, np.float64) * m).sum(axis) / m.sum(axis)


def _erf(x: np.ndarray) -> np.ndarray:
    import math

    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


#: activation functions by the names config.yaml allows (hidden_act, summary_activation)
ACTIVATIONS = {
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0))),
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "quick_gelu": lambda x: x * _sigmoid(1.702 * x),
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "tanh": np.tanh,
    "sigmoid": _sigmoid,
    "linear": lambda x: x,
    None: lambda x: x,
}


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """x (..., in) @ weight (out, in)^T + bias (out,): PyTorch layout, as canonical weights are."""
    y = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T
    return y if bias is None else y + np.asarray(bias, np.float64)


def sequence_summary(hidden: np.ndarray, summary_type: str) -> np.ndarray:
    """hidden (B, S, H) -> (B, H): first token, last token, mean over S, or the token at cls_index
    (which defaults to the last token when no cls_index is passed)."""
    h = np.asarray(hidden, np.float64)
    if summary_type == "first":
        return h[:, 0]
    if summary_type in ("last", "cls_index"):
        return h[:, -1]
    if summary_type == "mean":
        return h.mean(axis=1)
    raise ValueError(f"unknown summary_type {summary_type!r}")


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias (biased variance)."""
    x = np.asarray(x, np.float64)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * np.asarray(weight, np.float64) + np.asarray(bias, np.float64)


def electra_embeddings(weights: dict, prefix: str, config: dict, input_ids: np.ndarray | None,
                       token_type_ids: np.ndarray, position_ids: np.ndarray, *, eps: float | None = None,
                       inputs_embeds: np.ndarray | None = None) -> np.ndarray:
    """The encoder input (hidden_states[0]) in inference, from canonical weights: word (or the given
    inputs_embeds (B, S, E)) + token type (+ position when position_embedding_type is absolute)
    embeddings, LayerNorm, then the E->H projection when embedding_size != hidden_size. ids (B, S) -> (B, S, H)."""
    w = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    x = (np.asarray(w["embeddings.word_embeddings.weight"], np.float64)[input_ids] if inputs_embeds is None
         else np.asarray(inputs_embeds, np.float64))
    x = x + np.asarray(w["embeddings.token_type_embeddings.weight"], np.float64)[token_type_ids]
    if config.get("position_embedding_type", "absolute") == "absolute":
        x = x + np.asarray(w["embeddings.position_embeddings.weight"], np.float64)[position_ids]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                   config["layer_norm_eps"] if eps is None else eps)
    if config["embedding_size"] != config["hidden_size"]:
        x = linear(x, w["embeddings_project.weight"], w["embeddings_project.bias"])
    return x
