"""Scripts that measure the reference package (transformers 4.57.6 + torch) to justify spec values.

They need the `reference` extra and are never imported by the spec loader or the tests.
"""
