"""Shared test settings: Hypothesis never times an example (speed is measured in benchmarks/).
(The closed-form cache of the tests' own is set up by the conftest.py at the top.)"""
from hypothesis import settings

settings.register_profile("bngraph", deadline=None)
settings.load_profile("bngraph")
