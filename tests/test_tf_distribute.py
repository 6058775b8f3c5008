"""impl_tf's models under tf.distribute.MirroredStrategy over 2 and 4 logical CPU devices (CASES): built in the
strategy's scope they give the one-device outputs (a direct call, and predict, which calls the model in
each replica); compile(optimizer) + fit gives the one-device loss history and weights (the loss with
the labels inside the inputs) and evaluate the one-device loss; save_pretrained from the distributed
model loads on one device with the same outputs; resize_token_embeddings keeps every weight mirrored; a
custom loop calling compute_loss on a per-replica loss gets a clear error.

The replicas get batches of different sizes (one empty under 4 replicas) and different numbers of
counted (not -100) positions, some none, so a loss that is a mean of per-replica means differs from
the one-device mean: a planted model with exactly that loss is run and caught by the same comparison.

Logical devices must be configured before TensorFlow initialises its devices, so the models run in a
subprocess (this file run as a script, the same interpreter) with 4 logical CPUs, which writes every
result to an .npz; the tests compare them here. The strategy over 2 devices uses MirroredStrategy's
default cross-device ops on CPUs (collective ops), the one over 4 ReductionToOneDevice: two strategies
of different sizes with collective ops in one process clash on their group keys (a TensorFlow
limitation, "joining a group with size 4, but that group has size 2").
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # one subprocess, about 52 s of CPU (93 s wall on a loaded 2-core machine)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = dict(vocab_size=50, hidden_size=16, num_attention_heads=2, num_hidden_layers=2, intermediate_size=32,
              embedding_size=8, max_position_embeddings=16, num_labels=3,
              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # no dropout: runs comparable
CLASSES = ("TFElectraForSequenceClassification", "TFElectraForMaskedLM")
REPLICAS = (2, 4)
# (class, replicas) runs: the sequence classifier under 4 replicas is left out for time (about 20 s of CPU)
CASES = (("TFElectraForSequenceClassification", 2), ("TFElectraForMaskedLM", 2), ("TFElectraForMaskedLM", 4))
# 9 rows in global batches of 3 (one shape, so one trace per function): under 2 replicas each batch
# splits 2|1 rows, under 4 replicas 1|1|1|0, so the replicas' batch sizes differ and one is empty
SEQ, GLOBAL_BATCH = 6, 3
LEARNING_RATE = 0.5  # steps large enough that a wrong gradient moves the weights far beyond atol
MLM_COUNTS = (6, 1, 3, 0, 5, 1, 4, 3, 2)  # counted tokens per row (per replica under 2: 7|3, 5|1, 7|2)
CLS_LABELS = (0, 2, -100, 1, -100, -100, 2, 1, 0)  # counted per replica under 2: 2|0, 1|0, 2|1
LOSS_ATOL, WEIGHT_ATOL, OUTPUT_ATOL = 1e-5, 1e-4, 1e-5


def task_data(class_name):
    """input_ids (9, SEQ) and labels: (9,) with -100 rows, or (9, SEQ) with MLM_COUNTS counted."""
    rng = np.random.RandomState(0)
    rows = len(MLM_COUNTS)
    ids = rng.randint(1, CONFIG["vocab_size"], (rows, SEQ)).astype(np.int32)
    if class_name == "TFElectraForSequenceClassification":
        return ids, np.array(CLS_LABELS, np.int32)
    labels = np.full((rows, SEQ), -100, np.int32)
    for row, count in enumerate(MLM_COUNTS):
        where = np.sort(rng.permutation(SEQ)[:count])
        labels[row, where] = rng.randint(0, CONFIG["vocab_size"], count)
    return ids, labels


# -- the subprocess -------------------------------------------------------------------------------
def _worker(out_dir: Path) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * max(REPLICAS))
    sys.path.insert(0, str(ROOT))
    import impl_tf
    from impl_tf import losses
    from impl_tf.weights import canonical_state

    keras = tf.keras
    results = {}
    clock = [time.perf_counter(), time.process_time()]

    def put(key, value):
        results[key] = np.asarray(value)

    def lap(name):
        """Seconds since the last lap: wall clock and CPU (all threads)."""
        now = [time.perf_counter(), time.process_time()]
        put(f"time|{name}", [now[0] - clock[0], now[1] - clock[1]])
        clock[:] = now

    def put_state(key, model):
        for name, value in canonical_state(model).items():
            put(f"{key}|w|{name}", value)

    def dataset(class_name):
        ids, labels = task_data(class_name)
        return tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": labels}).batch(GLOBAL_BATCH)

    def compile_(model):
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE))  # the documented call, Keras' defaults

    def logits(model, ids):
        return model(ids).logits.numpy()

    def mirrored_over(model):
        """The fewest devices any weight is mirrored on (0 for a weight that is not mirrored)."""
        return min(len(v.value.values) if isinstance(v.value, tf.distribute.DistributedValues) else 0
                   for v in model.weights)

    def run(key, model, class_name, ids):
        """Outputs, evaluate, fit one epoch, evaluate again, outputs; the results under ``key``."""
        ds = dataset(class_name)
        put(f"{key}|call", logits(model, ids))
        put(f"{key}|predict", model.predict(ids, batch_size=GLOBAL_BATCH, verbose=0)["logits"])
        put(f"{key}|eval_before", model.evaluate(ds, verbose=0))
        put(f"{key}|history", model.fit(ds, epochs=1, verbose=0).history["loss"])
        put_state(key, model)
        put(f"{key}|eval_after", model.evaluate(ds, verbose=0))
        put(f"{key}|call_after", logits(model, ids))

    strategies = {2: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
                  4: tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(4)],
                                                    cross_device_ops=tf.distribute.ReductionToOneDevice())}
    for r, strategy in strategies.items():  # how the replicas split the global batches: rows, counted positions
        first = next(iter(strategy.experimental_distribute_dataset(dataset(CLASSES[0]))))
        put(f"rows|{r}", [t["input_ids"].shape[0] for t in strategy.experimental_local_results(first)])
        for class_name in CLASSES:
            put(f"split|{class_name}|{r}", [[int(np.sum(t["labels"].numpy() != -100))
                                             for t in strategy.experimental_local_results(batch)]
                                            for batch in strategy.experimental_distribute_dataset(dataset(class_name))])
    lap("start")

    for class_name in CLASSES:
        cls = getattr(impl_tf, class_name)
        ids, _ = task_data(class_name)
        keras.utils.set_random_seed(0)
        reference = cls(impl_tf.ElectraConfig(**CONFIG))  # on one device
        initial = out_dir / f"{class_name}-initial"
        reference.save_pretrained(initial)
        initial_weights = reference.get_weights()
        compile_(reference)
        run(f"{class_name}|1", reference, class_name, ids)
        lap(f"{class_name}|1")

        for r in (r for c, r in CASES if c == class_name):
            key, strategy = f"{class_name}|{r}", strategies[r]
            with strategy.scope():
                if r == 2:  # constructed and called once in the scope, then given the weights
                    model = cls(impl_tf.ElectraConfig(**CONFIG))
                    model(ids[:1])
                    model.set_weights(initial_weights)
                else:  # loaded in the scope
                    model = cls.from_pretrained(initial)
                compile_(model)
            put(f"{key}|mirrored", mirrored_over(model))
            run(key, model, class_name, ids)
            saved = out_dir / f"{class_name}-{r}"
            model.save_pretrained(saved, formats=("safetensors", "h5"))
            put(f"{key}|loaded_safetensors", logits(cls.from_pretrained(saved), ids))  # on one device
            put(f"{key}|loaded_h5", logits(cls.from_pretrained(saved, use_safetensors=False), ids))
            lap(key)

    initial = out_dir / "TFElectraForMaskedLM-initial"
    ids, _ = task_data("TFElectraForMaskedLM")
    strategy = strategies[2]

    class PerReplicaMean(impl_tf.TFElectraForMaskedLM):
        """Planted: the loss is each replica's own mean, scaled by 1/R as Keras scales a per-replica
        loss, so the global loss is a mean of per-replica means."""

        def train_step(self, data):
            return keras.Model.train_step(self, self._labels_into_inputs(data))

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return y_pred["loss"] / losses.replicas_here()

    with strategy.scope():
        planted = PerReplicaMean.from_pretrained(initial)
        compile_(planted)
    put("planted|2|history", planted.fit(dataset("TFElectraForMaskedLM"), epochs=1, verbose=0).history["loss"])
    put_state("planted|2", planted)
    lap("planted")

    # a custom replica step calling the model and compute_loss (outside losses.replica_shares)
    with strategy.scope():
        model = impl_tf.TFElectraForMaskedLM.from_pretrained(initial)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset("TFElectraForMaskedLM"))))
    try:
        strategy.run(lambda b: model.compute_loss(y_pred=model(b)), args=(batch,))
        put("custom_step|error", "")
    except RuntimeError as error:
        put("custom_step|error", f"{type(error).__name__}: {error}")

    # resize_token_embeddings outside the scope of a model built in it
    model.resize_token_embeddings(CONFIG["vocab_size"] + 6)
    put("resized|2|mirrored", mirrored_over(model))
    one = impl_tf.TFElectraForMaskedLM.from_pretrained(initial)
    one.resize_token_embeddings(CONFIG["vocab_size"] + 6)
    one.set_weights(model.get_weights())
    put("resized|2|predict", model.predict(ids, batch_size=GLOBAL_BATCH, verbose=0)["logits"])
    put("resized|1|call", logits(one, ids))
    lap("custom step and resize")
    np.savez(out_dir / "results.npz", **results)


# -- the tests ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("distribute")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, __file__, str(out_dir)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    with np.load(out_dir / "results.npz") as data:
        results = {k: data[k] for k in data.files}
    laps = (f"{k[5:]} {v[0]:.1f}/{v[1]:.1f}" for k, v in results.items() if k.startswith("time|"))
    print("seconds, wall/CPU:", ", ".join(laps))
    return results


def weights(results, key):
    prefix = f"{key}|w|"
    return {k[len(prefix):]: v for k, v in results.items() if k.startswith(prefix)}


def assert_losses_match(actual, reference, what):
    actual, reference = np.atleast_1d(actual), np.atleast_1d(reference)
    assert actual.shape == reference.shape and np.all(np.isfinite(actual)), f"{what}: {actual} vs {reference}"
    np.testing.assert_allclose(actual, reference, rtol=0, atol=LOSS_ATOL, err_msg=what)


def assert_weights_match(actual, reference, what):
    assert reference and actual.keys() == reference.keys(), what
    worst = max(reference, key=lambda name: np.max(np.abs(actual[name] - reference[name])))
    np.testing.assert_allclose(actual[worst], reference[worst], rtol=0, atol=WEIGHT_ATOL, err_msg=f"{what}: {worst}")


def test_the_replicas_count_different_numbers_of_positions(runs):
    """The data can catch a mean of per-replica means: the replicas of a batch hold different numbers
    of rows (one none under 4 replicas) and count different numbers of positions (some none; under 2
    replicas every masked-LM replica counts some, so the planted loss is finite)."""
    assert runs["rows|2"].tolist() == [2, 1] and runs["rows|4"].tolist() == [1, 1, 1, 0]
    mlm2, mlm4 = runs["split|TFElectraForMaskedLM|2"].tolist(), runs["split|TFElectraForMaskedLM|4"].tolist()
    assert mlm2 == [[7, 3], [5, 1], [7, 2]], mlm2
    assert mlm4 == [[6, 1, 3, 0], [0, 5, 1, 0], [4, 3, 2, 0]], mlm4
    cls2, cls4 = runs["split|TFElectraForSequenceClassification|2"].tolist(), \
        runs["split|TFElectraForSequenceClassification|4"].tolist()
    assert cls2 == [[2, 0], [1, 0], [2, 1]] and cls4 == [[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]], (cls2, cls4)


@pytest.mark.parametrize("class_name, replicas", CASES)
def test_a_model_built_in_the_scope_gives_the_one_device_outputs(runs, class_name, replicas):
    key, one = f"{class_name}|{replicas}", f"{class_name}|1"
    assert int(runs[f"{key}|mirrored"]) == replicas, "a weight is not mirrored on every replica"
    for field in ("call", "predict"):
        assert runs[f"{key}|{field}"].shape == runs[f"{one}|call"].shape, field
        np.testing.assert_allclose(runs[f"{key}|{field}"], runs[f"{one}|{field}"], rtol=0, atol=OUTPUT_ATOL,
                                   err_msg=field)


@pytest.mark.parametrize("class_name, replicas", CASES)
def test_fit_gives_the_one_device_losses_and_weights(runs, class_name, replicas):
    key, one = f"{class_name}|{replicas}", f"{class_name}|1"
    assert_losses_match(runs[f"{key}|history"], runs[f"{one}|history"], "loss history")
    assert_weights_match(weights(runs, key), weights(runs, one), "weights after the epoch")
    np.testing.assert_allclose(runs[f"{key}|call_after"], runs[f"{one}|call_after"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("class_name, replicas", CASES)
def test_evaluate_gives_the_one_device_loss(runs, class_name, replicas):
    key, one = f"{class_name}|{replicas}", f"{class_name}|1"
    assert_losses_match(runs[f"{key}|eval_before"], runs[f"{one}|eval_before"], "evaluate before fit")
    assert_losses_match(runs[f"{key}|eval_after"], runs[f"{one}|eval_after"], "evaluate after fit")
    assert not np.isclose(runs[f"{one}|eval_before"], runs[f"{one}|eval_after"], atol=1e-3), "fit changed nothing"


@pytest.mark.parametrize("class_name, replicas", CASES)
def test_save_pretrained_from_the_distributed_model_loads_on_one_device(runs, class_name, replicas):
    key = f"{class_name}|{replicas}"
    for loaded in ("loaded_safetensors", "loaded_h5"):
        np.testing.assert_allclose(runs[f"{key}|{loaded}"], runs[f"{key}|call_after"], rtol=0, atol=OUTPUT_ATOL,
                                   err_msg=loaded)
    assert not np.allclose(runs[f"{key}|loaded_safetensors"], runs[f"{key}|call"], atol=1e-3), "saved before fit?"


def test_a_planted_mean_of_per_replica_means_is_caught(runs):
    """The comparisons above fail for a masked-LM loss that is each replica's own mean scaled by 1/R."""
    one = "TFElectraForMaskedLM|1"
    with pytest.raises(AssertionError, match="loss history"):
        assert_losses_match(runs["planted|2|history"], runs[f"{one}|history"], "loss history")
    assert np.all(np.isfinite(runs["planted|2|history"]))  # caught by its value, not by a NaN
    with pytest.raises(AssertionError, match="weights"):
        assert_weights_match(weights(runs, "planted|2"), weights(runs, one), "weights")


def test_compute_loss_on_a_per_replica_loss_raises_a_clear_error(runs):
    message = str(runs["custom_step|error"])
    assert message.startswith("RuntimeError: TFElectraForMaskedLM.compute_loss runs on one of 2 replicas"), message
    assert "mean of per-replica means" in message and "impl_tf.losses.replica_shares()" in message, message


def test_resize_token_embeddings_outside_the_scope_keeps_the_weights_mirrored(runs):
    assert int(runs["resized|2|mirrored"]) == 2, "a resized weight is not mirrored"
    assert runs["resized|1|call"].shape[-1] == CONFIG["vocab_size"] + 6
    np.testing.assert_allclose(runs["resized|2|predict"], runs["resized|1|call"], rtol=0, atol=OUTPUT_ATOL)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
