"""NumPy recomputation of the ELECTRA blocks from spec/data/semantics (the ``architecture.*`` clauses),
in float64 and inference mode, from canonical (PyTorch-layout) weights. Used by the architecture
tests to recompute one encoder layer and each head from the hidden states an implementation returns,
and the whole model (``forward``) from its inputs alone, for implementations that return no hidden states.

Shape keys: B batch, C choices, S sequence, Sk keys, Se encoder sequence, H hidden, N heads, D head_dim,
I intermediate, E embedding, V vocab, K labels, P max positions.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import numpy as np

from conformance.numpy_ref import ACTIVATIONS, electra_embeddings, layer_norm, linear, sequence_summary, softmax


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


class Layer(NamedTuple):
    """One layer's outputs: hidden (B,S,H), self-attention probabilities (B,N,S,S), cross-attention
    probabilities (B,N,S,Se) or None, and the self-attention key and value (B,N,S,D) a cache holds."""
    hidden: np.ndarray
    probs: np.ndarray
    cross_probs: np.ndarray | None
    key: np.ndarray
    value: np.ndarray


def _attention_block(h: np.ndarray, source: np.ndarray, w: Mapping[str, np.ndarray], name: str, config: Mapping,
                     bias: np.ndarray, head_mask: np.ndarray | None, relative: bool):
    """One attention block with its residual LayerNorm (architecture.self_attention / cross_attention,
    attention_output): queries from h (B,S,H), keys and values from source (B,Sk,H), bias (B,1,S,Sk).
    Returns (LayerNorm(dense(context) + h) (B,S,H), probabilities (B,N,S,Sk), keys, values (B,N,Sk,D))."""
    n = config["num_attention_heads"]
    d = h.shape[-1] // n

    def heads(x):  # (B,T,H) -> (B,N,T,D)
        return x.reshape(x.shape[0], x.shape[1], n, d).transpose(0, 2, 1, 3)

    q = heads(linear(h, w[f"{name}.self.query.weight"], w[f"{name}.self.query.bias"]))
    k = heads(linear(source, w[f"{name}.self.key.weight"], w[f"{name}.self.key.bias"]))
    v = heads(linear(source, w[f"{name}.self.value.weight"], w[f"{name}.self.value.bias"]))
    scores = q @ k.transpose(0, 1, 3, 2)
    kind = config.get("position_embedding_type", "absolute")
    if relative and kind != "absolute":
        scores = scores + relative_scores(q, k, w[f"{name}.self.distance_embedding.weight"], kind)
    probs = softmax(scores / np.sqrt(d) + bias)
    if head_mask is not None:
        probs = probs * np.asarray(head_mask, np.float64)[None, :, None, None]
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(h.shape)
    out = layer_norm(linear(context, w[f"{name}.output.dense.weight"], w[f"{name}.output.dense.bias"]) + h,
                     w[f"{name}.output.LayerNorm.weight"], w[f"{name}.output.LayerNorm.bias"], config["layer_norm_eps"])
    return out, probs, k, v


def encoder_layer(h: np.ndarray, w: Mapping[str, np.ndarray], config: Mapping, bias: np.ndarray,
                  head_mask: np.ndarray | None = None, cross: tuple[np.ndarray, np.ndarray] | None = None) -> Layer:
    """One post-LayerNorm layer (architecture.self_attention, attention_output, cross_attention,
    feed_forward): h (B,S,H), w = the layer's weights without the 'encoder.layer.i.' prefix, bias (B,1,S,S),
    head_mask (N,) scaling the self- and cross-attention heads, cross = (encoder states (B,Se,H), their
    bias (B,1,1,Se)) when the layer has cross-attention."""
    a, probs, key, value = _attention_block(h, h, w, "attention", config, bias, head_mask, relative=True)
    cross_probs = None
    if cross is not None:  # absolute positions only (architecture.cross_attention)
        a, cross_probs, _, _ = _attention_block(a, cross[0], w, "crossattention", config, cross[1], head_mask,
                                                relative=False)
    inner = ACTIVATIONS[config["hidden_act"]](linear(a, w["intermediate.dense.weight"], w["intermediate.dense.bias"]))
    out = layer_norm(linear(inner, w["output.dense.weight"], w["output.dense.bias"]) + a,
                     w["output.LayerNorm.weight"], w["output.LayerNorm.bias"], config["layer_norm_eps"])
    return Layer(out, probs, cross_probs, key, value)


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
    if head == "multiple_choice":  # architecture.multiple_choice_head: h (B*C,S,H) -> logits (B*C,)
        x = sequence_summary(h, config["summary_type"])
        if config["summary_use_proj"]:
            x = linear(x, w["sequence_summary.summary.weight"], w["sequence_summary.summary.bias"])
        x = ACTIVATIONS[config["summary_activation"]](x)
        return {"logits": linear(x, w["classifier.weight"], w["classifier.bias"])[..., 0]}
    raise KeyError(f"no NumPy head for {head!r}")


class Encoder(NamedTuple):
    """Every hidden state [embeddings (B,S,H), layer 1, ..., layer L] and, per layer, the self-attention
    probabilities (B,N,S,S), the cross-attention probabilities (B,N,S,Se) (empty without cross-attention)
    and the self-attention (key, value) (B,N,S,D)."""
    hidden: list[np.ndarray]
    attentions: list[np.ndarray]
    cross_attentions: list[np.ndarray]
    keys_values: list[tuple[np.ndarray, np.ndarray]]


def encoder(weights: Mapping[str, np.ndarray], prefix: str, config: Mapping, input_ids: np.ndarray | None,
            attention_mask: np.ndarray | None = None, token_type_ids: np.ndarray | None = None,
            position_ids: np.ndarray | None = None, head_mask: np.ndarray | None = None, *,
            inputs_embeds: np.ndarray | None = None, encoder_hidden_states: np.ndarray | None = None,
            encoder_attention_mask: np.ndarray | None = None) -> Encoder:
    """The encoder in inference from the inputs alone: no cache (a cached call's outputs are this full
    pass's rows), causal when the config is a decoder, cross-attention to encoder_hidden_states (B,Se,H)
    when the config adds it. ids (or inputs_embeds (B,S,E)), masks, token types and positions (B, S);
    omitted mask = ones, token types = zeros, positions = 0..S-1, encoder mask = ones (B,Se); head_mask
    (N,) for every layer or (L, N) per layer, multiplying the self- and cross-attention probabilities."""
    shape = np.shape(input_ids) if inputs_embeds is None else np.shape(inputs_embeds)[:-1]
    mask = np.ones(shape) if attention_mask is None else np.asarray(attention_mask)
    types = np.zeros(shape, np.int64) if token_type_ids is None else np.asarray(token_type_ids)
    positions = np.broadcast_to(np.arange(shape[-1]), shape) if position_ids is None else position_ids
    layers = config["num_hidden_layers"]
    if head_mask is not None:
        head_mask = np.broadcast_to(np.asarray(head_mask, np.float64), (layers, config["num_attention_heads"]))
    cross = None
    if config.get("add_cross_attention") and encoder_hidden_states is not None:
        states = np.asarray(encoder_hidden_states, np.float64)
        enc_mask = np.ones(states.shape[:2]) if encoder_attention_mask is None else encoder_attention_mask
        cross = (states, additive_mask(enc_mask, causal=False)[:, :, :1, :])  # (B,1,1,Se)
    out = Encoder([electra_embeddings(dict(weights), prefix, dict(config), input_ids, types, np.asarray(positions),
                                      inputs_embeds=inputs_embeds)], [], [], [])
    bias = additive_mask(mask, causal=bool(config.get("is_decoder")))
    for layer in range(layers):
        step = encoder_layer(out.hidden[-1], layer_weights(weights, prefix, layer), config, bias,
                             None if head_mask is None else head_mask[layer], cross)
        out.hidden.append(step.hidden)
        out.attentions.append(step.probs)
        out.keys_values.append((step.key, step.value))
        if step.cross_probs is not None:
            out.cross_attentions.append(step.cross_probs)
    return out


def forward(weights: Mapping[str, np.ndarray], prefix: str, config: Mapping, input_ids: np.ndarray,
            attention_mask: np.ndarray | None = None, token_type_ids: np.ndarray | None = None) -> list[np.ndarray]:
    """Every hidden state of the encoder (``encoder``'s first half) for ids, mask and token types alone."""
    return encoder(weights, prefix, config, input_ids, attention_mask, token_type_ids).hidden
