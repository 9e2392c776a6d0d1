"""Unit-test speed: every test makes fresh boto3 sessions (the app's cached clients are reset
between tests), and each new session parses botocore's JSON service models again, which
costs a tenth of a second or more per client. One shared, read-only loader removes that
without changing what any client does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _shared_botocore_loader() -> Iterator[None]:
    import botocore.loaders
    import botocore.session

    original = botocore.session.create_loader
    shared: dict[str | None, botocore.loaders.Loader] = {}

    def create_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in shared:
            shared[search_path_string] = original(search_path_string)
        return shared[search_path_string]

    botocore.session.create_loader = create_loader
    yield
    botocore.session.create_loader = original


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """template.yaml as SAM translates it (``tests/template.py``), once a module."""
    from tests.template import translate

    return translate()


@pytest.fixture(scope="module")
def deployed_rules(translated: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(target function, event pattern) of every EventBridge rule with a pattern."""
    from tests.template import event_rules

    return event_rules(translated)
