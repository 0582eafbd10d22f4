"""Test-wide settings: Hypothesis draws the same examples on every run, so a CI result can be
reproduced; `HYPOTHESIS_PROFILE=explore make test` searches with fresh random examples."""

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
