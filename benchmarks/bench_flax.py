"""Speed of impl_flax's FlaxElectraModel forward (jitted) against transformers' FlaxElectraModel, same
weights, same inputs, same process. Prints tokens/s for both, their ratio and the compile times.

    .venv/bin/python benchmarks/bench_flax.py [--iters N] [--configs small,base,minilm]

Configs: electra-small (E128, H256, L12, N4, I1024, V30522), an electra-base-sized encoder
(E=H=768, L12, N12, I3072, V30522) and minilm, the trained all-MiniLM-L6-v2 checkpoint converted to
ELECTRA (H384, L6, N12, I1536; realistic weights); batch 8 x seq 128, float32.

ratio = transformers' median time / ours (above 1: ours is faster); "rounds" is the lowest and the
highest ratio of single interleaved rounds, the spread that machine noise alone produces.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

CONFIGS = {
    "small": dict(vocab_size=30522, embedding_size=128, hidden_size=256, num_hidden_layers=12, num_attention_heads=4,
                  intermediate_size=1024),
    "base": dict(vocab_size=30522, embedding_size=768, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),
}
BATCH, SEQ = 8, 128
#: realistic weights: the trained all-MiniLM-L6-v2 encoder converted to ELECTRA (electra_core.convert.minilm)
PRETRAINED = "minilm"


def _seconds(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def _timed(fns, iters: int) -> tuple[list[float], list[list[float]]]:
    """First-call seconds (trace + compile + run) of each, then the seconds of ``iters`` runs of each,
    interleaved so that a change in machine load hits all alike."""
    first = [_seconds(fn) for fn in fns]
    for fn in fns:  # warm-up
        _seconds(fn)
    runs = [[] for _ in fns]
    for _ in range(iters):
        for fn, times in zip(fns, runs):
            times.append(_seconds(fn))
    return first, runs


def bench(name: str, iters: int) -> dict:
    import transformers

    import impl_flax

    if name == PRETRAINED:
        from electra_core.convert.minilm import convert_minilm

        with tempfile.TemporaryDirectory() as tmp:
            ours = impl_flax.FlaxElectraModel.from_pretrained(convert_minilm(Path(tmp) / "minilm"))
        config = {k: v for k, v in ours.config.to_dict().items() if k in CONFIGS["small"]}
    else:
        config = CONFIGS[name]
        ours = impl_flax.FlaxElectraModel(impl_flax.ElectraConfig(**config), _do_init=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = transformers.FlaxElectraModel(transformers.ElectraConfig(**config), seed=0,
                                                  _do_init=name != PRETRAINED)
    # the same tree on both sides: our modules carry the checkpoint names
    if name == PRETRAINED:
        params = ours.params
    else:
        params = ours.params = reference.params

    rng = np.random.default_rng(0)
    ids = rng.integers(0, config["vocab_size"], (BATCH, SEQ)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, 100:] = 0
    types = np.zeros_like(ids)

    # Both get the same host (numpy) inputs. Ours is called as users call it (its __call__ checks the
    # inputs on the host, then runs its jitted forward); transformers' __call__ is not jitted, so it
    # runs under jax.jit as its users run it. "ours in jit" runs ours in that same harness: the gap
    # between the two columns of ours is the host-side cost of our __call__ (checks, outputs).
    reference_jitted = jax.jit(lambda p, i, m, t: reference(i, attention_mask=m, token_type_ids=t, params=p)[0])
    ours_jitted = jax.jit(lambda p, i, m, t: ours(i, attention_mask=m, token_type_ids=t, params=p)[0])
    (our_first, ref_first, _), (our_runs, ref_runs, our_jit_runs) = _timed(
        [lambda: ours(ids, attention_mask=mask, token_type_ids=types).last_hidden_state,
         lambda: reference_jitted(params, ids, mask, types),
         lambda: ours_jitted(params, ids, mask, types)], iters)

    error = float(jnp.max(jnp.abs(ours(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
                                  - reference_jitted(params, ids, mask, types))))
    tokens = BATCH * SEQ
    our_time, ref_time, our_jit_time = (statistics.median(runs) for runs in (our_runs, ref_runs, our_jit_runs))
    # each interleaved round gives one ratio; their spread shows how much of a difference is noise
    round_ratios = sorted(r / o for r, o in zip(ref_runs, our_runs))
    return dict(config=name, ours_tokens_per_s=tokens / our_time, ref_tokens_per_s=tokens / ref_time,
                ratio=ref_time / our_time, ratio_low=round_ratios[0], ratio_high=round_ratios[-1],
                ours_in_jit_tokens_per_s=tokens / our_jit_time, ours_compile_s=our_first, ref_compile_s=ref_first,
                max_abs_diff=error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--configs", default=f"small,base,{PRETRAINED}")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; batch {BATCH} x seq {SEQ}, float32, "
          f"median of {args.iters} interleaved runs")
    print(f"{'config':7} {'impl_flax tok/s':>16} {'transformers tok/s':>19} {'ratio':>6} {'rounds':>11} "
          f"{'compile ours s':>15} {'compile ref s':>14} {'max|diff|':>10} {'ours in jit tok/s':>18}")
    for name in args.configs.split(","):
        r = bench(name, args.iters)
        print(f"{r['config']:7} {r['ours_tokens_per_s']:16.0f} {r['ref_tokens_per_s']:19.0f} {r['ratio']:6.2f} "
              f"{r['ratio_low']:5.2f}-{r['ratio_high']:<5.2f} "
              f"{r['ours_compile_s']:15.2f} {r['ref_compile_s']:14.2f} {r['max_abs_diff']:10.1e} "
              f"{r['ours_in_jit_tokens_per_s']:18.0f}")


if __name__ == "__main__":
    main()
