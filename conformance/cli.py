"""``electra-conformance``: run the suite (one pytest process per implementation), diff, render, coverage.

    electra-conformance run --impl tf --impl flax [--devices auto] [--profile ci] [--report PATH]
                            [--shard I/N] [--workers N]
    electra-conformance merge A.json B.json ... -o MERGED.json   (implementations, or the N shards of one)
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
import sys
from pathlib import Path

from conformance import render
from conformance.diff import compare, drift_gate, format_diff, only_impl
from conformance.registry import BUILTIN_ADAPTERS, AdapterError, resolve_adapter, unmet_requirements
from conformance.report import merge_reports, read_report, validate_report, write_report
from conformance.runner import StopRequest, run_all
from conformance.shards import ShardError, merge_shards, parse_shard

SUBCOMMANDS = ("run", "diff", "render", "coverage", "draft-expectations", "baseline", "differences", "merge",
               "compat-matrix")


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
    run.add_argument("--shard", default=None, metavar="I/N",
                     help="run slice I of N (1..N) of the selected tests, e.g. one per machine; the report "
                          "records run_info.shard and `merge` joins the N shard reports (one --impl)")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="run the implementation's tests in N pytest-xdist worker processes (-n N --dist load); "
                          "the report is the one a single process writes, but for timings and model-cache "
                          "counters (default 1: no xdist)")
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
    mrg = sub.add_parser("merge", help="one report from reports of different implementations (run apart, e.g. "
                                       "on other machines or stacks' processes) and from the N shard reports "
                                       "of one implementation's run (--shard I/N)")
    mrg.add_argument("reports", nargs="+")
    mrg.add_argument("-o", "--output", required=True)
    cm = sub.add_parser("compat-matrix", help="Markdown: verdicts per pinned stack and what changed from one to the "
                                              "next (docs/compat.md)")
    cm.add_argument("reports", nargs="*", help="reports in stack order, each named by its file stem (default: the "
                                               "committed compat/reports/ of every stack in compat/stacks.yaml)")
    cm.add_argument("-o", "--output", default=None, help="write the Markdown here (default: stdout)")
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
                "draft-expectations": cmd_draft, "baseline": cmd_baseline, "differences": cmd_differences,
                "merge": cmd_merge, "compat-matrix": cmd_compat_matrix}
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


def print_or_write(text: str, output: str | None) -> int:
    """A command's Markdown to stdout, or to ``output`` (its folder must exist); exit status 0."""
    if output is None:
        print(text, end="")
    else:
        writable_path(output, create_folder=False).write_text(text, encoding="utf-8")
        print(f"wrote {output}")
    return 0


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
    if args.shard:
        try:
            parse_shard(args.shard)
        except ShardError as err:
            raise UsageError(str(err)) from None
        if len(impls) > 1:
            raise UsageError(f"--shard {args.shard} applies to a single --impl (a shard report holds one "
                             f"implementation's slice; merge joins the shards of each, then the implementations)")
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: give 1 (one process) or more")
    if args.workers > 1:
        import importlib.util

        if importlib.util.find_spec("xdist") is None:
            raise UsageError(f"--workers {args.workers} needs pytest-xdist: pip install pytest-xdist "
                             f"(or the project's test extra)")
    report_path = writable_path(args.report, create_folder=True)
    not_run = [{"impl": impl, "reason": "needs " + ", ".join(unmet)}
               for impl in impls for unmet in [unmet_requirements(impl)] if unmet]
    for entry in not_run:
        print(f"[{entry['impl']}] not run here: it {entry['reason']}")
    impls = [impl for impl in impls if impl not in {e["impl"] for e in not_run}]
    if not impls:
        raise UsageError("no implementation named can run in this environment (see the lines above)")
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
    merged["run_info"]["not_run"] = not_run
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
    for line in render.stale_lines(merged):
        print(line)
    deadline = merged["run_info"].get("deadline") or {}
    if deadline.get("tests_skipped"):
        print(f"WARNING incomplete run: {deadline['tests_skipped']} test(s) skipped at the deadline "
              f"of {deadline['seconds']:g} s")
    print(f"report: {report_path}\nrendered: {md} and {page}")
    if "shard" in merged["run_info"]:  # one slice decides no verdict: only its own failures fail it
        counts = merged["summary"]
        print(f"shard {args.shard}: the verdict and stale expectations need every shard: electra-conformance merge")
        return status if status else (0 if counts["failed"] == 0 and counts["unexpected_pass"] == 0 else 1)
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
    return print_or_write(text, args.output)


def cmd_merge(args) -> int:
    loaded = [load_report(path) for path in args.reports]
    paths, documents = [], []
    shards: dict[tuple, list] = {}  # the implementations a shard report holds -> [(path, document)]
    for path, document in zip(args.reports, loaded):
        if "shard" in document["run_info"]:
            names = tuple(i["name"] for i in document["run_info"]["implementations"])
            shards.setdefault(names, []).append((path, document))
        else:
            paths.append(path)
            documents.append(document)
    for names, group in shards.items():
        try:
            joined = merge_shards([d for _, d in group], [p for p, _ in group])
        except ShardError as err:
            raise UsageError(str(err)) from None
        machines = {repr(d["run_info"].get("machine")) for _, d in group}
        if len(machines) > 1:
            print(f"note: the shards of {', '.join(names)} ran on different machines; the merged report names "
                  f"the first shard's ({group[0][0]})", file=sys.stderr)
        paths.append(" + ".join(p for p, _ in group))
        documents.append(joined)
    seen: dict[str, str] = {}
    for path, document in zip(paths, documents):
        for info in document["run_info"]["implementations"]:
            if info["name"] in seen:
                raise UsageError(f"{path} and {seen[info['name']]} both hold results of {info['name']!r}; "
                                 f"merge joins reports of different implementations")
            seen[info["name"]] = path
    merged = merge_reports(documents)
    validate_report(merged)
    write_report(merged, writable_path(args.output, create_folder=True))
    print(f"wrote {args.output} ({merged['summary']['total']} results of {', '.join(seen)})")
    return 0


def cmd_compat_matrix(args) -> int:
    from conformance import compat, stacks

    preamble = []
    if args.reports:
        paths = args.reports
    else:
        try:
            known = stacks.load_stacks()
        except (OSError, stacks.StackError) as err:
            raise UsageError(f"compat/stacks.yaml: {err}") from None
        paths = [str(s.report) for s in known if s.report.is_file()]
        if not paths:
            raise UsageError("no committed stack report in compat/reports/; run bash scripts/compat.sh NAME --record")
        preamble = stacks.describe(known)
    documents = [(compat.stack_name(path), load_report(path)) for path in paths]  # not a report: one line, exit 2
    text = compat.markdown(documents, preamble=preamble)
    return print_or_write(text, args.output)


if __name__ == "__main__":
    sys.exit(main())
