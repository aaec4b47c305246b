"""For every test and doctest (tests/ and bngraph/): the closed-form cache is this pytest
process's own (one per xdist worker), never the user's ~/.cache/bngraph; the commands the tests
run in child processes inherit it."""
import os
import shutil
import tempfile


def pytest_configure(config):
    config._bngraph_cache = (os.environ.get("BNGRAPH_CACHE_DIR"), tempfile.mkdtemp(prefix="bngraph-cache-"))
    os.environ["BNGRAPH_CACHE_DIR"] = config._bngraph_cache[1]


def pytest_unconfigure(config):
    before, folder = config._bngraph_cache
    if before is None:
        os.environ.pop("BNGRAPH_CACHE_DIR", None)
    else:
        os.environ["BNGRAPH_CACHE_DIR"] = before
    shutil.rmtree(folder, ignore_errors=True)
