"""Speed of impl_tf's TFElectraModel against transformers' TFElectraModel (tf-keras), both under
tf.function(jit_compile=True), on the electra-small config and an electra-base-sized one,
batch 8 x seq 128. Each side runs in its own subprocess (the reference needs TF_USE_LEGACY_KERAS=1).

    python benchmarks/bench_tf.py [--iters 10] [--rounds 3] [--batch 8] [--seq 128] [--configs small,base,minilm]

Both sides stay alive in worker processes and are timed in alternating rounds (best round counts), so
a busy machine affects both alike. Prints tokens/s of both, their ratio (ours / reference), XLA compile
time (first call) and the eager latency of one forward. "rounds" is the lowest and highest ratio of
single rounds: the spread machine noise alone produces. Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# electra-small is the ElectraConfig default (E128 H256 L12 N4 I1024 V30522); base-sized overrides it
CONFIGS = {"small": {}, "base": dict(embedding_size=768, hidden_size=768, num_attention_heads=12,
                                      intermediate_size=3072)}
#: realistic weights: the trained all-MiniLM-L6-v2 encoder converted to ELECTRA (electra_core.convert.minilm);
#: our side loads it with from_pretrained, the reference side gets the same config (weights do not
#: change the speed, and transformers' TF classes cannot read this safetensors file with safetensors 0.8)
PRETRAINED = "minilm"


def _pretrained_dir():
    import tempfile
    from pathlib import Path

    from electra_core.convert.minilm import convert_minilm

    return convert_minilm(Path(tempfile.mkdtemp()) / "minilm")


class Side:
    """One side's model in its subprocess: built and XLA-compiled on ``setup``, timed on ``time``."""

    def __init__(self, side: str, batch: int, seq: int):
        self.side, self.batch, self.seq = side, batch, seq

    def setup(self, config_name: str, eager_iters: int) -> dict:
        import numpy as np
        import tensorflow as tf

        if config_name == PRETRAINED:
            import json

            directory = _pretrained_dir()
            fields = ("vocab_size", "embedding_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                      "intermediate_size", "max_position_embeddings", "hidden_act")
            config = json.loads((directory / "config.json").read_text())
            overrides = {k: config[k] for k in fields}
        else:
            overrides = dict(CONFIGS[config_name])
        overrides.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        if self.side == "ours":
            from impl_tf import ElectraConfig, TFElectraModel

            if config_name == PRETRAINED:
                model = TFElectraModel.from_pretrained(str(directory))
            else:
                model = TFElectraModel(ElectraConfig(**overrides))
        else:
            import transformers

            model = transformers.TFElectraModel(transformers.ElectraConfig(**overrides))
        rng = np.random.RandomState(0)
        self.ids = tf.constant(rng.randint(0, model.config.vocab_size, (self.batch, self.seq)), tf.int32)
        self.mask = tf.ones((self.batch, self.seq), tf.int32)

        def forward(ids, mask):
            return model(input_ids=ids, attention_mask=mask, training=False)[0]

        self.compiled = tf.function(forward, jit_compile=True)
        start = time.perf_counter()
        self.compiled(self.ids, self.mask).numpy()
        compile_s = time.perf_counter() - start
        forward(self.ids, self.mask).numpy()  # eager warm-up
        start = time.perf_counter()
        for _ in range(eager_iters):
            forward(self.ids, self.mask).numpy()
        eager_s = (time.perf_counter() - start) / eager_iters
        return dict(compile_s=compile_s, eager_latency_s=eager_s, device=tf.config.list_logical_devices()[-1].device_type)

    def time(self, iters: int) -> dict:
        self.compiled(self.ids, self.mask).numpy()  # warm-up
        start = time.perf_counter()
        for _ in range(iters):
            out = self.compiled(self.ids, self.mask)
        out.numpy()
        return dict(step_s=(time.perf_counter() - start) / iters)


def worker(side: str, batch: int, seq: int) -> None:
    """Answer JSON commands on stdin, one JSON result line per command on stdout."""
    state = Side(side, batch, seq)
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "setup":
            result = state.setup(command["config"], command["eager_iters"])
        else:
            result = state.time(command["iters"])
        print("RESULT " + json.dumps(result), flush=True)


class WorkerProcess:
    def __init__(self, side: str, args):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("TF_USE_LEGACY_KERAS", None)
        if side == "reference":
            env["TF_USE_LEGACY_KERAS"] = "1"  # transformers' TF classes run on tf-keras
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self.side = side
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", side, "--batch", str(args.batch),
             "--seq", str(args.seq)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
        raise SystemExit(f"the {self.side} worker exited (return code {self.process.wait()})")

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best round counts")
    parser.add_argument("--eager-iters", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--configs", default=f"small,base,{PRETRAINED}")
    parser.add_argument("--worker", choices=["ours", "reference"])
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.batch, args.seq)
        return
    rows = []
    for name in args.configs.split(","):
        sides = {side: WorkerProcess(side, args) for side in ("ours", "reference")}
        try:
            info = {side: w.ask(op="setup", config=name, eager_iters=args.eager_iters) for side, w in sides.items()}
            steps = {side: [] for side in sides}
            for _ in range(args.rounds):  # alternate so both sides see the same machine load
                for side, w in sides.items():
                    steps[side].append(w.ask(op="time", iters=args.iters)["step_s"])
        finally:
            for w in sides.values():
                w.close()
        rows.append((name, info, steps))
    tokens = args.batch * args.seq
    print(f"TFElectraModel forward, batch {args.batch} x seq {args.seq}, tf.function(jit_compile=True), "
          f"best of {args.rounds} alternating rounds of {args.iters} steps; device {rows[0][1]['ours']['device']}")
    header = f"{'config':7} {'side':13} {'tokens/s':>10} {'ratio':>6} {'rounds':>11} {'compile s':>10} {'eager ms':>9}"
    print(header)
    print("-" * len(header))
    for name, info, steps in rows:
        best = {side: min(times) for side, times in steps.items()}
        ratio = best["reference"] / best["ours"]
        # one ratio per alternating round: their spread is what machine noise alone produces
        round_ratios = sorted(r / o for r, o in zip(steps["reference"], steps["ours"]))
        for side, label in (("ours", "impl_tf"), ("reference", "transformers")):
            shown = f"{ratio:6.2f} {round_ratios[0]:5.2f}-{round_ratios[-1]:<5.2f}" if side == "ours" else " " * 18
            print(f"{name:7} {label:13} {tokens / best[side]:10.0f} {shown} {info[side]['compile_s']:10.2f} "
                  f"{1000 * info[side]['eager_latency_s']:9.1f}")


if __name__ == "__main__":
    main()
