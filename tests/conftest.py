"""Shared test settings: Hypothesis never times an example (speed is measured in benchmarks/);
the closed-form cache is the tests' own, never the user's (~/.cache/bngraph)."""
import os

import pytest
from hypothesis import settings

settings.register_profile("bngraph", deadline=None)
settings.load_profile("bngraph")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every test (and every command it runs in a child process) caches in a folder of this
    session's (one per worker), so that parallel workers and the user's cache never meet."""
    folder = tmp_path_factory.mktemp("bngraph-cache")
    before = os.environ.get("BNGRAPH_CACHE_DIR")
    os.environ["BNGRAPH_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("BNGRAPH_CACHE_DIR", None)
    else:
        os.environ["BNGRAPH_CACHE_DIR"] = before
