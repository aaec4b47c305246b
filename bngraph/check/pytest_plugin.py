"""pytest plugin ``bngraph`` (entry point ``pytest11``): check a backward pass inside a test.

Installed with bngraph, it gives every test two fixtures::

    def test_my_batchnorm_backward(bngraph_check):
        bngraph_check(my_backward)                         # forward found by name
        bngraph_check("layers.py:layernorm_backward", layer="layernorm")

    def test_my_rmsnorm(bngraph_gradcheck):                # any layer, in one line
        bngraph_gradcheck("rms.py", function="layers.py:rmsnorm")    # a generated module
        bngraph_gradcheck(my_backward, my_forward, function=rmsnorm)  # or your own code

``bngraph_check`` compares with bngraph's references of the built-in layers and names
common mistakes; ``bngraph_gradcheck`` compares with central finite differences of the
layer's own plain Python function (see :mod:`bngraph.check.gradcheck`). A wrong backward
fails the test with bngraph's report.
"""

import pytest

from bngraph.check.backward import assert_backward_matches
from bngraph.check.gradcheck import assert_gradients_match

__all__ = ["assert_backward_matches", "assert_gradients_match", "bngraph_check", "bngraph_gradcheck"]


@pytest.fixture
def bngraph_check():
    """:func:`bngraph.check.assert_backward_matches`: fails the test unless the backward matches.

    >>> def test_backward(bngraph_check):  # doctest: +SKIP
    ...     bngraph_check(batchnorm_backward, layer="batchnorm", forward=batchnorm_forward)
    """
    return assert_backward_matches


@pytest.fixture
def bngraph_gradcheck():
    """:func:`bngraph.check.gradcheck.assert_gradients_match`: fails the test unless the backward
    matches finite differences of the layer's plain function.

    >>> def test_generated(bngraph_gradcheck):  # doctest: +SKIP
    ...     bngraph_gradcheck("rms.py", function="layers.py:rmsnorm")
    """
    return assert_gradients_match
