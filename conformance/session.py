"""State of one conformance run inside pytest: adapters, devices, expectations, results, report."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import time
from pathlib import Path

import pytest

from conformance import devices as _devices
from conformance.expectations import ExpectationsError, ExpectationTracker, resolve_expectations
from conformance.model_cache import BoundModelCache, ModelStore
from conformance.profiles import current_profile_name, load_profile
from conformance import registry
from conformance import shards as _shards
from conformance.registry import AdapterError, resolve_adapter
from conformance.results import SHARED, Collector, ItemInfo, failed_clauses, failure_text, unsupported

#: xdist: the workeroutput key of a worker's part of the report, and the teardown report attribute that
#: carries a finished test's progress event to the controller
PART_KEY = "electra_conformance_part"
PROGRESS_ATTR = "electra_conformance_progress"


def is_xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


def is_xdist_controller(config) -> bool:
    """The process that distributes the tests to pytest-xdist workers (``-n N``) and runs none itself."""
    option = config.option
    return (not is_xdist_worker(config) and config.pluginmanager.hasplugin("xdist")
            and getattr(option, "dist", "no") != "no" and bool(getattr(option, "tx", None))
            and not getattr(option, "collectonly", False))

DEADLINE_REASON = "run deadline reached"
_INFO = pytest.StashKey[object]()
#: the "implementation" of tests that take no adapter (spec and tokenizer checks): run once per process


def item_info(item) -> ItemInfo | None:
    """The matrix coordinates of a test item (impl SHARED for tests without an adapter)."""
    cached = item.stash.get(_INFO, False)
    if cached is not False:
        return cached
    params = getattr(getattr(item, "callspec", None), "params", {})
    stripped = item.name
    if "adapter" in params:
        head = [params["adapter"]] + ([params["device"]] if "device" in params else [])
        rest = [params[k] for k in ("class_name", "dtype") if k in params]
        stripped = item.name.replace("-".join(head + rest), "-".join(rest)).replace("--", "-")
        stripped = stripped.replace("[-", "[").replace("-]", "]").replace("[]", "")
    marker = item.get_closest_marker("family")
    module = getattr(getattr(item, "module", None), "__name__", "unknown").rsplit(".", 1)[-1]
    family = marker.args[0] if marker else module.removeprefix("test_")
    info = ItemInfo(impl=params.get("adapter", SHARED), device=params.get("device"),
                    class_name=params.get("class_name"), dtype=params.get("dtype"), family=family,
                    stripped_id=stripped, function_name=getattr(item, "originalname", item.name))
    item.stash[_INFO] = info
    return info


class RunState:
    def __init__(self, config, adapters: dict, requested_devices, dtypes, expectations: dict, profile: dict):
        self.config = config
        self.adapters = adapters
        self.present = {name: list(a.available_devices()) for name, a in adapters.items()}
        self.capabilities = {name: dataclasses.replace(a.capabilities(), impl=name) for name, a in adapters.items()}
        self.feature_sets = {name: set() for name in adapters}  # per impl: (class, features) of each call made
        self.requested_devices = requested_devices
        self.dtypes = dtypes
        self.expectations = expectations  # impl -> ImplExpectations
        self.trackers = {impl: ExpectationTracker(e.entries) for impl, e in expectations.items()}
        self.profile = profile
        self.worker = is_xdist_worker(config)
        self.collector = _WorkerCollector() if self.worker else Collector(config.getoption("conformance_progress"))
        self.shard = None  # (index, count) of --conformance-shard
        self.selected, self.collection, self.positions = 0, "", {}  # the selection this run's tests come from
        self.store = ModelStore()
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.t0 = time.monotonic()
        self.deadline_skips = 0
        self.document = None

    @classmethod
    def from_config(cls, config) -> "RunState":
        adapters = {}
        try:
            requested = _devices.parse_devices(config.getoption("devices"))
            _devices.prepare_process(requested)  # a CPU mesh's devices, before an adapter starts a framework
            for impl in config.getoption("impl"):
                adapter = resolve_adapter(impl)
                if adapter.name in adapters:
                    raise AdapterError(f"--impl {impl}: an adapter named {adapter.name!r} is already selected")
                adapters[adapter.name] = adapter
            dtypes = _dtypes_option(config)
            expectations = resolve_expectations(config.getoption("expectations"), list(adapters),
                                                {name: a.framework_versions() for name, a in adapters.items()})
            shard = _shard_option(config)
        except (AdapterError, ValueError, ExpectationsError) as err:
            raise pytest.UsageError(str(err)) from None
        previous = current_profile_name()
        profile = load_profile(config.getoption("conformance_profile"))
        state = cls(config, adapters, requested, dtypes, expectations, profile)
        state.previous_profile = previous
        state.shard = shard
        return state

    def select(self, items: list) -> None:
        """At the end of collection (after -k/-m/--deselect): remember the selection and where each test
        sits in it (what merging shards or xdist parts orders by); with --conformance-shard keep the
        tests of this slice only, deselecting the others (shards.shard_of)."""
        from conformance.shards import collection_digest, shard_of

        nodeids = [item.nodeid for item in items]
        self.selected, self.collection = len(nodeids), collection_digest(nodeids)
        self.positions = {nodeid: k for k, nodeid in enumerate(nodeids)}
        if self.shard is not None:
            index, count = self.shard
            keep = [item for k, item in enumerate(items) if shard_of(k, count) == index]
            if len(keep) < len(items):
                kept = set(map(id, keep))
                self.config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
                items[:] = keep

    def restore_hypothesis_profile(self) -> None:
        from hypothesis import settings

        settings.load_profile(self.previous_profile)

    # ----- collection
    def classes_for(self, adapter) -> list[str]:
        return registry.spec_class_names(adapter.framework)

    def matrix(self, names: list[str]):
        values, ids = [], []
        for impl, adapter in self.adapters.items():
            devs = _devices.devices_to_test(self.requested_devices, self.present[impl]) if "device" in names else [None]
            classes = self.classes_for(adapter) if "class_name" in names else [None]
            dtypes = self.dtypes if "dtype" in names else [None]
            for dev in devs:
                for cls in classes:
                    for dt in dtypes:
                        row = {"adapter": impl, "device": dev, "class_name": cls, "dtype": dt}
                        values.append(tuple(row[n] for n in names))
                        ids.append("-".join(str(row[n]) for n in names))
        return values, ids

    # ----- running
    def gate(self, info: ItemInfo) -> None:
        adapter = self.adapters.get(info.impl)
        if adapter is None:
            return
        deadline = self.config.getoption("conformance_deadline")
        if deadline is not None and time.monotonic() - self.t0 > deadline:
            self.deadline_skips += 1
            pytest.skip(f"{DEADLINE_REASON} ({deadline:g} s, --conformance-deadline)")
        if info.device is not None and info.device not in self.present[info.impl]:
            reason = _devices.absence_reason(info.impl, info.device, self.present[info.impl])
            if self.config.getoption("require_devices"):
                pytest.fail(reason + " (--require-devices)", pytrace=False)
            pytest.skip(reason)
        if info.class_name is not None or info.dtype is not None:
            caps = self.capabilities[info.impl]
            cls = info.class_name or caps.classes[0]
            caps.skip_unless(f"class:{cls}", f"dtype:{info.dtype or 'float32'}")
            support = adapter.supports(cls, info.dtype or "float32", info.device or "cpu")
            if not support.ok:
                pytest.skip(unsupported(info.impl, f"{cls} ({info.dtype or 'float32'}, {info.device or 'cpu'}): "
                                                   f"{support.reason}"))

    def bound_cache(self, adapter, device, info, record) -> BoundModelCache:
        return BoundModelCache(self.store, adapter, self.capabilities[adapter.name], device,
                               info.family if info else "unknown", record)

    def on_report(self, item, info: ItemInfo, record, report, call) -> None:
        tracker = self.trackers.get(info.impl) or ExpectationTracker([])
        expectation, outcome = None, None
        where = (info.stripped_id, info.function_name)
        if report.when == "call":
            if report.failed:
                clauses = failed_clauses(call.excinfo, record.clauses)
                text = failure_text(report, call.excinfo)
                expectation = tracker.find_failure(*where, clauses, info.device, info.dtype, text)
                if expectation is not None:
                    report.outcome = "skipped"
                    report.wasxfail = f"expected failure of {expectation.clause}: {expectation.reason}"
            elif report.passed and not record.clauses:
                report.outcome = "failed"
                report.longrepr = ("conformance test declared no clause id: call check.clause(...) or use "
                                   "@pytest.mark.clause(...) so results can be attributed")
            elif report.passed:
                expectation = tracker.find_pass(*where, record.clauses, info.device, info.dtype)
                if expectation is not None:
                    report.outcome, outcome = "failed", "unexpected_pass"
                    report.longrepr = (
                        f"unexpected pass: expectations entry {expectation.label()} says clause "
                        f"{expectation.clause} fails here ({expectation.reason}), but the test passed. "
                        f"If the implementation was fixed, remove the entry from the expectations file.")
            # a test skipped from its body (a feature or a comparison this environment lacks) leaves the
            # strict entries that name it unused but not stale, as a skip at setup does
            tracker.note_seen(*where, record.clauses, info.device, info.dtype,
                              skipped=report.skipped and expectation is None)
            if not report.skipped and info.impl in self.feature_sets:
                self.feature_sets[info.impl].update(record.feature_sets)
        elif report.when == "setup" and report.skipped:
            tracker.note_seen(*where, record.clauses, info.device, info.dtype, skipped=True)
        self.collector.phase(item, info, record, report, call, expectation=expectation, outcome=outcome)
        if self.worker and report.when == "teardown" and self.collector.events:
            setattr(report, PROGRESS_ATTR, self.collector.events.pop())  # the controller writes progress

    # ----- end of run
    def finish(self, session) -> None:
        from conformance import report as _report

        self.document = _report.build_report(self, session)
        if self.worker:  # an xdist worker: its part goes to the controller, which writes the report
            self.config.workeroutput[PART_KEY] = {
                "report": json.dumps(self.document, default=str),
                "positions": [self.positions[r["nodeid"]] for r in self.document["results"]]}
            return
        conclude(self.config, session, self.document)

    def summarize(self, terminalreporter) -> None:
        if not self.worker:
            print_summary(terminalreporter, self.config, self.document)


def _dtypes_option(config) -> list[str]:
    from spec import load_spec

    dtypes = [d.strip() for d in config.getoption("dtypes").split(",") if d.strip()]
    known = load_spec().tolerances.dtypes
    bad = [d for d in dtypes if d not in known]
    if bad or not dtypes:
        raise ValueError(f"--dtypes: unknown dtype(s) {bad}; expected a subset of {', '.join(known)}")
    return dtypes


def _shard_option(config) -> tuple[int, int] | None:
    from conformance.shards import parse_shard

    value = config.getoption("conformance_shard", None)
    return parse_shard(value) if value else None


class _WorkerCollector(Collector):
    """An xdist worker's collector: no progress file; each finished test's event is kept for its teardown
    report, which carries it to the controller (RunState.on_report)."""

    def __init__(self):
        super().__init__(None)
        self.events: list[dict] = []

    def progress(self, **event) -> None:
        if event.get("event") == "test":
            self.events.append({k: event[k] for k in ("family", "impl", "outcome", "test")})


def conclude(config, session, document: dict) -> None:
    """Write the report and set the exit status: stale expectations under --strict-stale, and a run that
    failed nothing but is NOT VALIDATED, fail it. A shard alone decides neither (only the merged shards
    hold every test): its exit status says whether any of its tests failed."""
    from conformance import report as _report

    path = config.getoption("conformance_report")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _report.write_report(document, path)
    if "shard" in document["run_info"]:
        return
    stale = document["expectations"]["stale"]
    if stale and config.getoption("strict_stale") and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if not document["summary"]["ok"] and session.exitstatus == 0:  # NOT VALIDATED: nothing failed,
        session.exitstatus = pytest.ExitCode.TESTS_FAILED        # but nothing numeric was checked


def print_summary(terminalreporter, config, document: dict | None) -> None:
    """The matrix, the verdicts, stale expectations, a deadline's skips and the clause coverage."""
    from conformance import render

    if document is None or not document["results"]:
        return
    tr = terminalreporter
    tr.write_sep("=", "ELECTRA conformance matrix")
    for line in render.matrix_lines(document):
        tr.write_line(line)
    shard = document["run_info"].get("shard")
    if shard:
        tr.write_line(f"shard {shard['index']}/{shard['count']}: the verdict, stale expectations and --strict-stale "
                      f"need every shard: electra-conformance merge SHARD1.json ... -o MERGED.json", yellow=True)
    else:
        for line in render.stale_lines(document):
            tr.write_line(line, yellow=True)
    skipped = (document["run_info"].get("deadline") or {}).get("tests_skipped")
    if skipped:
        tr.write_line(f"WARNING incomplete run: {skipped} test(s) skipped at the deadline of "
                      f"{config.getoption('conformance_deadline'):g} s", yellow=True)
    coverage = document["coverage"]
    tr.write_line(f"clause coverage: {coverage['exercised_count']} of {coverage['spec_count']} spec clauses "
                  f"exercised")
    path = config.getoption("conformance_report")
    if path:
        tr.write_line(f"conformance report written to {path}")


class ControllerState:
    """The pytest-xdist controller of a conformance run (``-n N``): it runs no test. It writes the progress
    file from the workers' teardown reports, takes each worker's part of the report when the worker goes
    down (``workeroutput``), and joins them (shards.join_parts) into the report a single process would
    have written: results in selection order, every view recomputed, stale expectations those stale in
    every worker."""

    def __init__(self, config):
        self.config = config
        self.shard = _shard_option(config)
        self.collector = Collector(config.getoption("conformance_progress"))
        self.parts: dict[str, dict] = {}  # worker id -> workeroutput[PART_KEY]
        self.lost: list[str] = []  # workers that went down without a part
        self.total: int | None = None
        self.done = self.failures = 0
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.t0 = time.monotonic()
        self.document = None

    @classmethod
    def from_config(cls, config) -> "ControllerState":
        # the options a worker would refuse, checked here so that a mistake is one line, not a worker's
        # traceback: an adapter of another package is created (never asked for its devices: that would
        # start a backend here); a built-in one whose requirements hold is left to the workers to import
        try:
            for impl in config.getoption("impl"):
                if impl not in registry.BUILTIN_ADAPTERS or registry.unmet_requirements(impl):
                    resolve_adapter(impl)
            _devices.parse_devices(config.getoption("devices"))
            _dtypes_option(config)
            return cls(config)
        except (AdapterError, ValueError) as err:
            raise pytest.UsageError(str(err)) from None

    def restore_hypothesis_profile(self) -> None:
        pass  # the controller loads none

    def collected(self, ids) -> None:
        if self.total is None:
            self.total = len(ids)
            self.collector.collected(len(ids))

    def on_report(self, report) -> None:
        event = getattr(report, PROGRESS_ATTR, None)
        if not event:
            return
        self.done += 1
        self.failures += event["outcome"] in ("failed", "unexpected_pass")
        self.collector.progress(event="test", done=self.done, total=self.total or 0, failures=self.failures, **event)

    def node_down(self, node, error) -> None:
        worker = node.gateway.id
        part = (getattr(node, "workeroutput", None) or {}).get(PART_KEY)
        if part is not None:
            self.parts.setdefault(worker, part)
        elif worker not in self.parts and worker not in self.lost:
            self.lost.append(worker)

    def finish(self, session) -> None:
        from conformance import report as _report

        if not self.parts:
            return  # no worker got to the end of a session (they failed to start): nothing to report
        workers = sorted(self.parts, key=lambda w: (len(w), w))
        documents = [json.loads(self.parts[w]["report"]) for w in workers]
        positions = [self.parts[w]["positions"] for w in workers]
        document = _shards.join_parts(documents, positions)
        info = document["run_info"]
        info.update(start=self.started.isoformat(), end=_dt.datetime.now(_dt.timezone.utc).isoformat(),
                    duration_s=round(time.monotonic() - self.t0, 3),
                    pytest_args=[str(a) for a in self.config.invocation_params.args],
                    workers={"count": len(self.config.option.tx), "parts": len(documents)})
        lost = [f"xdist worker {w} went down without its part of the report: its tests are missing"
                for w in self.lost]
        silent = len(self.config.option.tx) - len(documents) - len(self.lost)
        if silent > 0:  # an interrupted run: the workers still running were stopped before they sent a part
            lost.append(f"{silent} xdist worker(s) sent no part of the report: their tests are missing")
        interrupted = [_report.INTERRUPTED_REASON] if session.exitstatus == pytest.ExitCode.INTERRUPTED else []
        info["narrowed"] = _shards.order_reasons(info["narrowed"] + lost + interrupted)
        shard = next((d["run_info"]["shard"] for d in documents if "shard" in d["run_info"]), None)
        if shard is not None:
            document["run_info"]["shard"] = {**shard, "positions": sorted(p for ps in positions for p in ps)}
        self.document = document
        conclude(self.config, session, document)

    def summarize(self, terminalreporter) -> None:
        print_summary(terminalreporter, self.config, self.document)
