"""pytest plugin (entry point ``pytest11``): options, fixtures and reporting of the conformance suite.

Inactive unless ``--impl`` is given, so ordinary pytest runs are unaffected. Fixtures: ``adapter``,
``device``, ``class_name``, ``dtype`` (parametrized together; test ids read impl-device-class-dtype),
``caps`` (the adapter's Capabilities), ``spec``, ``check`` (conformance.checks.Checker) and
``model_cache`` (conformance.model_cache).
"""
from __future__ import annotations

import pytest

from conformance.checks import Checker, TestRecord
from conformance.results import SHARED
from conformance.session import ControllerState, RunState, is_xdist_controller, item_info
from conformance.timeouts import time_limit

STATE = pytest.StashKey["RunState | ControllerState"]()
RECORD = pytest.StashKey[TestRecord]()
MATRIX_PARAMS = ("adapter", "device", "class_name", "dtype")


def pytest_addoption(parser):
    g = parser.getgroup("electra-conformance", "ELECTRA conformance suite")
    g.addoption("--impl", action="append", default=[], metavar="NAME",
                help="implementation to test (repeatable): tf, flax, hf-tf, hf-flax or module:attr")
    g.addoption("--devices", default="auto", metavar="LIST",
                help="auto (devices present) or a comma-separated subset of cpu,gpu,tpu")
    g.addoption("--require-devices", action="store_true",
                help="a requested device that is absent fails the tests instead of skipping them")
    g.addoption("--conformance-profile", default="ci", choices=("dev", "ci", "thorough"),
                help="hypothesis profile: dev (fast), ci (derandomized, default), thorough (many examples)")
    g.addoption("--conformance-report", default=None, metavar="PATH", help="write the JSON report here")
    g.addoption("--expectations", default="auto", metavar="PATH|auto|none",
                help="expected failures; auto = conformance/expectations/<impl>.yaml when present")
    g.addoption("--strict-stale", action="store_true",
                help="expectation entries that match no test fail the run")
    g.addoption("--dtypes", default="float32,bfloat16,float16", metavar="LIST",
                help="computation dtypes for tests that take the `dtype` fixture")
    g.addoption("--conformance-deadline", type=float, default=None, metavar="SECONDS",
                help="tests that would start later than this after the session began are skipped (reason: "
                     "deadline); the report is still written and records the deadline (for time-boxed runs)")
    g.addoption("--min-numeric", type=int, default=1, metavar="N",
                help="an implementation with fewer numeric comparisons against the reference (golden outputs, "
                     "the numpy model) is NOT VALIDATED and the run fails, whatever passed (default 1)")
    g.addoption("--conformance-test-timeout", type=float, default=None, metavar="SECONDS",
                help="a test still running after this long is stopped and fails under its clauses; the run "
                     "goes on (conformance.timeouts: an adapter call that blocks)")
    g.addoption("--conformance-progress", default=None, metavar="PATH",
                help="append JSON-lines progress events here (used by electra-conformance run)")
    g.addoption("--conformance-shard", default=None, metavar="I/N",
                help="run slice I of N (1 <= I <= N) of the selected tests: round robin over the selection "
                     "after -k/-m, the same on every machine; the report records run_info.shard, and "
                     "`electra-conformance merge` joins the N shard reports into the report of one run")


def pytest_configure(config):
    config.addinivalue_line("markers", "clause(*ids): spec clause ids the test exercises")
    config.addinivalue_line("markers", "family(name): clause family (default: from the module name)")
    if config.getoption("impl", default=None):
        # with pytest-xdist (-n N) the controller runs no test: it joins the workers' parts of the report
        state_class = ControllerState if is_xdist_controller(config) else RunState
        config.stash[STATE] = state = state_class.from_config(config)  # pytest.UsageError on bad options
        if isinstance(state, ControllerState):
            config.pluginmanager.register(_ControllerReports(state), "electra-conformance-controller")


def pytest_unconfigure(config):
    state = config.stash.get(STATE, None)
    if state is not None:
        state.restore_hypothesis_profile()  # in-process runs (pytester) must not leak our profile


def _state(config) -> RunState | None:
    """The state of a process that runs tests (None without --impl, and in an xdist controller)."""
    state = config.stash.get(STATE, None)
    return state if isinstance(state, RunState) else None


def frameworks_under_test(config) -> tuple[str, ...]:
    """The frameworks of the implementations this process tests (for collection-time parametrization)."""
    state = _state(config)
    return tuple(sorted({a.framework for a in state.adapters.values()})) if state is not None else ()


def _controller(config) -> ControllerState | None:
    state = config.stash.get(STATE, None)
    return state if isinstance(state, ControllerState) else None


def pytest_generate_tests(metafunc):
    state = _state(metafunc.config)
    names = [n for n in MATRIX_PARAMS if n in metafunc.fixturenames]
    if state is None or not names:
        return
    values, ids = state.matrix(names)
    metafunc.parametrize(names, values, indirect=True, ids=ids)


@pytest.hookimpl(trylast=True)  # after -k/-m/--deselect: a shard is a slice of what they selected
def pytest_collection_modifyitems(session, config, items):
    state = _state(config)
    if state is not None:
        state.select(items)


def pytest_collection_finish(session):
    state = _state(session.config)
    if state is not None:
        state.collector.collected(len(session.items))


def _record(item) -> TestRecord:
    record = item.stash.get(RECORD, None)
    if record is None:
        record = item.stash[RECORD] = TestRecord()
        for mark in item.iter_markers("clause"):
            record.declare(*mark.args)
    return record


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    state = _state(item.config)
    info = item_info(item)
    if state is None or info is None:
        return
    _record(item)
    state.gate(info)  # skips (or fails) absent devices and unsupported classes/dtypes


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    state = _state(item.config)
    limit = item.config.getoption("conformance_test_timeout") if state is not None else None
    with time_limit(limit, f"test {item.name}"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    state = _state(item.config)
    info = item_info(item)
    if state is None or info is None:
        return report
    state.on_report(item, info, _record(item), report, call)
    return report


def pytest_sessionfinish(session, exitstatus):
    state = session.config.stash.get(STATE, None)
    if state is not None:
        state.finish(session)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = config.stash.get(STATE, None)
    if state is not None:
        state.summarize(terminalreporter)


# ----- pytest-xdist controller (its hooks exist only where xdist is installed: optionalhook)
class _ControllerReports:
    """The controller's view of each test report a worker sends (pytest_runtest_logreport has no config)."""

    def __init__(self, state: ControllerState):
        self.state = state

    def pytest_runtest_logreport(self, report):
        self.state.on_report(report)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    controller = _controller(node.config)
    if controller is not None:
        controller.collected(ids)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    controller = _controller(node.config)
    if controller is not None:
        controller.node_down(node, error)


def _param(request, what: str):
    if not hasattr(request, "param"):
        pytest.skip(f"the `{what}` fixture needs the conformance plugin's --impl option")
    return request.param


@pytest.fixture
def adapter(request):
    """The implementation under test (an Adapter, conformance/adapters/base.py)."""
    name = _param(request, "adapter")
    return _state(request.config).adapters[name]


@pytest.fixture
def caps(request, adapter):
    """What the implementation under test declared it offers (conformance.adapters.base.Capabilities)."""
    return _state(request.config).capabilities[adapter.name]


@pytest.fixture
def device(request) -> str:
    """'cpu', 'gpu' or 'tpu'."""
    return _param(request, "device")


@pytest.fixture
def class_name(request) -> str:
    """A spec class name of the adapter's framework, e.g. 'FlaxElectraModel'."""
    return _param(request, "class_name")


@pytest.fixture
def dtype(request) -> str:
    """A computation dtype from --dtypes: 'float32', 'bfloat16' or 'float16'."""
    return _param(request, "dtype")


@pytest.fixture(scope="session")
def spec():
    from spec import load_spec

    return load_spec()


@pytest.fixture
def check(request, adapter, device) -> Checker:
    return Checker(_record(request.node), impl=adapter.name, device=device)


@pytest.fixture
def shared_check(request) -> Checker:
    """A Checker for tests of this project's own shared code (electra_core's ElectraConfig, the
    tokenizer): their results are reported under "shared", never under the --impl that was given."""
    return Checker(_record(request.node), impl=SHARED, device="cpu")


@pytest.fixture
def model_cache(request, adapter, device):
    state = _state(request.config)
    return state.bound_cache(adapter, device, item_info(request.node), _record(request.node))
