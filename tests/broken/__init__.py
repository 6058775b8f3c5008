"""Deliberately broken variants of our implementations, for the conformance suite's self-test
(tests/test_suite_selftest.py). Each variant is an adapter (``--impl tests.broken.<module>:<Class>``)
that monkeypatches the smallest piece of the implementation when it is created; ``patching.undo_all``
restores everything."""
