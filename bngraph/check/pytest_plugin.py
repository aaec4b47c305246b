"""pytest plugin ``bngraph`` (entry point ``pytest11``): check a backward pass inside a test.

Installed with bngraph, it gives every test the fixture ``bngraph_check``::

    def test_my_batchnorm_backward(bngraph_check):
        bngraph_check(my_backward)                         # forward found by name
        bngraph_check("layers.py:layernorm_backward", layer="layernorm")

A wrong backward fails the test with bngraph's report, diagnosis included.
"""

import pytest

from bngraph.check.backward import assert_backward_matches

__all__ = ["assert_backward_matches", "bngraph_check"]


@pytest.fixture
def bngraph_check():
    """:func:`bngraph.check.assert_backward_matches`: fails the test unless the backward matches.

    >>> def test_backward(bngraph_check):  # doctest: +SKIP
    ...     bngraph_check(batchnorm_backward, layer="batchnorm", forward=batchnorm_forward)
    """
    return assert_backward_matches
