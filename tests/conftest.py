"""Shared test settings: Hypothesis never times an example (speed is measured in benchmarks/)."""
from hypothesis import settings

settings.register_profile("bngraph", deadline=None)
settings.load_profile("bngraph")
