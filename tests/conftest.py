"""Test-wide settings: Hypothesis draws the same examples on every run, so a CI result can be
reproduced; `HYPOTHESIS_PROFILE=explore make test` searches with fresh random examples. No
profile has a deadline: how long an example takes is a benchmark's business, and on a loaded
machine a deadline fails tests that are right."""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
