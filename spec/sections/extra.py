"""Builders of the sections that are looked up by stem in ``Spec.sections``."""
from __future__ import annotations

BUILDERS: dict = {}
