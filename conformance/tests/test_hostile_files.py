"""Family 8, persistence: hostile checkpoint files and what a save leaves behind, through the adapter's
load and save (from_pretrained / save_pretrained).

- error.checkpoint.external_storage: a tf_model.h5 weight whose data is not in the file (HDF5 external
  storage, a virtual dataset, a soft or external link) is refused, naming the file and the dataset;
- error.checkpoint.path_outside: a shard index naming a file outside the checkpoint folder ('..', an
  absolute path, a symlink) is refused, naming the entry (the file outside is a valid checkpoint, so
  a loader that follows it loads successfully and fails the test);
- files.load.shapes_first / error.checkpoint.oversized: a compressed h5 dataset declaring 64 MiB for a
  parameter of the wrong shape raises error.checkpoint.shape_mismatch while the load's traced
  allocations stay under MEMORY_LIMIT; a msgpack array declaring 373 GiB in 16 bytes is refused;
- error.checkpoint.corrupt: a safetensors header declared 128 MiB long in a 1 MiB file is refused without
  reading that much;
- files.load.non_finite: NaN/inf parameters load with a warning naming them;
- files.save.replaces_checkpoint: saving in the other format leaves no stale weight file that
  from_pretrained would prefer;
- files.save.mode: saved files get 0o666 & ~umask.

Each test runs once per implementation, on the framework's base class and the reference's base checkpoint.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tracemalloc

import pytest
from safetensors.numpy import save_file

from conformance.tests import _hostile as hostile
from conformance.tests._helpers import warnings_said
from conformance.tests.test_persistence import _saves_and_loads  # noqa: F401 - the module's autouse fixture
from conformance.tests.test_persistence import (
    SAFETENSORS,
    _base_checkpoint,
    _base_class,
    case_for,
    check_same_weights,
    native_format,
    precedence,
    spec_exception,
)
from electra_core.checkpoint.param_spec import params_data

#: a load of the tiny base checkpoint may allocate (traced) this much; the h5 bomb declares 64 MiB
MEMORY_LIMIT = 32 * 2**20

pytestmark = pytest.mark.family("persistence")
H5_BOMB = (4096, 4096)
MSGPACK_BOMB = (1_000_000, 100_000)
SHAPE_ERROR, OVERSIZED = "error.checkpoint.shape_mismatch", "error.checkpoint.oversized"


def tf_only(adapter) -> None:
    if adapter.framework != "tf":
        pytest.skip("tf_model.h5 is read by the TF classes only")


def flax_only(adapter) -> None:
    if adapter.framework != "flax":
        pytest.skip("flax_model.msgpack is read by the Flax classes only")


def h5_checkpoint(adapter, tmp_path, name: str):
    """The reference's base checkpoint as config.json + tf_model.h5 (transformers' TF layout)."""
    class_name = _base_class(adapter.framework)
    directory = _base_checkpoint(adapter.framework, tmp_path, name)
    scope = params_data()["naming"]["tf_model_scopes"][class_name]
    return class_name, directory, hostile.write_h5(directory, case_for(class_name).weights(), scope)


@contextlib.contextmanager
def traced_peak():
    """Yields a list that receives the peak of the block's traced (Python and numpy) allocations."""
    peak = []
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


@pytest.mark.parametrize("kind", hostile.H5_OUTSIDE)
def test_h5_data_outside_the_file(check, adapter, device, tmp_path, kind):
    tf_only(adapter)
    clause = "error.checkpoint.external_storage"
    class_name, directory, h5 = h5_checkpoint(adapter, tmp_path, kind)
    hostile.make_h5_outside(h5, kind, tmp_path / "elsewhere.bin")
    with check.raises(spec_exception(clause), clause=clause, words=(h5.name, hostile.TARGET), edge=kind):
        adapter.load(class_name, str(directory))


@pytest.mark.parametrize("kind", ["relative", "absolute", "symlink"])
def test_shard_index_outside_the_folder(check, adapter, device, tmp_path, kind):
    clause = "error.checkpoint.path_outside"
    class_name = _base_class(adapter.framework)
    directory = _base_checkpoint(adapter.framework, tmp_path, "sharded")
    entry = hostile.make_traversal(directory, kind, tmp_path / "outside")
    with check.raises(spec_exception(clause), clause=clause, words=(entry,), edge=kind):
        adapter.load(class_name, str(directory))


def test_h5_decompression_bomb(check, adapter, device, tmp_path):
    """A few-KB gzip dataset declaring 64 MiB for word_embeddings: shape_mismatch before reading it,
    and with ignore_mismatched_sizes the load succeeds, in both cases without inflating it."""
    tf_only(adapter)
    class_name, directory, h5 = h5_checkpoint(adapter, tmp_path, "bomb")
    hostile.make_h5_bomb(h5, H5_BOMB)
    check.clause("files.load.shapes_first")
    with traced_peak() as peak, check.raises(spec_exception(SHAPE_ERROR), clause=SHAPE_ERROR,
                                             words=(hostile.TARGET, str(H5_BOMB[0])), edge="gzip bomb in h5"):
        adapter.load(class_name, str(directory))
    check.that(peak[0] < MEMORY_LIMIT, clause="files.load.shapes_first",
               message=f"the refused load allocated {peak[0] / 2**20:.0f} MiB (traced peak) for a file of "
                       f"{h5.stat().st_size} bytes; the data of a mismatched tensor must not be read")
    with traced_peak() as peak:
        try:
            adapter.load(class_name, str(directory), ignore_mismatched_sizes=True)
        except Exception as err:  # noqa: BLE001 - the finding: the option must make the load succeed
            check.fail("files.load.mismatched", f"ignore_mismatched_sizes=True raised {type(err).__name__}: {err}")
    check.that(peak[0] < MEMORY_LIMIT, clause="files.load.shapes_first",
               message=f"ignore_mismatched_sizes=True allocated {peak[0] / 2**20:.0f} MiB (traced peak) "
                       f"to skip a tensor it does not use")


def test_msgpack_declared_size_bomb(check, adapter, device, tmp_path):
    """A flax_model.msgpack whose word_embeddings declares (1e6, 1e5) float32 in 16 bytes is refused
    (error.checkpoint.oversized) naming the file, never a MemoryError."""
    flax_only(adapter)
    class_name = _base_class(adapter.framework)
    directory = _base_checkpoint(adapter.framework, tmp_path, "msgpack_bomb")
    path = hostile.write_msgpack(directory, case_for(class_name).weights())
    (directory / hostile.file_name("safetensors")).unlink()
    hostile.make_msgpack_bomb(path, MSGPACK_BOMB)
    with check.raises(spec_exception(OVERSIZED), clause=OVERSIZED, words=(path.name, hostile.TARGET),
                      edge="msgpack declared size"):
        adapter.load(class_name, str(directory))


#: the safetensors header length a hostile file declares: past the file, far past MEMORY_LIMIT, and below
#: 256 times the padded file, so that a bound checked against a multiple of the size would let it through
HEADER_CLAIM = 128 * 2**20
HEADER_PADDING = 2**20


def test_safetensors_header_longer_than_the_file(check, adapter, device, tmp_path):
    """A model.safetensors (padded by 1 MiB) whose first 8 bytes declare a 128 MiB header is refused as
    error.checkpoint.corrupt naming the file, and the refused load's traced allocations stay under
    MEMORY_LIMIT: the declared length is compared with the file before a buffer of that length is read."""
    clause = "error.checkpoint.corrupt"
    class_name = _base_class(adapter.framework)
    directory = _base_checkpoint(adapter.framework, tmp_path, "long_header")
    path = directory / SAFETENSORS[2]
    data = path.read_bytes()
    path.write_bytes(HEADER_CLAIM.to_bytes(8, "little") + data[8:] + b" " * HEADER_PADDING)
    with traced_peak() as peak, check.raises(spec_exception(clause), clause=clause, words=(path.name,),
                                             edge="header length past the file"):
        adapter.load(class_name, str(directory))
    check.that(peak[0] < MEMORY_LIMIT, clause="files.load.shapes_first",
               message=f"the refused load allocated {peak[0] / 2**20:.0f} MiB (traced peak) for a file of "
                       f"{path.stat().st_size} bytes declaring a {HEADER_CLAIM >> 20} MiB header")


def test_non_finite_weights_are_named(check, adapter, device, tmp_path):
    """A checkpoint with a NaN in one parameter and an inf in another loads with a warning (warnings
    or logging at WARNING) that names both (files.load.non_finite)."""
    clause = "files.load.non_finite"
    class_name = _base_class(adapter.framework)
    directory = _base_checkpoint(adapter.framework, tmp_path, "non_finite")
    bad, names = hostile.with_non_finite(case_for(class_name).weights(), ("query.weight", "output.dense.bias"))
    save_file(bad, directory / hostile.file_name("safetensors"), metadata={"format": "pt"})
    check.clause(clause)
    with warnings_said() as messages:
        adapter.load(class_name, str(directory))
    said = " ".join(messages)
    missing = [n for n in names if n not in said]
    check.that(not missing, clause=clause, message=f"no warning names the non-finite parameters {missing}; "
                                                   f"warnings and log records: {said[:500]!r}")


def test_resave_in_the_other_format_replaces_the_checkpoint(check, adapter, caps, device, model_cache, tmp_path):
    """Save model A in the preferred format, then model B in the other one into the same folder: the
    folder holds B only (files.save.replaces_checkpoint), so the load returns B's weights."""
    clause = "files.save.replaces_checkpoint"
    class_name = _base_class(adapter.framework)
    config = case_for(class_name).config()
    first, second = precedence(adapter.framework)[:2]
    fmt = {name: f for f, _, name in (SAFETENSORS, native_format(adapter, caps))}
    first_model = model_cache.get(class_name, config)
    second_model = model_cache.build(class_name, config, seed=1)
    adapter.save(first_model, str(tmp_path), formats=(fmt[first],))
    adapter.save(second_model, str(tmp_path), formats=(fmt[second],))
    check.clause(clause)
    check.that(not (tmp_path / first).exists(), clause=clause,
               message=f"{first} of the previous save is still there beside the new {second}")
    loaded = adapter.load(class_name, str(tmp_path))
    check_same_weights(check, adapter.get_weights(loaded), adapter.get_weights(second_model), clause=clause)


def test_saved_files_honour_the_umask(check, adapter, caps, device, model_cache, tmp_path):
    """Under umask 027 every file a save writes (config.json, the weight files) has mode 0640: neither
    a temporary file's 0600 nor a fixed 0644 (files.save.mode)."""
    clause = "files.save.mode"
    class_name = _base_class(adapter.framework)
    handle = model_cache.get(class_name, case_for(class_name).config())
    old = os.umask(0o027)
    try:
        adapter.save(handle, str(tmp_path / "saved"), formats=(SAFETENSORS[0], native_format(adapter, caps)[0]))
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "saved").iterdir() if p.is_file()}
    check.that("config.json" in modes, clause=clause, message=f"save wrote {sorted(modes)}")
    wrong = {name: oct(mode) for name, mode in modes.items() if mode != 0o640}
    check.that(not wrong, clause=clause, message=f"files not 0o640 under umask 0o027: {wrong}")
