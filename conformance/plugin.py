"""pytest plugin entry point (registered under pytest11). Filled in by the conformance work."""
