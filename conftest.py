"""Root pytest configuration for the project's own tests (tests/)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["pytester"]
