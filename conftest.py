"""Root pytest configuration for the project's own tests (tests/)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")

pytest_plugins = ["pytester"]
