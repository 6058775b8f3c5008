"""Max abs error of transformers' Flax ELECTRA classes computing in bfloat16 / float16 (params float32)
vs the same model computing in float32, and of jax.jit vs eager in float32, on CPU.
Usage: python -m spec.measure.low_precision"""
from __future__ import annotations

import numpy as np


def main() -> None:
    import jax
    import jax.numpy as jnp
    import transformers as t

    heads = ["Model", "ForPreTraining", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification",
             "ForQuestionAnswering", "ForMultipleChoice"]
    worst: dict[str, float] = {}
    for seed in range(3):
        rng = np.random.default_rng(seed)
        for h in heads:
            cfg = t.ElectraConfig(vocab_size=64, embedding_size=16, hidden_size=32, num_hidden_layers=3,
                                  num_attention_heads=4, intermediate_size=37, max_position_embeddings=32,
                                  num_labels=2 if h == "ForQuestionAnswering" else 3, initializer_range=0.2)
            shape = (2, 3, 12) if h == "ForMultipleChoice" else (2, 12)
            ids = rng.integers(0, 64, shape)
            cls = getattr(t, "FlaxElectra" + h)
            ref_model = cls(cfg, seed=seed)
            ref = ref_model(ids, token_type_ids=np.zeros_like(ids), output_hidden_states=True)
            jitted = jax.jit(lambda p, x: ref_model(x, token_type_ids=jnp.zeros_like(x), params=p,
                                                    output_hidden_states=True))(ref_model.params, ids)
            for key in ref.keys():
                a, b = ref[key], jitted[key]
                pairs = list(zip(a, b)) if isinstance(a, tuple) else [(a, b)]
                e = max(float(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).max()) for x, y in pairs)
                worst[f"compiled_vs_eager.float32.{key}"] = max(worst.get(f"compiled_vs_eager.float32.{key}", 0), e)
            for dt in ("bfloat16", "float16"):
                low = cls(cfg, seed=seed, dtype=getattr(jnp, dt))
                out = low(ids, token_type_ids=np.zeros_like(ids), params=ref_model.params, output_hidden_states=True)
                for key in ref.keys():
                    a, b = ref[key], out[key]
                    pairs = list(zip(a, b)) if isinstance(a, tuple) else [(a, b)]
                    e = max(float(np.abs(np.asarray(x, np.float64) - np.asarray(y.astype(jnp.float32), np.float64)).max())
                            for x, y in pairs)
                    scale = max(float(np.abs(np.asarray(x)).max()) for x, _ in pairs)
                    k = f"low_precision_vs_float32.{dt}.{key}"
                    worst[k] = max(worst.get(k, 0), e)
                    worst[k + ".max_abs_ref"] = max(worst.get(k + ".max_abs_ref", 0), scale)
    for k in sorted(worst):
        print(f"{k}: {worst[k]:.3e}")


if __name__ == "__main__":
    main()
