"""Running one pytest process per implementation for ``electra-conformance run``: the command line and
environment of each, their progress lines, and stopping them on SIGINT/SIGTERM or past their time limit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conformance.registry import BUILTIN_ENVIRONMENT


def pytest_command(args, impl: str, report: Path, progress: Path) -> list[str]:
    target = ["--pyargs", args.tests] if not os.path.exists(args.tests) else [args.tests]
    cmd = [sys.executable, "-m", "pytest", *target, "--impl", impl,
           "--devices", args.devices, "--conformance-profile", args.profile, "--conformance-report", str(report),
           "--conformance-progress", str(progress), "--expectations", args.expectations,
           "-p", "no:cacheprovider", "-q", "-rfE"]
    cmd += ["--require-devices"] if args.require_devices else []
    cmd += ["--strict-stale"] if args.strict_stale else []
    cmd += ["--dtypes", args.dtypes] if args.dtypes else []
    cmd += ["--conformance-deadline", str(args.deadline)] if args.deadline else []
    cmd += ["--conformance-test-timeout", str(args.test_timeout)] if args.test_timeout else []
    cmd += ["--min-numeric", str(args.min_numeric)]
    cmd += ["-k", args.keyword] if args.keyword else []
    cmd += ["--conformance-shard", args.shard] if args.shard else []
    cmd += ["-n", str(args.workers), "--dist", "load"] if args.workers > 1 else []
    return cmd + list(args.pytest_arg)


def compile_cache_dir(value: str) -> Path | None:
    if value == "none":
        return None
    if value == "auto":
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "electra-conformance" / "jax"
    return Path(value)


def environment_for(impl: str, compile_cache: Path | None = None) -> dict:
    """The pytest process's environment. With ``compile_cache``, JAX keeps every compiled program there
    (also the per-operation ones of eager calls): implementations drawing the same shapes, and later runs,
    load them instead of compiling again. The key covers the program, JAX version and backend."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if compile_cache is not None and "JAX_COMPILATION_CACHE_DIR" not in env:
        env.update(JAX_COMPILATION_CACHE_DIR=str(compile_cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    env.pop("TF_USE_LEGACY_KERAS", None)  # our impl_tf is Keras 3; only adapters that need tf-keras set it
    env.update(BUILTIN_ENVIRONMENT.get(impl, {}))
    return env


class Progress:
    """Follows the plugin's JSON-lines progress file and prints one status line."""

    def __init__(self, impl: str, path: Path):
        self.impl, self.path, self.offset = impl, path, 0
        self.total = self.done = self.failures = 0
        self.family = ""
        self.tty = sys.stdout.isatty()
        self.last_print = 0.0
        self.last_text = ""

    def poll(self, final: bool = False) -> None:
        import json

        if self.path.exists():
            with open(self.path, encoding="utf-8") as f:
                f.seek(self.offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            self.offset += len(complete.encode("utf-8"))
            for line in complete.splitlines():
                event = json.loads(line)
                self.total = event.get("total", self.total)
                self.done = event.get("done", self.done)
                self.failures = event.get("failures", self.failures)
                self.family = event.get("family", self.family)
        now = time.monotonic()
        text = (f"[{self.impl}] {self.done}/{self.total or '?'} tests, family {self.family or '-'}, "
                f"{self.failures} failure(s)")
        changed = text != self.last_text
        if final or (self.tty and changed) or (changed and now - self.last_print >= 10) or now - self.last_print >= 60:
            self.last_print, self.last_text = now, text
            if self.tty:
                print("\r" + text.ljust(90), end="\n" if final else "", flush=True)
            else:
                print(text, flush=True)


#: after SIGINT, the seconds a pytest process has to write its partial report before it is killed
GRACE_S = 60.0


class StopRequest:
    """SIGINT or SIGTERM to the CLI: start no more processes, interrupt the running ones (pytest then
    writes the partial report of each), merge what was written, and exit with 128 + the signal."""

    def __init__(self):
        self.signum: int | None = None

    def install(self) -> dict:
        """Handle SIGINT and SIGTERM; returns the previous handlers (for restore)."""
        return {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            print(f"\n{signal.Signals(signum).name}: stopping the running implementations; their partial "
                  f"reports are merged", flush=True)


class ImplementationRun:
    """One implementation's pytest process, its log, progress file and per-implementation report."""

    def __init__(self, args, impl: str, parts: Path):
        safe = impl.replace(":", "_").replace("/", "_")
        self.impl = impl
        self.report, self.progress, self.log = parts / f"{safe}.json", parts / f".{safe}.progress", parts / f"{safe}.log"
        for path in (self.report, self.progress):
            path.unlink(missing_ok=True)
        self.cmd = pytest_command(args, impl, self.report, self.progress)
        self.watcher = Progress(impl, self.progress)
        self.compile_cache = args.compile_cache
        # past this the process is stopped from outside (an adapter call stuck where no in-process time
        # limit reaches): the deadline, then a test's time limit, then the grace
        self.hard_limit = (args.deadline + (args.test_timeout or 0) + GRACE_S) if args.deadline else None
        self.proc = None
        self.returncode = None
        self.started_at = self.interrupted_at = None

    def start(self) -> None:
        # a session of its own: a terminal's Ctrl-C reaches the CLI only, which forwards it once
        with open(self.log, "w", encoding="utf-8") as log_file:
            self.proc = subprocess.Popen(self.cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=environment_for(self.impl, compile_cache_dir(self.compile_cache)))
        self.started_at = time.monotonic()
        print(f"[{self.impl}] running (pid {self.proc.pid}): {' '.join(self.cmd[2:])}", flush=True)

    def interrupt(self, why: str) -> None:
        """SIGINT once (pytest stops and writes its report), SIGKILL once the grace has passed."""
        if self.proc is None or self.returncode is not None:
            return
        now = time.monotonic()
        if self.interrupted_at is None:
            self.interrupted_at = now
            print(f"[{self.impl}] {why}: interrupting (SIGINT; killed after {GRACE_S:g} s)", flush=True)
            self.proc.send_signal(signal.SIGINT)
        elif now - self.interrupted_at > GRACE_S:
            print(f"[{self.impl}] did not stop within {GRACE_S:g} s of SIGINT: killed", flush=True)
            self.proc.kill()

    def past_hard_limit(self) -> bool:
        return (self.hard_limit is not None and self.started_at is not None
                and time.monotonic() - self.started_at > self.hard_limit)

    def poll(self) -> bool:
        """Prints progress; True once the process has finished."""
        if self.proc is None or self.returncode is not None:
            return self.returncode is not None
        self.watcher.poll()
        code = self.proc.poll()
        if code is not None:
            self.returncode = code
            self.watcher.poll(final=True)
            self.progress.unlink(missing_ok=True)
        return code is not None


def run_all(args, impls: list[str], parts: Path, jobs: int, stop: StopRequest) -> list[ImplementationRun]:
    """Runs one pytest process per implementation, at most ``jobs`` at a time, in the given order;
    on a stop request or past a process's hard limit, interrupts it (see ImplementationRun.interrupt)."""
    runs = [ImplementationRun(args, impl, parts) for impl in impls]
    waiting, active = list(runs), []
    try:
        while waiting or active:
            if stop.signum is not None:
                waiting.clear()
            while waiting and len(active) < jobs:
                run = waiting.pop(0)
                run.start()
                active.append(run)
            for run in active:
                if stop.signum is not None:
                    run.interrupt(signal.Signals(stop.signum).name)
                elif run.past_hard_limit():
                    run.interrupt(f"still running {run.hard_limit:g} s after it started (--deadline "
                                  f"+ --test-timeout + {GRACE_S:g} s)")
            active = [run for run in active if not run.poll()]
            time.sleep(0.5)
    finally:  # an error in this loop must not leave processes behind
        for run in active:
            if run.proc is not None and run.proc.poll() is None:
                run.proc.kill()
    return runs
