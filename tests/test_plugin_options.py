"""The conformance plugin: options, parametrization, devices, report and matrix (pytester, fake adapter)."""
from __future__ import annotations

import pytest
from plugin_support import make_suite, run_suite

from conformance.report import validate_report


@pytest.fixture
def suite(pytester):
    make_suite(pytester)
    return pytester


def test_ids_carry_impl_device_class_and_dtype(suite):
    result, _ = run_suite(suite, "--collect-only", "-q", report=None)
    out = result.stdout.str()
    assert "test_scale[fake-cpu]" in out
    assert "test_classes[fake-cpu-FakeHead]" in out
    assert "test_dtypes[fake-cpu-FakeModel-bfloat16]" in out


def test_without_impl_the_plugin_stays_inactive(suite):
    result = suite.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=3)
    assert "ELECTRA conformance matrix" not in result.stdout.str()


def test_unknown_impl_is_a_usage_error_listing_builtins(suite):
    result = suite.runpytest_inprocess("--impl", "nosuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "nosuch" in err and "hf-flax" in err and "module:attr" in err


def test_missing_module_and_attribute_are_named(suite):
    result = suite.runpytest_inprocess("--impl", "not_a_module_xyz:Adapter")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "not_a_module_xyz" in result.stderr.str()
    result = suite.runpytest_inprocess("--impl", "fake_adapter:Nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "no attribute 'Nope'" in result.stderr.str()


def test_bad_devices_and_dtypes_are_usage_errors(suite):
    result, _ = run_suite(suite, "--devices", "cpu,abacus", report=None)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "abacus" in result.stderr.str()
    result, _ = run_suite(suite, "--dtypes", "float64", report=None)
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "float64" in result.stderr.str()


def test_absent_device_skips_with_reason(suite):
    result, doc = run_suite(suite, "--devices", "cpu,gpu", "-rs", "-k", "scale")
    result.assert_outcomes(passed=1, skipped=1)
    assert "device 'gpu' is not available to fake" in result.stdout.str()
    assert [r["outcome"] for r in doc["results"] if r["device"] == "gpu"] == ["skipped"]


def test_absent_device_fails_with_require_devices(suite):
    result, doc = run_suite(suite, "--devices", "gpu", "--require-devices", "-k", "scale")
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "require-devices" in result.stdout.str()
    assert doc["results"][0]["outcome"] == "failed"


def test_unsupported_class_dtype_is_skipped(suite):
    result, doc = run_suite(suite, "-k", "dtypes", "-rs")
    result.assert_outcomes(passed=4, skipped=2)
    assert "FakeHead computes in float32 only" in result.stdout.str()


def test_report_is_written_valid_and_complete(suite):
    result, doc = run_suite(suite, "--conformance-profile", "dev")
    assert result.ret == 0, result.stdout.str()
    validate_report(doc)
    info = doc["run_info"]
    assert info["implementations"][0]["name"] == "fake" and info["implementations"][0]["version"] == "0.0-fake"
    assert info["profile"]["name"] == "dev" and info["devices_requested"] == "auto"
    scale = doc["clauses"]["fake.scale"]["fake"]["cpu"]["float32"]
    assert scale["outcome"] == "passed" and scale["atol"] == 1e-6 and scale["max_abs_err"] == 0.0
    assert doc["families"]["suite"]["fake/cpu"]["compilations"] == 1
    assert doc["family_cache"]["suite"]["builds"] == 1
    assert (doc["summary"]["passed"], doc["summary"]["skipped"], doc["summary"]["total"]) == (7, 2, 9)
    assert doc["coverage"]["unknown"] == ["fake.class", "fake.dtype", "fake.scale"]


def test_matrix_is_printed(suite):
    result, _ = run_suite(suite)
    result.stdout.fnmatch_lines(["*ELECTRA conformance matrix*", "family*fake/cpu*", "suite*p7*", "TOTAL*",
                                 "*conformance report written to*"])


def test_test_without_clause_fails(suite):
    suite.makepyfile(test_more="def test_silent(adapter):\n    assert True\n")
    result, doc = run_suite(suite, "-k", "silent")
    result.assert_outcomes(failed=1)
    assert "declared no clause id" in doc["results"][0]["message"]


def test_tests_without_adapter_are_recorded_once_as_shared(suite):
    suite.makepyfile(test_more="import pytest\n@pytest.mark.clause('fake.spec')\ndef test_spec_only():\n    pass\n")
    result, doc = run_suite(suite, "-k", "spec_only")
    result.assert_outcomes(passed=1)
    (entry,) = doc["results"]
    assert (entry["impl"], entry["device"], entry["family"], entry["clauses"]) == ("shared", "any", "more", ["fake.spec"])


def test_missing_dependency_names_the_package_and_extra(suite):
    from conformance.registry import AdapterError, resolve_adapter

    suite.makepyfile(needs_jax="raise ModuleNotFoundError(\"No module named 'jax'\", name='jax')\n",
                     needs_other="import some_missing_package_xyz\n")
    result = suite.runpytest_inprocess("--impl", "needs_jax:Adapter")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "needs the package 'jax'" in result.stderr.str() and "electra-conformance[flax]" in result.stderr.str()
    with pytest.raises(AdapterError, match="some_missing_package_xyz"):
        resolve_adapter("needs_other:Adapter")


def test_run_shares_a_jax_compile_cache_unless_the_environment_sets_one(monkeypatch, tmp_path):
    from conformance import runner

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    env = runner.environment_for("flax", runner.compile_cache_dir(str(tmp_path)))
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path)
    assert env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # eager per-op programs are cached too
    assert "JAX_COMPILATION_CACHE_DIR" not in runner.environment_for("flax", runner.compile_cache_dir("none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runner.compile_cache_dir("auto") == tmp_path / "xdg" / "electra-conformance" / "jax"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
    assert runner.environment_for("flax", tmp_path)["JAX_COMPILATION_CACHE_DIR"] == "/elsewhere"


def test_deadline_skips_the_rest_and_still_writes_the_report(suite):
    full = run_suite(suite, "--conformance-profile", "dev")[1]
    result, doc = run_suite(suite, "--conformance-profile", "dev", "--conformance-deadline", "0")
    assert result.ret == 0, result.stdout.str()
    validate_report(doc)
    adapter_tests = [r for r in full["results"] if r["impl"] == "fake"]
    skipped = [r for r in doc["results"] if r["impl"] == "fake" and "run deadline reached" in r["message"]]
    assert len(skipped) == len(adapter_tests) > 0
    assert doc["run_info"]["deadline"] == {"seconds": 0.0, "tests_skipped": len(skipped)}
    assert full["run_info"]["deadline"] == {"seconds": None, "tests_skipped": 0}
    assert "incomplete run" in result.stdout.str()


def test_our_adapter_without_its_framework_is_refused_when_resolved(monkeypatch):
    """Not later, in the middle of a test (a GPU machine with JAX but no TensorFlow showed this): the
    cross-framework comparison then skips, naming the missing package."""
    import sys

    from conformance.registry import AdapterError, resolve_adapter

    monkeypatch.delitem(sys.modules, "conformance.adapters.ours_tf", raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    with pytest.raises(AdapterError, match=r"needs the package 'tensorflow'.*electra-conformance\[tf\]"):
        resolve_adapter("tf")
