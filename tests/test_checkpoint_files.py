"""Reading and writing checkpoint directories: formats, metadata, errors, atomic saves, hub ids."""
import json

import numpy as np
import pytest

from checkpoint_helpers import random_state, tiny_config
from electra_core import ElectraConfig
from electra_core.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    CheckpointSaveError,
    load_state,
    pt_to_flax,
    save_state,
)
from electra_core.checkpoint import h5_io, msgpack_io, safetensors_io
from electra_core.checkpoint.param_spec import params_data
from electra_core.hub import HubOptions

FORMATS = ("safetensors", "msgpack", "h5")


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def state(config):
    return random_state(config, seed=1)


def file_name(fmt):
    return params_data()["files"][fmt]


def assert_same_state(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips(tmp_path, config, state, fmt):
    save_state(tmp_path, state, config, formats=(fmt,))
    loaded = load_state(tmp_path, formats=(fmt,))
    assert loaded.format == fmt
    assert loaded.path == tmp_path / file_name(fmt)
    assert_same_state(loaded.state, state)
    assert ElectraConfig.from_pretrained(tmp_path) == config


def test_safetensors_metadata_and_layout(tmp_path, config, state):
    save_state(tmp_path, state, config)
    arrays, metadata = safetensors_io.read_safetensors(tmp_path / file_name("safetensors"))
    assert metadata == {"format": "pt"}
    assert load_state(tmp_path).metadata == {"format": "pt"}
    assert arrays["generator_predictions.dense.weight"].shape == (8, 12)  # PT (out, in)


def test_format_preference_order(tmp_path, config, state):
    save_state(tmp_path, state, config, formats=("msgpack", "h5"))
    assert load_state(tmp_path).format == "msgpack"
    assert load_state(tmp_path, formats=("h5", "msgpack")).format == "h5"


def test_safetensors_in_flax_and_tf_naming_is_converted(tmp_path, config, state):
    from safetensors.numpy import save_file

    from electra_core.checkpoint import pt_to_tf
    from electra_core.checkpoint.names import flatten_tree

    flat = {".".join(p): v for p, v in flatten_tree(pt_to_flax(state)).items()}
    save_file(flat, str(tmp_path / file_name("safetensors")), metadata={"format": "flax"})
    assert_same_state(load_state(tmp_path).state, state)
    tf = {n.split("/", 1)[1]: v for n, v in pt_to_tf(state, "scope").items()}  # names without the model scope
    save_file(tf, str(tmp_path / file_name("safetensors")), metadata={"format": "tf"})
    assert_same_state(load_state(tmp_path).state, state)


def test_sharded_safetensors_index(tmp_path, config, state):
    from safetensors.numpy import save_file

    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, shard_names in shards.items():
        save_file({n: state[n] for n in shard_names}, str(tmp_path / shard), metadata={"format": "pt"})
        weight_map.update({n: shard for n in shard_names})
    (tmp_path / file_name("safetensors_index")).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loaded = load_state(tmp_path)
    assert loaded.path.name == file_name("safetensors_index")
    assert_same_state(loaded.state, state)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_files_raise_checkpoint_error_naming_the_file(tmp_path, config, state, fmt, damage):
    save_state(tmp_path, state, config, formats=(fmt,))
    path = tmp_path / file_name(fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00\x01not a checkpoint" * 7)
    with pytest.raises(CheckpointError, match=str(path).replace("\\", "\\\\")):
        load_state(tmp_path, formats=(fmt,))


def test_msgpack_with_wrong_content_is_rejected(tmp_path):
    path = tmp_path / file_name("msgpack")
    path.write_bytes(msgpack_io.msgpack_bytes({"electra": {"embeddings": {"LayerNorm": {"scale": "text"}}}}))
    with pytest.raises(CheckpointError, match="scale"):
        load_state(tmp_path, formats=("msgpack",))


def test_h5_without_layer_names_is_rejected(tmp_path):
    import h5py

    path = tmp_path / file_name("h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("kernel", data=np.ones(3))
    with pytest.raises(CheckpointError, match="layer_names"):
        load_state(tmp_path, formats=("h5",))


def test_h5_long_weight_name_lists_are_split_and_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(h5_io, "_ATTR_LIMIT", 200)
    weights = {f"scope/electra/encoder/layer_._{i}/output/dense/bias:0": np.full(2, i, np.float32) for i in range(12)}
    h5_io.write_h5(tmp_path / "w.h5", weights)
    import h5py

    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert "weight_names" not in f["electra"].attrs and "weight_names1" in f["electra"].attrs
    back = h5_io.read_h5(tmp_path / "w.h5")
    assert sorted(back) == sorted(weights)
    np.testing.assert_array_equal(back["scope/electra/encoder/layer_._7/output/dense/bias:0"], [7, 7])


def test_missing_files_raise_not_found_listing_what_was_looked_for(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as info:
        load_state(tmp_path)
    for fmt in FORMATS:
        assert file_name(fmt) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(CheckpointNotFoundError, match="flax_model.msgpack"):
        load_state(tmp_path / "no-such-dir", formats=("msgpack",))


def test_failed_save_leaves_the_previous_checkpoint_byte_identical(tmp_path, config, state, monkeypatch):
    save_state(tmp_path, state, config, formats=FORMATS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    changed = {n: v + 1 for n, v in state.items()}

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5_io, "write_h5", fail)  # fails after config, safetensors and msgpack were written
    with pytest.raises(CheckpointSaveError, match=str(tmp_path.name)):
        save_state(tmp_path, changed, config, formats=FORMATS)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert sorted(p.name for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}")) == []


def test_failed_first_save_leaves_no_directory(tmp_path, config, state, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(msgpack_io, "msgpack_bytes", fail)
    with pytest.raises(CheckpointSaveError, match="No space left"):
        save_state(tmp_path / "new", state, config, formats=("safetensors", "msgpack"))
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_non_float_arrays(tmp_path, config):
    with pytest.raises(TypeError, match="embeddings.LayerNorm.bias"):
        save_state(tmp_path, {"embeddings.LayerNorm.bias": np.arange(3)}, config)


def _hub_cache(root, repo_id, files):
    """A huggingface_hub cache holding one snapshot of ``repo_id`` with ``files`` {name: bytes}."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return revision


def test_hub_id_resolves_offline_from_a_cache(tmp_path, config, state, monkeypatch):
    source = tmp_path / "source"
    save_state(source, state, config, formats=("msgpack",))
    cache = tmp_path / "cache"
    revision = _hub_cache(cache, "org/tiny-electra", {p.name: p.read_bytes() for p in source.iterdir()})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = load_state("org/tiny-electra", hub=HubOptions(cache_dir=cache, local_files_only=True))
    assert loaded.format == "msgpack" and revision in str(loaded.path)
    assert_same_state(loaded.state, state)
    pinned = HubOptions(cache_dir=cache, local_files_only=True, revision=revision)
    assert_same_state(load_state("org/tiny-electra", hub=pinned).state, state)
    with pytest.raises(CheckpointNotFoundError, match="org/absent"):
        load_state("org/absent", hub=HubOptions(cache_dir=cache, local_files_only=True))


@pytest.mark.parametrize("fmt", ["safetensors", "msgpack"])
def test_bfloat16_state_round_trips(tmp_path, config, state, fmt):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    half = {n: v.astype(ml_dtypes.bfloat16) for n, v in state.items()}
    save_state(tmp_path, half, config, formats=(fmt,))
    loaded = load_state(tmp_path, formats=(fmt,)).state
    assert {v.dtype.name for v in loaded.values()} == {"bfloat16"}
    assert_same_state(loaded, half)


def test_bfloat16_safetensors_from_the_format_description_is_read(tmp_path):
    # Built by hand from the safetensors format: u64 header length, JSON header, raw little-endian data.
    # bfloat16 1.5 is 0x3FC0 and -2.0 is 0xC000.
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "embeddings.LayerNorm.weight": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})
    header = header.encode() + b" " * (-len(header) % 8)
    data = len(header).to_bytes(8, "little") + header + bytes([0xC0, 0x3F, 0x00, 0xC0])
    (tmp_path / file_name("safetensors")).write_bytes(data)
    loaded = load_state(tmp_path)
    assert loaded.metadata == {"format": "pt"}
    weight = loaded.state["embeddings.LayerNorm.weight"]
    assert weight.dtype.name == "bfloat16"
    np.testing.assert_array_equal(weight.astype(np.float32), [1.5, -2.0])
