"""Saves that survive interruption and concurrency (issue 14, items 4 and 6; files.save.crash_safe,
files.save.concurrent).

Kill points: a worker process prepares the old checkpoint, then forks one child per step k of the save
that dies by SIGKILL just before step k (the ELECTRA_SAVE_FAULT test hook of
electra_core.checkpoint.journal), until a child gets through the whole save. The test then loads each
folder (the load recovers it) and checks it is exactly the old or exactly the new checkpoint, the one the
step predicts, and that no .saving-* folder is left; a copy of the folder is recovered by a save instead.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from electra_core import ElectraConfig
from electra_core.checkpoint import CheckpointError, CheckpointNotFoundError, CheckpointSaveError, expected_shapes
from electra_core.checkpoint import journal, load_state, save_state
from electra_core.checkpoint.lock import checkpoint_lock
from electra_core.checkpoint.param_spec import params_data

ROOT = Path(__file__).resolve().parents[1]
SCOPE = "tf_electra_for_masked_lm"
KEPT = {"tokenizer.json": b'{"kept": true}', "pytorch_model.bin": b"not a pickle, never read"}

# old formats (None: first save into a new folder), new formats, fault injected before the kills
SCENARIOS = {
    "overwrite": (("safetensors",), ("safetensors",), None),
    "other_format": (("safetensors", "h5"), ("msgpack",), None),
    "first_save": (None, ("safetensors", "msgpack"), None),
    "rollback": (("safetensors", "h5"), ("msgpack",), "oserror"),
}

WORKER = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    from tests.test_checkpoint_atomic import checkpoint, SCENARIOS, KEPT, SCOPE
    from electra_core.checkpoint import CheckpointSaveError, save_state
    from electra_core.checkpoint.journal import FAULT_ENV

    root, name = sys.argv[2], sys.argv[3]
    old, new, first_fault = SCENARIOS[name]

    def prepare(folder):
        if old is not None:
            os.makedirs(folder)
            save_state(folder, *checkpoint("old"), formats=old, tf_model_scope=SCOPE)
            for file, data in KEPT.items():
                open(os.path.join(folder, file), "wb").write(data)
        return os.path.join(folder, "ckpt") if old is None else folder

    def run(folder, fault):
        target = prepare(folder)
        pid = os.fork()
        if pid == 0:
            os.environ[FAULT_ENV] = fault
            try:
                save_state(target, *checkpoint("new"), formats=new, tf_model_scope=SCOPE)
            except CheckpointSaveError:
                os._exit(3)
            except BaseException:
                os._exit(4)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        return ("killed" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"), target

    # the step names of this save, from one traced run
    read_fd, write_fd = os.pipe()
    target = prepare(os.path.join(root, "trace"))
    pid = os.fork()
    if pid == 0:
        os.dup2(write_fd, 2)
        os.environ[FAULT_ENV] = "trace"
        save_state(target, *checkpoint("new"), formats=new, tf_model_scope=SCOPE)
        os._exit(0)
    os.close(write_fd)
    trace = os.fdopen(read_fd).read().splitlines()
    os.waitpid(pid, 0)
    steps = [line.split(": ", 1)[1] for line in trace if line.startswith("save step")]

    runs = []
    moves = [i + 1 for i, s in enumerate(steps) if s.startswith(("place the new", "move the old", "remove the stale"))]
    firsts = [None] if first_fault is None else moves
    for m in firsts:
        k = 1 if m is None else m + 1
        while True:
            fault = f"{k}:kill" if m is None else f"{m}:oserror,{k}:kill"
            folder = os.path.join(root, f"{name}-{m}-{k}")
            outcome, target = run(folder, fault)
            runs.append({"first": m, "k": k, "outcome": outcome, "folder": target})
            if outcome != "killed":
                break
            k += 1
    print(json.dumps({"steps": steps, "runs": runs}))
''')


def checkpoint(which: str):
    """(state, config) of the tiny "old", "new" or "third" checkpoint; the config stores which one it is."""
    config = ElectraConfig(vocab_size=16, embedding_size=4, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
                           intermediate_size=4, max_position_embeddings=8,
                           initializer_range={"old": 0.01, "new": 0.02, "third": 0.03}[which])
    rng = np.random.default_rng(["old", "new", "third"].index(which))
    state = {n: rng.standard_normal(s).astype(np.float32)
             for n, s in expected_shapes("ElectraForMaskedLM", config).items()}
    return state, config


def file_name(fmt):
    return params_data()["files"][fmt]


def _visible(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")} if folder.is_dir() else {}


def which_checkpoint(folder: Path, candidates: dict) -> str:
    """Load ``folder`` as from_pretrained does (config.json + weights under the shared lock) and return the
    name of the candidate it equals exactly: config bytes, every weight file's arrays, the set of files."""
    with checkpoint_lock(folder, shared=True):
        try:
            loaded = load_state(folder)
        except CheckpointNotFoundError:
            loaded = None
        files = _visible(folder)
    for name, (formats, state, config) in candidates.items():
        if formats is None:
            if loaded is None and not (set(files) - set(KEPT)):
                return name
            continue
        want = {"config.json", *(file_name(f) for f in formats)}
        if loaded is None or set(files) - set(KEPT) != want:
            continue
        if files["config.json"] != config.to_json_string().encode():
            continue
        per_format = [load_state(folder, formats=(f,)).state for f in formats]
        if all(sorted(s) == sorted(state) and all(np.array_equal(s[n], state[n]) for n in state)
               for s in per_format + [loaded.state]):
            return name
    raise AssertionError(f"{folder} is neither checkpoint: files {sorted(files)}")


def _candidates(old_formats, new_formats) -> dict:
    return {"old": (old_formats, *checkpoint("old")), "new": (new_formats, *checkpoint("new"))}


def _expected(run: dict, steps: list[str]) -> str:
    """The checkpoint a run must leave: killed before the journal was written -> old; after -> new (the
    load rolls forward), unless a rollback deleted the journal before the kill; a failed save -> old."""
    if run["outcome"] == "exit 0":
        return "new"
    if run["outcome"] == "exit 3":
        return "old"
    assert run["outcome"] == "killed", run
    k = run["k"]
    journal_step = steps.index("write the journal") + 1
    if run["first"] is None:
        return "old" if k <= journal_step else "new"
    return "new" if k <= _rollback_journal_step(run["first"], steps) else "old"


def _rollback_journal_step(first_fault: int, steps: list[str]) -> int:
    """The step number of "roll back: delete the journal" in a save whose step ``first_fault`` raised OSError:
    the moves done before it are undone one step each, then the journal is deleted."""
    moves_done = sum(1 for s in steps[:first_fault - 1] if s.startswith(("place the new", "move the old",
                                                                         "remove the stale")))
    return first_fault + moves_done + 1


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_save_killed_at_any_step_leaves_the_old_or_the_new_checkpoint(tmp_path, scenario):
    old_formats, new_formats, first_fault = SCENARIOS[scenario]
    result = subprocess.run([sys.executable, "-c", WORKER, str(ROOT), str(tmp_path), scenario],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    steps, runs = report["steps"], report["runs"]
    assert "write the journal" in steps and len(runs) >= (len(steps) if first_fault is None else 3)
    outcomes = {}
    for run in runs:
        folder = Path(run["folder"])
        want = _expected(run, steps)
        copy = folder.parent / (folder.name + "-saved")
        if folder.exists():
            shutil.copytree(folder, copy, symlinks=True)
        got = which_checkpoint(folder, _candidates(old_formats, new_formats))
        assert got == want, (run, steps)
        assert journal.leftovers(folder) == [], run
        for file, data in KEPT.items():
            assert old_formats is None or (folder / file).read_bytes() == data, (run, file)
        if copy.exists():  # a save recovers the half-save too, and replaces it as a whole
            save_state(copy, *checkpoint("third"), formats=("safetensors",))
            assert journal.leftovers(copy) == []
            assert which_checkpoint(copy, {"third": (("safetensors",), *checkpoint("third"))}) == "third"
        outcomes[run["outcome"], got] = outcomes.get((run["outcome"], got), 0) + 1
    assert ("killed", "old") in outcomes and ("killed", "new") in outcomes, outcomes
    print(scenario, len(runs), "runs:", outcomes)


@pytest.mark.parametrize("action", ["interrupt", "oserror"])
def test_an_exception_at_any_step_leaves_the_old_or_the_new_checkpoint(tmp_path, monkeypatch, action):
    old_formats, new_formats = ("safetensors", "h5"), ("msgpack",)
    seen = {}
    for k in range(1, 40):
        folder = tmp_path / f"k{k}"
        save_state(folder, *checkpoint("old"), formats=old_formats, tf_model_scope=SCOPE)
        (folder / "tokenizer.json").write_bytes(KEPT["tokenizer.json"])
        monkeypatch.setenv(journal.FAULT_ENV, f"{k}:{action}")
        try:
            save_state(folder, *checkpoint("new"), formats=new_formats)
            outcome = "completed"
        except KeyboardInterrupt:
            outcome = "interrupted"
        except OSError:  # CheckpointSaveError is an OSError
            outcome = "failed"
        monkeypatch.delenv(journal.FAULT_ENV)
        got = which_checkpoint(folder, _candidates(old_formats, new_formats))
        assert journal.leftovers(folder) == [], k
        assert (folder / "tokenizer.json").read_bytes() == KEPT["tokenizer.json"]
        if outcome != "completed":
            assert got in ("old", "new"), k
        else:
            assert got == "new"
        seen[outcome, got] = seen.get((outcome, got), 0) + 1
        if outcome == "completed" and seen.get(("completed", "new"), 0) >= 2:
            break
    failed = "interrupted" if action == "interrupt" else "failed"
    assert seen.get((failed, "old"), 0) >= 8, seen  # every step up to the last move rolls back to the old one
    print(action, seen)


def test_first_save_that_fails_removes_the_folder_it_created(tmp_path, monkeypatch):
    monkeypatch.setenv(journal.FAULT_ENV, "4:oserror")  # writing the weights fails
    with pytest.raises(CheckpointSaveError, match="new"):
        save_state(tmp_path / "new", *checkpoint("new"))
    assert list(tmp_path.iterdir()) == []


def test_a_reader_without_write_permission_reads_a_whole_checkpoint_or_names_the_folder(tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    save_state(folder, *checkpoint("old"))
    staging = folder / ".saving-0123456789abcdef"
    staging.mkdir()
    (staging / "config.json").write_bytes(b"{}")

    def read_only(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(journal, "recover", read_only)
    assert which_checkpoint(folder, _candidates(("safetensors",), ("msgpack",))) == "old"  # no journal: untouched
    (staging / journal.JOURNAL_NAME).write_text(json.dumps({"new": ["config.json", file_name("msgpack")],
                                                            "stale": [file_name("safetensors")]}))
    (staging / file_name("msgpack")).write_bytes(b"x")
    (staging / journal.ASIDE_NAME).mkdir()  # half-applied: the old config.json is aside, the new one not placed
    (folder / "config.json").rename(staging / journal.ASIDE_NAME / "config.json")
    with pytest.raises(CheckpointError, match="ckpt"):
        load_state(folder)
    monkeypatch.undo()
    with pytest.raises(CheckpointError):  # with write access the load rolls forward (to a bad msgpack here)
        load_state(folder)
    assert journal.leftovers(folder) == [] and not (folder / file_name("safetensors")).exists()


def test_symlinked_staging_folders_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / journal.JOURNAL_NAME).write_text(json.dumps({"new": ["config.json"], "stale": []}))
    (outside / "config.json").write_text("{}")
    folder = tmp_path / "ckpt"
    save_state(folder, *checkpoint("old"))
    (folder / ".saving-00000000000000aa").symlink_to(outside)
    save_state(folder, *checkpoint("new"))
    assert sorted(p.name for p in outside.iterdir()) == [journal.JOURNAL_NAME, "config.json"]
    assert which_checkpoint(folder, _candidates(("safetensors",), ("safetensors",))) == "new"


#: journal entries a hostile folder could hold: new files are plain names of the folder (no separator, no
#: '..', not a staging folder), stale ones relative paths that stay inside it
HOSTILE_JOURNALS = {
    "stale outside": {"new": [], "stale": ["../victim.txt"]},
    "stale absolute": {"new": [], "stale": ["{outside}/victim.txt"]},
    "new outside": {"new": ["../victim.txt"], "stale": []},
    "new in a subfolder": {"new": ["sub/victim.txt"], "stale": []},
    "new parent": {"new": [".."], "stale": []},
    "new staging folder": {"new": [".saving-00000000000000cc"], "stale": []},
}


@pytest.mark.parametrize("kind", list(HOSTILE_JOURNALS))
def test_a_journal_naming_files_outside_the_folder_is_refused(tmp_path, kind):
    """A committed journal in the folder is rolled forward by the next load, so its entries are checked first:
    each hostile one is refused with a CheckpointError naming it, and nothing outside is touched."""
    folder = tmp_path / "ckpt"
    save_state(folder, *checkpoint("old"))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    staging = folder / ".saving-00000000000000bb"
    staging.mkdir()
    (staging / "victim.txt").write_text("planted")  # what a rolled-forward "new" entry would move
    entries = json.loads(json.dumps(HOSTILE_JOURNALS[kind]).replace("{outside}", str(tmp_path)))
    (staging / journal.JOURNAL_NAME).write_text(json.dumps(entries))
    before = _visible(folder)
    with pytest.raises(CheckpointError, match="names files outside the folder"):
        load_state(folder)
    assert victim.read_text() == "keep" and _visible(folder) == before


# -- concurrency ---------------------------------------------------------------------------------------
CONCURRENT = textwrap.dedent('''
    import json, sys, time
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from electra_core.checkpoint import load_state, save_state
    from electra_core.pretrained_args import parse_pretrained_args, reading_checkpoint

    folder, role, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
    deadline = time.monotonic() + seconds
    counts = {"ok": 0, "inconsistent": 0, "errors": []}
    name = "electra.embeddings.LayerNorm.bias"
    if role.startswith("writer"):
        writer = int(role[-1])
        formats = ("safetensors",) if writer == 1 else ("msgpack",)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            stamp = writer * 100000 + n
            try:
                save_state(folder, {name: np.full(4, stamp, np.float32)}, {"stamp": stamp}, formats=formats)
                counts["ok"] += 1
            except Exception as e:
                counts["errors"].append(f"{type(e).__name__}: {e}")
    else:
        args = parse_pretrained_args({}, caller="reader")
        while time.monotonic() < deadline:
            try:
                with reading_checkpoint(args, folder):  # as from_pretrained does
                    with open(folder + "/config.json") as f:
                        stamp = json.load(f)["stamp"]
                    weights = load_state(folder).state[name]
                if np.all(weights == stamp):
                    counts["ok"] += 1
                else:
                    counts["inconsistent"] += 1
            except Exception as e:
                counts["errors"].append(f"{type(e).__name__}: {e}")
    counts["errors"] = counts["errors"][:5] + [len(counts["errors"])]
    print(json.dumps(counts))
''')


def test_concurrent_writers_and_a_reader_see_whole_checkpoints(tmp_path):
    folder = tmp_path / "ckpt"
    save_state(folder, {"electra.embeddings.LayerNorm.bias": np.zeros(4, np.float32)}, {"stamp": 0})
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = {role: subprocess.Popen([sys.executable, "-c", CONCURRENT, str(ROOT), str(folder), role, "4"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for role in ("writer1", "writer2", "reader")}
    results = {}
    for role, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results[role] = json.loads(out.splitlines()[-1])
    print(results)
    for role, counts in results.items():
        assert counts["errors"] == [0], (role, counts)
    assert results["reader"]["inconsistent"] == 0, results
    assert results["reader"]["ok"] >= 10 and results["writer1"]["ok"] >= 3 and results["writer2"]["ok"] >= 3, results
    assert journal.leftovers(folder) == []
