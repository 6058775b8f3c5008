"""A local huggingface_hub cache for offline tests (not a test module).

``HubCache(root).add("org/name", directory)`` lays out the cache as huggingface_hub does:
``models--org--name/snapshots/<commit>/<files>`` plus ``refs/main`` naming the commit. Inside
``with cache.offline():`` (or the ``offline_hub`` fixture) the default cache is ``root`` and
``HF_HUB_OFFLINE`` is on, so a plain ``from_pretrained("org/name")`` resolves through the real
``hf_hub_download`` code path without a network. Snapshot files are symlinks to the source files (the
real cache links snapshot files to blobs), so large checkpoints are not copied.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator, Mapping

import pytest


class HubCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def commit_for(repo_id: str) -> str:
        """A stable 40-hex commit id per repo."""
        return hashlib.sha1(repo_id.encode()).hexdigest()

    def repo_dir(self, repo_id: str) -> Path:
        return self.root / ("models--" + repo_id.replace("/", "--"))

    def add(self, repo_id: str, source: str | os.PathLike | Mapping[str, str | os.PathLike | bytes],
            revision: str = "main") -> Path:
        """Put ``source`` (a checkpoint directory, or {filename: path or bytes}) in the cache as
        ``repo_id`` at ``revision``; returns the snapshot directory."""
        if isinstance(source, Mapping):
            files = dict(source)
        else:
            files = {p.name: p for p in Path(source).iterdir() if p.is_file()}
        commit = self.commit_for(f"{repo_id}@{revision}")
        repo = self.repo_dir(repo_id)
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            target = snapshot / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.symlink_to(Path(content).resolve())
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / revision).write_text(commit)
        return snapshot

    @contextlib.contextmanager
    def offline(self) -> Iterator["HubCache"]:
        """Make this cache huggingface_hub's default and switch the hub offline, then restore both."""
        from huggingface_hub import constants

        saved = {name: getattr(constants, name) for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")}
        saved_env = {name: os.environ.get(name) for name in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")}
        constants.HF_HUB_CACHE = str(self.root)
        constants.HF_HUB_OFFLINE = True
        os.environ["HF_HUB_CACHE"] = str(self.root)
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            yield self
        finally:
            for name, value in saved.items():
                setattr(constants, name, value)
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture
def offline_hub(tmp_path) -> Iterator[HubCache]:
    """An empty offline hub cache that is huggingface_hub's default for the test."""
    cache = HubCache(tmp_path / "hub-cache")
    with cache.offline():
        yield cache
