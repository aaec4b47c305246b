"""Printing one expression as Python code on arrays: SymPy's NumPy printer, under the target's names.

The same printer serves the three targets: ``np.sqrt`` for NumPy, ``torch.sqrt`` for
PyTorch, ``jnp.sqrt`` for JAX. A batch sum prints as a call of the module's own helper,
whose name the caller gives (the NumPy target sums in float64, the others in place).

>>> import sympy as sp
>>> a, b = sp.symbols("a b")
>>> code(a / sp.sqrt(b + 1) - 1 / a, "torch")
'a/torch.sqrt(b + 1) - 1/a'
>>> code(BatchSum(a * b), "np", batch_sum="_batch_sum")
'_batch_sum(a*b)'
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import precedence

from bngraph.closedform.plates import m as M


class BatchSum(sp.Function):
    """Σ over the batch axis of a per-example array expression: a closed form's Σ_j in code."""

    nargs = 1
    is_batch_sum = True


class ArrayPrinter(NumPyPrinter):
    """NumPy's printer with the module written as the generated file imports it (np, torch, jnp)."""

    def __init__(self, module: str, batch_sum: str = "_batch_sum"):
        super().__init__({"fully_qualified_modules": True, "inline": True})
        self.alias, self.batch_sum = module, batch_sum

    def _module_format(self, fqn, register=True):
        return self.alias + fqn[len("numpy"):] if fqn.startswith("numpy.") else fqn

    def _print_BatchSum(self, e):
        return f"{self.batch_sum}({self._print(e.args[0])})"

    def _print_Pow(self, e, rational=False):
        if e.base.free_symbols <= {M} and not e.exp.is_Integer:  # √m: m is a Python int, not an array
            return f"{self.parenthesize(e.base, precedence(e))}**{self.parenthesize(e.exp, precedence(e))}"
        if e.exp.is_Integer and e.exp < 0:  # 1/b, 1/b**2: no float power of an integer
            denominator = e.base if e.exp == -1 else sp.Pow(e.base, -e.exp, evaluate=False)
            return f"1/{self.parenthesize(denominator, precedence(e))}"
        return super()._print_Pow(e, rational)

    def _print_Add(self, e, order=None):
        # x - mu, not -mu + x: the terms with a minus sign last, as a person writes them
        terms = sorted(self._as_ordered_terms(e, order=order), key=lambda t: t.could_extract_minus_sign())
        text = self._print(terms[0])
        for t in terms[1:]:
            if t.could_extract_minus_sign():
                text += f" - {self.parenthesize(-t, precedence(e))}"
            else:
                text += f" + {self.parenthesize(t, precedence(e))}"
        return text

    def _print_Rational(self, e):
        return f"{e.p}/{e.q}" if e.q != 1 else str(e.p)


def code(expr: sp.Expr, module: str, batch_sum: str = "_batch_sum") -> str:
    """``expr`` as Python source on arrays of ``module`` (``np``, ``torch`` or ``jnp``)."""
    return ArrayPrinter(module, batch_sum).doprint(expr)
