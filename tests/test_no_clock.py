"""No test depends on wall-clock time: speed is measured in benchmarks/, as ratios.

A test that asserts a duration, or a Hypothesis deadline, fails on a busy machine while
the code is right. This reads every test file and refuses both.
"""
import ast
from pathlib import Path

import pytest

TESTS = sorted(Path(__file__).parent.glob("*.py"))
CLOCKS = {"time", "perf_counter", "monotonic", "process_time", "perf_counter_ns", "time_ns"}


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_no_clock_and_no_hypothesis_deadline(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "deadline":
            assert isinstance(node.value, ast.Constant) and node.value.value is None, \
                f"{path.name}:{node.lineno}: a Hypothesis deadline (use deadline=None)"
        if isinstance(node, ast.Attribute) and node.attr in CLOCKS and \
                isinstance(node.value, ast.Name) and node.value.id == "time":
            pytest.fail(f"{path.name}:{node.lineno}: time.{node.attr} in a test")


def test_the_hypothesis_profile_has_no_deadline():
    from hypothesis import settings

    assert settings().deadline is None  # tests/conftest.py loads it for every @given without settings
