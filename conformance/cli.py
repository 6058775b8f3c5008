"""``electra-conformance``: run the suite (one pytest process per implementation), diff, render, coverage.

    electra-conformance run --impl tf --impl flax [--devices auto] [--profile ci] [--report PATH]
    electra-conformance diff OLD.json NEW.json [--drift-ratio R] [--drift-fraction F] [--strict]
    electra-conformance render REPORT.json [-o out.md|out.html]
    electra-conformance coverage REPORT.json [--missing]
    electra-conformance draft-expectations REPORT.json --impl NAME   (entries to edit into an expectations file)
    electra-conformance baseline REPORT.json --impl NAME [-o conformance/baselines/NAME.json]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conformance import render
from conformance.diff import compare, drift_gate, format_diff, only_impl
from conformance.registry import BUILTIN_ADAPTERS, BUILTIN_ENVIRONMENT, AdapterError, resolve_adapter
from conformance.report import merge_reports, read_report, validate_report, write_report

SUBCOMMANDS = ("run", "diff", "render", "coverage", "draft-expectations", "baseline", "differences")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="electra-conformance", description="ELECTRA conformance suite")
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the suite against implementations (default)")
    run.add_argument("--impl", action="append", help="tf, flax, hf-tf, hf-flax or module:attr; repeatable or comma-separated (default: tf,flax)")
    run.add_argument("--devices", default="auto")
    run.add_argument("--require-devices", action="store_true")
    run.add_argument("--profile", default="ci", choices=("dev", "ci", "thorough"))
    run.add_argument("--dtypes", default=None, help="computation dtypes (default: the plugin's)")
    run.add_argument("--report", default="reports/conformance.json", help="merged JSON report path")
    run.add_argument("--expectations", default="auto", help="PATH|auto|none (a PATH needs a single --impl)")
    run.add_argument("--strict-stale", action="store_true")
    run.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    run.add_argument("--pytest-arg", action="append", default=[], help="extra pytest argument (repeatable)")
    run.add_argument("--tests", default="conformance.tests", help="test package (--pyargs) or path to run")
    run.add_argument("--jobs", type=int, default=None,
                     help="implementations run at once, one pytest process each (default: min(#impls, #cpus))")
    run.add_argument("--deadline", type=float, default=None, metavar="SECONDS",
                     help="per implementation: tests not started by then are skipped; the report is still written")
    run.add_argument("--min-numeric", type=int, default=1, metavar="N",
                     help="an implementation with fewer numeric comparisons against the reference is NOT "
                          "VALIDATED and the run fails (default 1)")
    run.add_argument("--test-timeout", type=float, default=900, metavar="SECONDS",
                     help="a test still running after this long is stopped and fails under its clauses "
                          "(default 900; 0: no limit)")
    run.add_argument("--compile-cache", default="auto",
                     help="JAX persistent compilation cache shared by the processes of this and later runs: "
                          "DIR, auto (~/.cache/electra-conformance/jax) or none. An environment that already "
                          "sets JAX_COMPILATION_CACHE_DIR keeps it")
    diff = sub.add_parser("diff", help="compare two reports; exit 1 on regressions, 2 on a file that is not a report")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.add_argument("--drift-ratio", type=float, default=None,
                      help="drift: the error grew more than this factor (default: the spec's drift_ratio)")
    diff.add_argument("--drift-fraction", type=float, default=None,
                      help="drift: and uses more than this share of its allowance (default: the spec's drift_fraction)")
    diff.add_argument("--strict", action="store_true",
                      help="passed -> skipped/absent is a regression even when the new run was narrowed on purpose")
    diff.add_argument("--impl", default=None, help="compare only this implementation's results")
    ren = sub.add_parser("render", help="render a report as Markdown or HTML")
    ren.add_argument("report")
    ren.add_argument("-o", "--output", default=None, help="out.md or out.html (default: Markdown to stdout)")
    cov = sub.add_parser("coverage", help="clause coverage of a report")
    cov.add_argument("report")
    cov.add_argument("--missing", action="store_true", help="list the spec clauses no test exercised")
    base = sub.add_parser("baseline", help="write one implementation's part of a report as its baseline")
    base.add_argument("report")
    base.add_argument("--impl", required=True)
    base.add_argument("-o", "--output", default=None, help="default: conformance/baselines/<impl>.json")
    draft = sub.add_parser("draft-expectations", help="YAML entries for every failure of one impl in a report")
    draft.add_argument("report")
    draft.add_argument("--impl", required=True)
    dif = sub.add_parser("differences", help="Markdown: what one implementation lacks or does differently from the "
                                             "documented API (its declared capabilities, expectations, failures)")
    dif.add_argument("report")
    dif.add_argument("--impl", required=True)
    dif.add_argument("-o", "--output", default=None, help="write the Markdown here (default: stdout)")
    return p


class UsageError(Exception):
    """Input the command cannot use (a report that is not one, a path it cannot write, no --impl):
    one line on stderr and exit status 2, never a traceback, and never 1, which means regressions."""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS + ("-h", "--help"):
        argv.insert(0, "run")
    args = _parser().parse_args(argv)
    commands = {"run": cmd_run, "diff": cmd_diff, "render": cmd_render, "coverage": cmd_coverage,
                "draft-expectations": cmd_draft, "baseline": cmd_baseline, "differences": cmd_differences}
    try:
        return commands[args.command](args)
    except UsageError as err:
        print(f"electra-conformance {args.command}: error: {err}", file=sys.stderr)
        return 2


def load_report(path: str) -> dict:
    """A report read and checked against report.schema.json; UsageError naming the file otherwise."""
    import json

    import jsonschema

    try:
        document = read_report(path)
    except OSError as err:
        raise UsageError(f"cannot read the report {path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path} is not a JSON report (empty, truncated or another format): {err}") from None
    try:
        validate_report(document)
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "the top level"
        raise UsageError(f"{path} is not a conformance report: at {where}: {err.message[:200]}") from None
    return document


def writable_path(path: str, *, create_folder: bool) -> Path:
    """``path`` as a file the command can write: its folder exists (or is created when ``create_folder``)
    and is writable, and the path is not a folder; UsageError naming the path otherwise."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{path} is a folder; give a file name")
    folder = target.parent
    if create_folder:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot create the folder {folder} for {path}: {err.strerror or err}") from None
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: the folder {folder} is not writable")
    return target


def implementations(values: list[str] | None) -> list[str]:
    """--impl values (repeatable, comma-separated) in order, each once; UsageError when none is named."""
    names = [name.strip() for given in (values or ["tf,flax"]) for name in given.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--impl names no implementation ({values!r}); give tf, flax, hf-tf, hf-flax or module:attr")
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        print(f"note: --impl named {', '.join(sorted({n for n in names if names.count(n) > 1}))} more than once; "
              f"each runs once", file=sys.stderr)
    return unique


# ----- run
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


def cmd_run(args) -> int:
    impls = implementations(args.impl)
    for impl in impls:  # a module:attr that is no adapter: one line now, not a pytest error in a log
        if impl not in BUILTIN_ADAPTERS:  # (its pytest process checks its Capabilities against the spec)
            try:
                resolve_adapter(impl, check=False)
            except AdapterError as err:
                raise UsageError(str(err)) from None
    if args.expectations not in ("auto", "none") and len(impls) > 1:
        raise UsageError("--expectations PATH applies to a single --impl; use auto (one file per implementation)")
    report_path = writable_path(args.report, create_folder=True)
    parts = report_path.with_name(report_path.stem + ".parts")  # per-implementation reports and logs
    parts.mkdir(parents=True, exist_ok=True)
    jobs = max(1, args.jobs or min(len(impls), os.cpu_count() or 1))
    documents, status = [], 0
    stop = StopRequest()
    previous = stop.install()
    try:
        runs = run_all(args, impls, parts, jobs, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for run in runs:
        impl, rc, report, log = run.impl, run.returncode, run.report, run.log
        if not report.exists():
            tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
            print(f"[{impl}] pytest exited with {rc} without a report; last lines of {log}:\n{tail}")
            status = max(status, rc if rc and rc > 0 else 1)  # killed by a signal: rc < 0
            continue
        documents.append(read_report(report))
        status = max(status, 0 if rc == 0 else 1)
        print(f"[{impl}] pytest exit code {rc}; report {report}; log {log}")
    if stop.signum is not None:
        status = 128 + stop.signum
    if not documents:
        return status or 1
    merged = merge_reports(documents)
    validate_report(merged)
    write_report(merged, report_path)
    md, page = report_path.with_suffix(".md"), report_path.with_suffix(".html")
    md.write_text(render.markdown(merged), encoding="utf-8")
    page.write_text(render.html(merged), encoding="utf-8")
    print("\nELECTRA conformance matrix")
    print("\n".join(render.matrix_lines(merged)))
    failures = render.failure_lines(merged)
    if failures:
        print("\n".join([""] + failures))
    for entry in merged["expectations"]["stale"]:
        print(f"WARNING stale expectation ({entry['impl']}): {entry['clause']} @ {entry['test']}")
    deadline = merged["run_info"].get("deadline") or {}
    if deadline.get("tests_skipped"):
        print(f"WARNING incomplete run: {deadline['tests_skipped']} test(s) skipped at the deadline "
              f"of {deadline['seconds']:g} s")
    print(f"report: {report_path}\nrendered: {md} and {page}")
    return status if status else (0 if merged["summary"]["ok"] else 1)


# ----- diff, render, coverage
def cmd_diff(args) -> int:
    old, new = load_report(args.old), load_report(args.new)
    if args.impl:
        old, new = only_impl(old, args.impl), only_impl(new, args.impl)
    gate = drift_gate(args.drift_ratio, args.drift_fraction)
    diff = compare(old, new, gate=gate, strict=args.strict)
    print("\n".join(format_diff(diff, gate)))
    return 1 if diff.regressions else 0


def cmd_render(args) -> int:
    document = load_report(args.report)
    if args.output is None:
        print(render.markdown(document), end="")
        return 0
    output = writable_path(args.output, create_folder=False)
    text = render.html(document) if args.output.endswith((".html", ".htm")) else render.markdown(document)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def cmd_coverage(args) -> int:
    cov = load_report(args.report)["coverage"]
    print(f"{cov['exercised_count']} of {cov['spec_count']} spec clauses exercised; "
          f"{len(cov['missing'])} missing; {len(cov['unknown'])} exercised ids not in the spec")
    if args.missing:
        print("\n".join("  " + c for c in cov["missing"]))
    return 0


def cmd_baseline(args) -> int:
    document = only_impl(load_report(args.report), args.impl)
    if not document["results"]:
        print(f"{args.report} has no results of {args.impl!r}")
        return 1
    validate_report(document)
    output = writable_path(str(args.output or Path(__file__).parent / "baselines" / f"{args.impl}.json"),
                           create_folder=False)
    write_report(document, output)
    print(f"wrote {output} ({document['summary']['total']} results, ok={document['summary']['ok']})")
    return 0


def cmd_draft(args) -> int:
    import yaml

    from conformance.expectations import draft_entries

    entries = draft_entries(load_report(args.report), args.impl)
    print(yaml.safe_dump({"implementation": args.impl, "expected_failures": entries}, sort_keys=False, width=120))
    return 0


def cmd_differences(args) -> int:
    from conformance.differences import DifferencesError, markdown

    try:
        text = markdown(load_report(args.report), args.impl)
    except DifferencesError as err:
        raise UsageError(f"{args.report}: {err}") from None
    if args.output is None:
        print(text, end="")
    else:
        writable_path(args.output, create_folder=False).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
