"""NumPy recomputation of the ELECTRA blocks from spec/data/semantics (the ``architecture.*`` clauses),
in float64 and inference mode, from canonical (PyTorch-layout) weights. Used by the architecture
tests to recompute one encoder layer and each head from the hidden states an implementation returns,
and the whole model (``forward``) from its inputs alone, for implementations that return no hidden states.

Shape keys: B batch, S sequence, Sk keys, H hidden, N heads, D head_dim, I intermediate, E embedding,
V vocab, K labels, P max positions.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from conformance.numpy_ref import ACTIVATIONS, electra_embeddings, layer_norm, linear, softmax


def _sub(weights: Mapping[str, np.ndarray], prefix: str) -> dict:
    return {k[len(prefix):]: np.asarray(v, np.float64) for k, v in weights.items() if k.startswith(prefix)}


def additive_mask(attention_mask: np.ndarray, causal: bool) -> np.ndarray:
    """(B, S) 0/1 -> (B, 1, S, S) 0 / -inf-like bias (architecture.attention_mask); causal also hides
    later keys."""
    m = np.asarray(attention_mask, np.float64)[:, None, None, :]
    s = m.shape[-1]
    if causal:
        m = m * np.tril(np.ones((s, s)))[None, None]
    return (1.0 - m) * np.finfo(np.float32).min


def relative_scores(q: np.ndarray, k: np.ndarray, table: np.ndarray, kind: str) -> np.ndarray:
    """The relative-position terms (architecture.relative_positions): q, k (B,N,S,D), table (2P-1, D)."""
    s = q.shape[2]
    p = (table.shape[0] + 1) // 2
    distance = np.arange(s)[:, None] - np.arange(s)[None, :] + p - 1  # (S, S)
    r = table[distance]  # (S, S, D)
    out = np.einsum("bnqd,qkd->bnqk", q, r)
    if kind == "relative_key_query":
        out = out + np.einsum("bnkd,qkd->bnqk", k, r)
    return out


def encoder_layer(h: np.ndarray, w: Mapping[str, np.ndarray], config: Mapping, bias: np.ndarray,
                  head_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One post-LayerNorm layer (architecture.self_attention, attention_output, feed_forward):
    h (B,S,H), w = the layer's weights without the 'encoder.layer.i.' prefix, bias (B,1,S,S).
    Returns (h' (B,S,H), attention probabilities (B,N,S,S))."""
    b, s, hidden = h.shape
    n = config["num_attention_heads"]
    d = hidden // n

    def heads(x):
        return x.reshape(b, s, n, d).transpose(0, 2, 1, 3)

    q = heads(linear(h, w["attention.self.query.weight"], w["attention.self.query.bias"]))
    k = heads(linear(h, w["attention.self.key.weight"], w["attention.self.key.bias"]))
    v = heads(linear(h, w["attention.self.value.weight"], w["attention.self.value.bias"]))
    scores = q @ k.transpose(0, 1, 3, 2)
    kind = config.get("position_embedding_type", "absolute")
    if kind != "absolute":
        scores = scores + relative_scores(q, k, w["attention.self.distance_embedding.weight"], kind)
    probs = softmax(scores / np.sqrt(d) + bias)
    if head_mask is not None:
        probs = probs * np.asarray(head_mask, np.float64)[None, :, None, None]
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, hidden)
    eps = config["layer_norm_eps"]
    a = layer_norm(linear(context, w["attention.output.dense.weight"], w["attention.output.dense.bias"]) + h,
                   w["attention.output.LayerNorm.weight"], w["attention.output.LayerNorm.bias"], eps)
    inner = ACTIVATIONS[config["hidden_act"]](linear(a, w["intermediate.dense.weight"], w["intermediate.dense.bias"]))
    out = layer_norm(linear(inner, w["output.dense.weight"], w["output.dense.bias"]) + a,
                     w["output.LayerNorm.weight"], w["output.LayerNorm.bias"], eps)
    return out, probs


def layer_weights(weights: Mapping[str, np.ndarray], prefix: str, layer: int) -> dict:
    return _sub(weights, f"{prefix}encoder.layer.{layer}.")


def head_outputs(head: str, h: np.ndarray, weights: Mapping[str, np.ndarray], prefix: str,
                 config: Mapping) -> dict[str, np.ndarray]:
    """The output fields of a head (losses.yaml head names) from the last hidden states h (B,S,H)."""
    w = _sub(weights, "")
    gelu = ACTIVATIONS["gelu"]
    if head == "pretraining":  # architecture.discriminator_head
        x = ACTIVATIONS[config["hidden_act"]](linear(h, w["discriminator_predictions.dense.weight"],
                                                     w["discriminator_predictions.dense.bias"]))
        return {"logits": linear(x, w["discriminator_predictions.dense_prediction.weight"],
                                 w["discriminator_predictions.dense_prediction.bias"])[..., 0]}
    if head in ("masked_lm", "causal_lm"):  # architecture.generator_head
        g = gelu(linear(h, w["generator_predictions.dense.weight"], w["generator_predictions.dense.bias"]))
        g = layer_norm(g, w["generator_predictions.LayerNorm.weight"], w["generator_predictions.LayerNorm.bias"],
                       config["layer_norm_eps"])
        table = w.get("generator_lm_head.weight") if not config.get("tie_word_embeddings", True) else None
        table = w[f"{prefix}embeddings.word_embeddings.weight"] if table is None else table
        return {"logits": g @ table.T + w["generator_lm_head.bias"]}
    if head == "sequence_classification":  # architecture.sequence_classification_head
        x = gelu(linear(h[:, 0], w["classifier.dense.weight"], w["classifier.dense.bias"]))
        return {"logits": linear(x, w["classifier.out_proj.weight"], w["classifier.out_proj.bias"])}
    if head == "token_classification":  # architecture.token_classification_head
        return {"logits": linear(h, w["classifier.weight"], w["classifier.bias"])}
    if head == "question_answering":  # architecture.question_answering_head
        both = linear(h, w["qa_outputs.weight"], w["qa_outputs.bias"])
        return {"start_logits": both[..., 0], "end_logits": both[..., 1]}
    raise KeyError(f"no NumPy head for {head!r}")


def encoder(weights: Mapping[str, np.ndarray], prefix: str, config: Mapping, input_ids: np.ndarray,
            attention_mask: np.ndarray | None = None, token_type_ids: np.ndarray | None = None,
            position_ids: np.ndarray | None = None, head_mask: np.ndarray | None = None,
            ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(every hidden state [embeddings (B,S,H), layer 1, ..., layer L], every layer's attention
    probabilities (B,N,S,S)) in inference, from the inputs alone: no cache, causal when the config is a
    decoder. ids, masks, token types and positions (B, S); omitted mask = ones, token types = zeros,
    positions = 0..S-1; head_mask (N,) for every layer or (L, N) per layer, multiplying the probabilities."""
    ids = np.asarray(input_ids)
    mask = np.ones(ids.shape) if attention_mask is None else np.asarray(attention_mask)
    types = np.zeros_like(ids) if token_type_ids is None else np.asarray(token_type_ids)
    positions = np.broadcast_to(np.arange(ids.shape[-1]), ids.shape) if position_ids is None else position_ids
    layers = config["num_hidden_layers"]
    if head_mask is not None:
        head_mask = np.broadcast_to(np.asarray(head_mask, np.float64), (layers, config["num_attention_heads"]))
    hidden = [electra_embeddings(dict(weights), prefix, dict(config), ids, types, np.asarray(positions))]
    attentions = []
    bias = additive_mask(mask, causal=bool(config.get("is_decoder")))
    for layer in range(layers):
        h, probs = encoder_layer(hidden[-1], layer_weights(weights, prefix, layer), config, bias,
                                 None if head_mask is None else head_mask[layer])
        hidden.append(h)
        attentions.append(probs)
    return hidden, attentions


def forward(weights: Mapping[str, np.ndarray], prefix: str, config: Mapping, input_ids: np.ndarray,
            attention_mask: np.ndarray | None = None, token_type_ids: np.ndarray | None = None) -> list[np.ndarray]:
    """Every hidden state of the encoder (``encoder``'s first half) for ids, mask and token types alone."""
    return encoder(weights, prefix, config, input_ids, attention_mask, token_type_ids)[0]
