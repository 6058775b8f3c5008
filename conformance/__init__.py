"""ELECTRA conformance suite: a pytest plugin whose tests are generated from the spec."""
