"""Sums over the batch read as c Σ_j (u_j − v), and zero exactly when v is defined as the mean of u."""
from __future__ import annotations

import sympy as sp

from bngraph import build_graph, derive, name, trace
from bngraph.closedform.batchsum import BatchSum, batch_sum, batch_sum_symbolic
from bngraph.closedform.plates import j, lift, m
from bngraph.engine.layers import LAYERS


def test_the_variance_partial_in_mu_is_a_vanishing_batch_sum_at_every_m():
    for size in (2, 3, 8, 40):
        d = derive(build_graph(LAYERS["batchnorm"].trace(size)))
        assert batch_sum(d.partials["mu", "sigma2"], d.graph) == BatchSum(-2, "x", "mu", True)
        assert batch_sum(d.partials["x_1", "sigma2"], d.graph) is None  # one example's term, not a batch sum
    plates = lift(LAYERS["batchnorm"].function)
    partial = plates.values["sigma2"].diff(sp.Symbol("mu"))
    found = batch_sum_symbolic(partial, plates.values, m, j)
    assert found == BatchSum(-2, "x", "mu", True)
    x = sp.IndexedBase("x")
    assert sp.simplify(found.expr(m, j) - (-2 / m) * sp.Sum(x[j] - sp.Symbol("mu"), (j, 1, m))) == 0
    assert sp.simplify((found.expr(m, j) - partial).doit()) == 0  # the same expression, written as a paper does


def shifted(x, gamma):
    """A "mu" that is not the mean: the sum Σ_j (x_j − mu) does not vanish."""
    mu = name(sum(x) / len(x) + 1, "mu")
    sigma2 = name(sum((xk - mu) ** 2 for xk in x) / len(x), "sigma2")
    return [gamma * (xk - mu) * sigma2 for xk in x]


def test_a_sum_that_does_not_vanish_is_not_called_zero():
    d = derive(build_graph(trace(shifted, 3)))
    assert batch_sum(d.partials["mu", "sigma2"], d.graph) == BatchSum(-2, "x", "mu", False)
    plates = lift(shifted)
    found = batch_sum_symbolic(plates.values["sigma2"].diff(sp.Symbol("mu")), plates.values, m, j)
    assert found is not None and not found.vanishes


def test_other_expressions_are_left_alone():
    d = derive(build_graph(LAYERS["batchnorm"].trace(3)))
    mu, x1, x2 = sp.symbols("mu x_1 x_2")
    assert batch_sum(2 * mu - x1 - x2, d.graph) is None  # not every example
    assert batch_sum(sp.Integer(3), d.graph) is None
    assert batch_sum_symbolic(sp.Symbol("gamma"), {}, m, j) is None
