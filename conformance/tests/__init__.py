"""The spec-driven conformance tests, run through the plugin: pytest --pyargs conformance.tests --impl NAME."""
