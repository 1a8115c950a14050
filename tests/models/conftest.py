"""Shared fixtures for the models tests: one training of the default per session, in a private cache."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def default_cache(tmp_path_factory):
    """A private ``$EDGESEP_CACHE`` in which ``load_default_model()`` has trained once."""
    import os

    from edgesep.models import default

    cache = tmp_path_factory.mktemp("edgesep-cache")
    previous = os.environ.get("EDGESEP_CACHE")
    os.environ["EDGESEP_CACHE"] = str(cache)
    try:
        model = default.load_default_model()
        yield cache, model
    finally:
        if previous is None:
            os.environ.pop("EDGESEP_CACHE", None)
        else:
            os.environ["EDGESEP_CACHE"] = previous


@pytest.fixture
def default_model(default_cache, monkeypatch):
    monkeypatch.setenv("EDGESEP_CACHE", str(default_cache[0]))
    return default_cache[1]
