"""State of one conformance run inside pytest: adapters, devices, expectations, results, report."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from pathlib import Path

import pytest

from conformance import devices as _devices
from conformance.expectations import ExpectationsError, ExpectationTracker, resolve_expectations
from conformance.model_cache import BoundModelCache, ModelStore
from conformance.profiles import current_profile_name, load_profile
from conformance import registry
from conformance.registry import AdapterError, resolve_adapter
from conformance.results import SHARED, Collector, ItemInfo, failed_clauses, failure_text, unsupported

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
        self.feature_sets = {name: set() for name in adapters}  # per impl: the features of each call made
        self.requested_devices = requested_devices
        self.dtypes = dtypes
        self.expectations = expectations  # impl -> (path, entries)
        self.trackers = {impl: ExpectationTracker(entries) for impl, (_, entries) in expectations.items()}
        self.profile = profile
        self.collector = Collector(config.getoption("conformance_progress"))
        self.store = ModelStore()
        self.started = _dt.datetime.now(_dt.timezone.utc)
        self.t0 = time.monotonic()
        self.deadline_skips = 0
        self.document = None

    @classmethod
    def from_config(cls, config) -> "RunState":
        adapters = {}
        try:
            for impl in config.getoption("impl"):
                adapter = resolve_adapter(impl)
                if adapter.name in adapters:
                    raise AdapterError(f"--impl {impl}: an adapter named {adapter.name!r} is already selected")
                adapters[adapter.name] = adapter
            requested = _devices.parse_devices(config.getoption("devices"))
            dtypes = [d.strip() for d in config.getoption("dtypes").split(",") if d.strip()]
            from spec import load_spec

            known = load_spec().tolerances.dtypes
            bad = [d for d in dtypes if d not in known]
            if bad or not dtypes:
                raise ValueError(f"--dtypes: unknown dtype(s) {bad}; expected a subset of {', '.join(known)}")
            expectations = resolve_expectations(config.getoption("expectations"), list(adapters))
        except (AdapterError, ValueError, ExpectationsError) as err:
            raise pytest.UsageError(str(err)) from None
        previous = current_profile_name()
        profile = load_profile(config.getoption("conformance_profile"))
        state = cls(config, adapters, requested, dtypes, expectations, profile)
        state.previous_profile = previous
        return state

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
            tracker.note_seen(*where, record.clauses, info.device, info.dtype, skipped=False)
            if not report.skipped and info.impl in self.feature_sets:
                self.feature_sets[info.impl].update(record.feature_sets)
        elif report.when == "setup" and report.skipped:
            tracker.note_seen(*where, record.clauses, info.device, info.dtype, skipped=True)
        self.collector.phase(item, info, record, report, call, expectation=expectation, outcome=outcome)

    # ----- end of run
    def finish(self, session) -> None:
        from conformance import report as _report

        self.document = _report.build_report(self, session)
        path = self.config.getoption("conformance_report")
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _report.write_report(self.document, path)
        stale = self.document["expectations"]["stale"]
        if stale and self.config.getoption("strict_stale") and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if not self.document["summary"]["ok"] and session.exitstatus == 0:  # NOT VALIDATED: nothing failed,
            session.exitstatus = pytest.ExitCode.TESTS_FAILED             # but nothing numeric was checked

    def summarize(self, terminalreporter) -> None:
        from conformance import render

        if self.document is None or not self.document["results"]:
            return
        tr = terminalreporter
        tr.write_sep("=", "ELECTRA conformance matrix")
        for line in render.matrix_lines(self.document):
            tr.write_line(line)
        for entry in self.document["expectations"]["stale"]:
            tr.write_line(f"WARNING stale expectation ({entry['impl']}, {entry['file']}): clause "
                          f"{entry['clause']} @ {entry['test']} matched no test", yellow=True)
        if self.deadline_skips:
            tr.write_line(f"WARNING incomplete run: {self.deadline_skips} test(s) skipped at the deadline of "
                          f"{self.config.getoption('conformance_deadline'):g} s", yellow=True)
        coverage = self.document["coverage"]
        tr.write_line(f"clause coverage: {coverage['exercised_count']} of {coverage['spec_count']} spec clauses "
                      f"exercised")

        path = self.config.getoption("conformance_report")
        if path:
            tr.write_line(f"conformance report written to {path}")
