"""Hypothesis profiles the plugin registers, selected with ``--conformance-profile``.

dev: few examples, random, for quick local runs. ci: derandomized (fixed seed per test, so runs are
reproducible) with a moderate number of examples. thorough: many examples, for nightly runs.
Compiled code has unpredictable first-call latency, so no profile has a deadline.
"""
from __future__ import annotations

PROFILES = {
    "dev": {"max_examples": 5, "derandomize": False},
    "ci": {"max_examples": 12, "derandomize": True},
    "thorough": {"max_examples": 200, "derandomize": False},
}


def hypothesis_profile_name(profile: str) -> str:
    return f"electra-conformance-{profile}"


def register_profiles() -> None:
    from hypothesis import HealthCheck, settings

    # Fixtures such as `check` are function-scoped and deliberately shared by the examples of a test.
    suppressed = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
    for profile, options in PROFILES.items():
        settings.register_profile(hypothesis_profile_name(profile), deadline=None,
                                  suppress_health_check=suppressed, print_blob=True, **options)


def current_profile_name() -> str:
    from hypothesis import settings

    getter = getattr(settings, "get_current_profile_name", None)
    return getter() if getter else getattr(settings, "_current_profile", "default")


def load_profile(profile: str) -> dict:
    """Activate a profile and return what the report records about it."""
    from hypothesis import settings

    register_profiles()
    settings.load_profile(hypothesis_profile_name(profile))
    return {"name": profile, **PROFILES[profile]}
