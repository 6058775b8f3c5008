"""A tiny fake adapter and conftest for the plugin's pytester tests (no TF/JAX needed)."""
from __future__ import annotations

import json

FAKE_ADAPTER = '''
import inspect
import numpy as np
from conformance.adapters.base import Capabilities, Handle, RunResult, Support

class FakeAdapter:
    name = "fake"
    framework = "flax"
    builds = 0

    def version(self):
        return "0.0-fake"

    def framework_versions(self):
        return {"numpy": np.__version__}

    def available_devices(self):
        return ["cpu"]

    def capabilities(self):
        return Capabilities(classes=("FakeModel", "FakeHead"), inputs=frozenset({"x"}), flags=frozenset(),
                            outputs=frozenset({"y"}), dtypes=("float32", "bfloat16", "float16"))

    def supports(self, class_name, dtype="float32", device="cpu"):
        if class_name == "FakeHead" and dtype != "float32":
            return Support(False, "FakeHead computes in float32 only")
        return Support(True)

    def constructor_signature(self, class_name):
        return inspect.Signature()

    def call_signature(self, class_name):
        return inspect.Signature()

    def build(self, class_name, config, *, seed=0, dtype="float32", device="cpu"):
        type(self).builds += 1
        return Handle(class_name, dict(config), dtype, device, native={"scale": 2.0})

    def get_weights(self, handle):
        return {"scale": np.asarray(handle.native["scale"])}

    def load_weights(self, handle, state_dict):
        handle.native["scale"] = float(state_dict["scale"])

    def run(self, handle, inputs, *, flags=None, train=False, seed=None, compiled=False,
            tuple_form=False, input_format="kwargs"):
        return RunResult({"y": np.asarray(inputs["x"], dtype=np.float64) * handle.native["scale"]})
'''

CONFTEST = '''
from itertools import combinations

import pytest
from conformance import checks, pairs, registry

_patch = pytest.MonkeyPatch()

def _every_pair_meets(class_name, features):
    return {(a, b) for a, b in combinations(sorted(features), 2) if pairs._option(a) != pairs._option(b)}

def pytest_configure(config):
    # Tolerances and the class list come from the spec; pin them so these tests do not depend on it.
    _patch.setattr(checks, "spec_tolerance", lambda kind, dtype, device, field: checks.Tolerance(1e-6, 1e-6))
    _patch.setattr(registry, "spec_class_names", lambda framework: ["FakeModel", "FakeHead"])
    # the fake classes have no parts in combinations.yaml: every two features of a call meet in them
    _patch.setattr(pairs, "met", _every_pair_meets)

def pytest_unconfigure(config):
    _patch.undo()
'''

SUITE = '''
import numpy as np
import pytest

def test_scale(adapter, device, check, model_cache):
    handle = model_cache.get("FakeModel", {"hidden_size": 4})
    out = model_cache.run(handle, {"x": np.arange(3.0)}, compiled=True)
    check.allclose(out.fields["y"], 2.0 * np.arange(3.0), clause="fake.scale", kind="logits", field="y")

def test_classes(adapter, class_name, check):
    check.that(class_name.startswith("Fake"), clause="fake.class", message="class names start with Fake")

@pytest.mark.clause("fake.dtype")
def test_dtypes(adapter, class_name, dtype, device):
    assert dtype in ("float32", "bfloat16", "float16")
'''


def make_suite(pytester, suite: str = SUITE) -> None:
    """Write the fake adapter, the conftest and a test module into the pytester directory."""
    pytester.makepyfile(fake_adapter=FAKE_ADAPTER, conftest=CONFTEST, test_suite=suite)
    pytester.syspathinsert()


def run_suite(pytester, *args: str, report: str | None = "report.json"):
    """Run the suite in-process with the fake adapter; returns (RunResult, report dict or None)."""
    # the fake suites compare with no reference (kind "golden"): --min-numeric 0 unless a test sets it
    floor = [] if any(str(a).startswith("--min-numeric") for a in args) else ["--min-numeric", "0"]
    extra = ["--impl", "fake_adapter:FakeAdapter", "-p", "no:cacheprovider",
             "-W", "ignore::pytest.PytestAssertRewriteWarning", *floor, *args]
    if report:
        extra += ["--conformance-report", str(pytester.path / report)]
    result = pytester.runpytest_inprocess(*extra)
    path = pytester.path / report if report else None
    document = json.loads(path.read_text()) if path and path.exists() else None
    return result, document
