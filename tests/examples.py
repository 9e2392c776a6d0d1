"""How hard property-based tests try: the full count in CI (``HYPOTHESIS_PROFILE=ci``, which
``.ci/run`` sets), a quarter of it on a developer's machine, so ``make test`` stays quick.
Long fuzzing runs belong in ``bench/``, not here."""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.register_profile("ci", max_examples=100, deadline=None, derandomize=False)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile(PROFILE if PROFILE in ("ci", "dev") else "dev")


def examples(full: int) -> int:
    """``full`` examples in CI; a quarter of them (at least 10) elsewhere."""
    return full if PROFILE == "ci" else max(10, full // 4)
