"""Root pytest configuration for the project's own tests (tests/)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["pytester"]


def pytest_addoption(parser):
    parser.addoption("--golden-byte-identical", action="store_true", default=False,
                     help="golden regeneration: keep this machine's CPU code path and compare every file byte for "
                          "byte (true only on the machine that generated conformance/golden)")
