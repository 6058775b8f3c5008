"""Hostile checkpoint files against electra_core.checkpoint: data outside the h5 file, decompression and
allocation bombs, shard indexes pointing outside the folder, NaN/inf weights; saves that replace a
checkpoint of another format, and file modes under the umask. Every load also has its peak memory
measured: a bomb that got read would allocate far more than the bound."""
from __future__ import annotations

import contextlib
import json
import os
import resource
import stat
import tracemalloc
import warnings

import numpy as np
import pytest

from conformance.tests import _hostile as hostile
from checkpoint_helpers import random_state, tiny_config
from electra_core.checkpoint import (
    CheckpointError,
    CheckpointPathError,
    CheckpointSaveError,
    CheckpointShapeError,
    CheckpointSizeError,
    CheckpointStorageError,
    NonFiniteWeightsWarning,
    expected_shapes,
    h5_io,
    load_state,
    msgpack_io,
    save_state,
)
from electra_core.checkpoint.param_spec import params_data
from electra_core.files import atomic_write_bytes

#: what any single load of these tiny checkpoints may allocate (tracemalloc peak / growth of max RSS)
TRACED_LIMIT = 50 * 2**20
RSS_LIMIT = 200 * 2**20
#: 1e6 x 1e5 float32: 373 GiB if inflated; 25000 x 20000: 1.9 GiB
HUGE, LARGE = (1_000_000, 100_000), (25_000, 20_000)
MLM, BASE = "ElectraForMaskedLM", "ElectraModel"


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def state(config):
    return random_state(config, seed=3)


def file_name(key):
    return params_data()["files"][key]


@contextlib.contextmanager
def bounded_memory():
    """Fails the test if the block's traced allocations peak above TRACED_LIMIT or the process's max
    RSS grows by more than RSS_LIMIT."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
        assert peak < TRACED_LIMIT, f"traced allocations peaked at {peak / 2**20:.1f} MiB"
        assert grown < RSS_LIMIT, f"max RSS grew by {grown / 2**20:.1f} MiB"


def h5_checkpoint(tmp_path, config, state, name="ckpt"):
    directory = tmp_path / name
    save_state(directory, state, config, formats=("h5",), tf_model_scope="tf_electra_for_masked_lm")
    return directory, directory / file_name("h5")


def load_mlm(directory, config, fmt, **kwargs):
    return load_state(directory, formats=(fmt,), expected=expected_shapes(MLM, config), **kwargs)


# -- item 1: h5 data outside the file ----------------------------------------------------------------
@pytest.mark.parametrize("kind", hostile.H5_OUTSIDE)
def test_h5_data_outside_the_file_is_refused(tmp_path, config, state, kind):
    directory, h5 = h5_checkpoint(tmp_path, config, state)
    hostile.make_h5_outside(h5, kind, tmp_path / "elsewhere.bin")
    for load in (lambda: load_mlm(directory, config, "h5"), lambda: load_state(directory, formats=("h5",)),
                 lambda: h5_io.read_h5(h5)):
        with pytest.raises(CheckpointStorageError) as info:
            load()
        assert str(h5) in str(info.value) and hostile.TARGET in str(info.value), str(info.value)


def test_h5_without_tricks_still_loads(tmp_path, config, state):
    directory, _ = h5_checkpoint(tmp_path, config, state)
    loaded = load_mlm(directory, config, "h5")
    assert sorted(loaded.state) == sorted(state)
    for name, value in state.items():
        np.testing.assert_array_equal(loaded.state[name], value, err_msg=name)


# -- item 3: bombs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [HUGE, LARGE], ids=["373GiB", "1.9GiB"])
def test_h5_bomb_of_the_wrong_shape_raises_before_reading(tmp_path, config, state, shape):
    directory, h5 = h5_checkpoint(tmp_path, config, state)
    hostile.make_h5_bomb(h5, shape)
    assert h5.stat().st_size < 200_000
    with bounded_memory(), pytest.raises(CheckpointShapeError) as info:
        load_mlm(directory, config, "h5")
    message = str(info.value)
    assert "word_embeddings" in message and str(shape) in message, message
    assert str((config.vocab_size, config.embedding_size)) in message, message


def test_h5_bomb_is_skipped_unread_with_ignore_mismatched_sizes(tmp_path, config, state):
    directory, h5 = h5_checkpoint(tmp_path, config, state)
    hostile.make_h5_bomb(h5, LARGE)
    with bounded_memory():
        loaded = load_mlm(directory, config, "h5", ignore_mismatched_sizes=True)
    skipped = [n for n, _, _ in loaded.match.mismatched]
    assert skipped == ["electra.embeddings.word_embeddings.weight"]
    assert "electra.embeddings.word_embeddings.weight" not in loaded.state
    np.testing.assert_array_equal(loaded.state["electra.embeddings.position_embeddings.weight"],
                                  state["electra.embeddings.position_embeddings.weight"])


def test_h5_bomb_the_model_does_not_have_is_never_read(tmp_path, config, state):
    """An MLM checkpoint loaded into the base model: its generator head is unexpected, so a bomb there
    costs nothing."""
    directory, h5 = h5_checkpoint(tmp_path, config, state)
    hostile.make_h5_bomb(h5, HUGE, word="generator_predictions/dense/kernel")
    with bounded_memory():
        loaded = load_state(directory, formats=("h5",), expected=expected_shapes(BASE, config))
    assert "generator_predictions.dense.weight" in loaded.match.unexpected
    assert "embeddings.word_embeddings.weight" in loaded.state


def test_h5_bomb_without_expected_shapes_is_bounded_by_the_file(tmp_path, config, state):
    directory, h5 = h5_checkpoint(tmp_path, config, state)
    name = hostile.make_h5_bomb(h5, LARGE)
    for load in (lambda: load_state(directory, formats=("h5",)), lambda: h5_io.read_h5(h5)):
        with bounded_memory(), pytest.raises(CheckpointSizeError) as info:
            load()
        assert str(h5) in str(info.value) and name in str(info.value), str(info.value)


def msgpack_checkpoint(tmp_path, config, state):
    directory = tmp_path / "flax"
    save_state(directory, state, config, formats=("msgpack",))
    return directory, directory / file_name("msgpack")


def test_msgpack_array_declaring_more_than_it_holds(tmp_path, config, state):
    directory, path = msgpack_checkpoint(tmp_path, config, state)
    leaf = hostile.make_msgpack_bomb(path, HUGE)
    for load in (lambda: load_mlm(directory, config, "msgpack"), lambda: msgpack_io.read_msgpack(path)):
        with bounded_memory(), pytest.raises(CheckpointSizeError) as info:
            load()
        message = str(info.value)
        assert str(path) in message and leaf in message and "(1000000, 100000)" in message, message


def test_msgpack_chunked_array_declaring_more_than_its_chunks(tmp_path, config, state):
    directory, path = msgpack_checkpoint(tmp_path, config, state)
    tree = {"electra": {"embeddings": {"word_embeddings": {"embedding": {
        msgpack_io.CHUNK_MARKER: True, "shape": {"0": HUGE[0], "1": HUGE[1]},
        "chunks": {"0": np.zeros(4, np.float32)}}}}}}
    path.write_bytes(msgpack_io.msgpack.packb(tree, default=msgpack_io._pack_ext, strict_types=True))
    with bounded_memory(), pytest.raises(CheckpointSizeError) as info:
        load_mlm(directory, config, "msgpack")
    assert str(path) in str(info.value) and "word_embeddings" in str(info.value), str(info.value)


@pytest.mark.parametrize("header", [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xf0"],
                         ids=["array_len", "map_len", "bin_len"])
def test_msgpack_huge_container_headers_are_corrupt_files(tmp_path, config, state, header):
    directory, path = msgpack_checkpoint(tmp_path, config, state)
    path.write_bytes(header + bytes(32))
    with bounded_memory(), pytest.raises(CheckpointError) as info:
        load_mlm(directory, config, "msgpack")
    assert str(path) in str(info.value)


def test_safetensors_tensor_of_the_wrong_shape_is_not_read(tmp_path, config, state, monkeypatch):
    from electra_core.checkpoint import stored

    wrong = dict(state, **{"electra.embeddings.word_embeddings.weight": np.ones((40, 8), np.float32)})
    save_state(tmp_path, wrong, config, formats=("safetensors",))
    reads = []
    original = stored.StoredTensor.read
    monkeypatch.setattr(stored.StoredTensor, "read", lambda self: reads.append(self.name) or original(self))
    with pytest.raises(CheckpointShapeError, match=r"word_embeddings.*\(32, 8\).*\(40, 8\)"):
        load_mlm(tmp_path, config, "safetensors")
    assert reads == []
    loaded = load_mlm(tmp_path, config, "safetensors", ignore_mismatched_sizes=True)
    assert "electra.embeddings.word_embeddings.weight" not in reads and len(reads) == len(loaded.state)


# -- item 2: shard indexes pointing outside the folder ---------------------------------------------------
@pytest.mark.parametrize("kind", ["relative", "absolute", "symlink"])
def test_shard_outside_the_folder_is_refused(tmp_path, config, state, kind):
    directory = tmp_path / "ckpt"
    save_state(directory, state, config)
    entry = hostile.make_traversal(directory, kind, tmp_path / "outside")
    with pytest.raises(CheckpointPathError) as info:
        load_mlm(directory, config, "safetensors")
    message = str(info.value)
    assert file_name("safetensors_index") in message and entry in message, message


def test_shard_index_naming_a_system_file_is_refused_before_opening(tmp_path, config, state, monkeypatch):
    directory = tmp_path / "ckpt"
    save_state(directory, state, config)
    hostile.shard_index(directory, "/etc/passwd")
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    with pytest.raises(CheckpointPathError, match="/etc/passwd"):
        load_state(directory)
    assert "/etc/passwd" not in opened


def test_shards_inside_the_folder_load(tmp_path, config, state):
    from safetensors.numpy import save_file

    names = sorted(state)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, members in halves.items():
        save_file({n: state[n] for n in members}, tmp_path / shard, metadata={"format": "pt"})
    weight_map = {n: shard for shard, members in halves.items() for n in members}
    (tmp_path / file_name("safetensors_index")).write_text(json.dumps({"weight_map": weight_map}))
    loaded = load_mlm(tmp_path, config, "safetensors")
    assert loaded.path.name == file_name("safetensors_index")
    for name, value in state.items():
        np.testing.assert_array_equal(loaded.state[name], value, err_msg=name)


# -- item 13: NaN / inf weights ---------------------------------------------------------------------------
def test_non_finite_weights_load_with_a_warning_naming_them(tmp_path, config, state):
    bad, (nan_name, inf_name) = hostile.with_non_finite(state, ("query.weight", "dense.bias"))
    save_state(tmp_path, bad, config)
    with pytest.warns(NonFiniteWeightsWarning) as record:
        loaded = load_mlm(tmp_path, config, "safetensors")
    message = " ".join(str(w.message) for w in record)
    assert nan_name in message and inf_name in message and str(tmp_path) in message, message
    assert np.isnan(loaded.state[nan_name]).sum() == 1 and np.isinf(loaded.state[inf_name]).sum() == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWeightsWarning)
        with pytest.raises(NonFiniteWeightsWarning):
            load_mlm(tmp_path, config, "safetensors")


def test_finite_weights_load_without_a_warning(tmp_path, config, state):
    save_state(tmp_path, state, config)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteWeightsWarning)
        load_mlm(tmp_path, config, "safetensors")


# -- item 5: a save replaces the checkpoint as a whole ------------------------------------------------------
def _other(state):
    return {k: v + 1.0 for k, v in state.items()}


@pytest.mark.parametrize("first,second", [(("msgpack", "safetensors"), ("safetensors",)),
                                          (("safetensors",), ("h5",)), (("h5",), ("msgpack",))])
def test_resave_in_another_format_removes_the_old_weight_files(tmp_path, config, state, first, second):
    save_state(tmp_path, state, config, formats=first)
    (tmp_path / "tokenizer.json").write_text("{}")
    save_state(tmp_path, _other(state), config, formats=second)
    weight_files = {file_name(f) for f in ("safetensors", "msgpack", "h5")}
    present = sorted(p.name for p in tmp_path.iterdir() if p.name in weight_files)
    assert present == sorted(file_name(f) for f in second)
    assert (tmp_path / "tokenizer.json").read_text() == "{}"
    loaded = load_state(tmp_path)  # the default precedence: whatever it picks is the new checkpoint
    np.testing.assert_array_equal(loaded.state["electra.embeddings.word_embeddings.weight"],
                                  state["electra.embeddings.word_embeddings.weight"] + 1.0)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_resave_removes_a_sharded_checkpoint(tmp_path, config, state):
    save_state(tmp_path, state, config)
    hostile.shard_index(tmp_path, "model-00001-of-00001.safetensors")
    from safetensors.numpy import save_file

    save_file(state, tmp_path / "model-00001-of-00001.safetensors", metadata={"format": "pt"})
    save_state(tmp_path, _other(state), config, formats=("msgpack",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", file_name("msgpack")]


def test_failed_resave_restores_the_old_weight_files(tmp_path, config, state, monkeypatch):
    save_state(tmp_path, state, config, formats=("h5",))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_replace = os.replace

    def failing(src, dst):  # the removal of the old tf_model.h5 fails
        if str(src).endswith(file_name("h5")) and ".previous" in str(dst):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(CheckpointSaveError):
        save_state(tmp_path, _other(state), config, formats=("safetensors",))
    monkeypatch.setattr(os, "replace", real_replace)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# -- item 7: file modes follow the umask -------------------------------------------------------------------
@contextlib.contextmanager
def umask(value):
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def _modes(directory):
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_every_saved_file_honours_the_umask(tmp_path, config, state, mask):
    from electra_core.tokenizer.files import write

    want = 0o666 & ~mask
    with umask(mask):
        save_state(tmp_path / "model", state, config, formats=("safetensors", "msgpack", "h5"))
        config.save_pretrained(tmp_path / "config")
        atomic_write_bytes(tmp_path / "plain.bin", b"x")
        write(tmp_path / "tokenizer", {"config": "{}", "vocab": "[PAD]\n"})
    modes = {**_modes(tmp_path / "model"), **{f"config/{k}": v for k, v in _modes(tmp_path / "config").items()},
             "plain.bin": stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode),
             **{f"tokenizer/{k}": v for k, v in _modes(tmp_path / "tokenizer").items()}}
    assert len(modes) >= 8
    assert {k: oct(v) for k, v in modes.items() if v != want} == {}
