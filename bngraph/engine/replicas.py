"""Do one example's symbolic work once: the other examples' results are renamings of it.

A layer computes the same thing for every example: xhat_7's partials are xhat_1's with
7 for 1. SymPy builds each of them anew, and building (flattening, sorting) is most of
what ``derive`` costs at large m. :class:`Replicas` keeps, per family of nodes (``xhat``),
the first example's inputs and result. For example k, if the actual inputs are the stored
ones with k for the first example's index, the result is the stored one renamed the same
way, rebuilt without flattening. That is what SymPy would build, because SymPy's
construction depends on the names only through comparing them (it orders the arguments of
a sum or a product by name). So two checks decide, and anything else is computed:

* **same inputs:** the renamed inputs equal the actual ones, structurally (an example
  treated apart, or a sum over all examples, differs);
* **same order:** the names, sorted at the first example's index, stay strictly sorted at
  k; then every comparison is kept and no two names merge (x_1 < x_1_1, but x_2 > x_1_2).

The golden test holds the output of ``derive`` byte-identical to what it was before.

>>> import sympy as sp
>>> r = Replicas()
>>> x1, mu = sp.symbols("x_1 mu")
>>> r.get("sq", 1, (x1 - mu,), lambda: 2 * (x1 - mu))
-2*mu + 2*x_1
>>> r.get("sq", 5, (sp.Symbol("x_5") - mu,), lambda: None)  # not computed: renamed
-2*mu + 2*x_5
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Callable

import sympy as sp
from sympy.core.operations import AssocOp
from sympy.printing import precedence as _precedence

_NOT_REUSABLE = object()
_PLACEHOLDER = "\x00"  # an index no name holds
_MAX_NODES = 400  # bigger templates are rare and renaming them saves little


def example_index(name: str) -> tuple[str | None, int]:
    """``xhat_2`` -> ("xhat", 2); a name without an example index -> (None, 0)."""
    base, _, index = name.rpartition("_")
    return (base, int(index)) if base and index.isdigit() else (None, 0)


class Replicas:
    """Results of a family's first example, reused for the others by renaming."""

    def __init__(self):
        self._first: dict[Any, _Template] = {}
        self.renamed = False  # whether the last result of ``get`` is its family's first, renamed

    def get(self, family, k: int, inputs, compute: Callable[[], Any]):
        """``compute()``, or the first example's result renamed to example ``k``."""
        first = self._first.get(family)
        if first is None:
            result = compute()
            first = self._first[family] = _template(k, inputs, result)
            self.renamed = first is not _NOT_REUSABLE  # the first is its own renaming
            return result
        names = None if first is _NOT_REUSABLE or first.k == k else first.names_at(k)
        self.renamed = names is not None and first.matches(first.inputs, inputs, names)
        return first.rename(first.result, names) if self.renamed else compute()


class Texts:
    """Printed text of one example's expression, reused for every example's copy of it.

    Only for a printer that prints in SymPy's order of the arguments (``order="none"``), so
    that the text depends on a name only where it prints the name: an expression whose
    example-indexed names all carry one index k is printed once with a placeholder for k
    (checked to give its own text back), and its copies at other indices take that text
    with their index.
    """

    def __init__(self):
        self._texts: dict[tuple, str | None] = {}

    def text(self, expr: sp.Expr, print_expr: Callable[[sp.Expr], str]) -> str:
        indices: set[int] = set()
        shape = _shape(expr, indices)
        if shape is None or len(indices) != 1:
            return print_expr(expr)
        k = indices.pop()
        template = self._texts.get(shape, False)
        if template is False:  # the first of its shape
            text = print_expr(expr)
            template = print_expr(_with_placeholder(expr))
            self._texts[shape] = template if template.replace(_PLACEHOLDER, str(k)) == text else None
            return text
        return print_expr(expr) if template is None else template.replace(_PLACEHOLDER, str(k))


def _shape(expr, indices: set) -> tuple | sp.Basic | None:
    """``expr`` as nested tuples, each indexed name as its family's alone, its index added to
    ``indices``; None where it holds two indices or something else than sums, products, powers
    and functions of symbols and numbers."""
    if type(expr) is sp.Symbol:
        base, k = example_index(expr.name)
        if base is None:
            return expr
        indices.add(k)
        return (base,)
    if not expr.args:
        return type(expr), expr  # 2 and 2.0 print differently, whatever == says
    if not isinstance(expr, (AssocOp, sp.Pow, sp.Function)):
        return None
    shape = [type(expr)]
    for a in expr.args:
        part = _shape(a, indices)
        if part is None or len(indices) > 1:
            return None
        shape.append(part)
    return tuple(shape)


def _with_placeholder(expr):
    """``expr`` with the placeholder for every example index."""
    if type(expr) is sp.Symbol:
        base, k = example_index(expr.name)
        return expr if base is None else symbol(f"{base}_{_PLACEHOLDER}")
    if not expr.args:
        return expr
    args = tuple(_with_placeholder(a) for a in expr.args)
    if isinstance(expr, AssocOp):
        return type(expr)._from_args(args, expr.is_commutative)
    return expr.func(*args, evaluate=False)


class _Template:
    """One example's inputs and result, and which of their parts mention its index."""

    def __init__(self, k: int, names: set[str], inputs, result, varying: set[int]):
        self.k, self.inputs, self.result = k, inputs, result
        self._bases = {n: base for n in names if (base := _base(n, k)) is not None}  # names to rename
        self._sorted = sorted(names)  # as SymPy compares symbols: by name
        self._varying = varying  # ids of the expressions that hold an indexed name

    def names_at(self, new: int) -> dict[str, str] | None:
        """The first example's indexed names -> their names at example ``new``; None where the
        names, sorted at the first example's index, would not stay strictly sorted at ``new``."""
        renamed = {n: f"{base}_{new}" for n, base in self._bases.items()}
        order = [renamed.get(n, n) for n in self._sorted]
        return renamed if all(a < b for a, b in zip(order, order[1:])) else None

    def matches(self, stored, actual, names: dict) -> bool:
        """Whether ``actual`` is ``stored`` renamed by ``names``, without building the rename."""
        if id(stored) not in self._varying:  # nothing to rename in it
            return stored is actual or stored == actual
        kind = type(stored)
        if kind is not type(actual):
            return False
        if kind is str:
            return actual == names.get(stored, stored)
        if kind is sp.Symbol:
            renamed = symbol(names.get(stored.name, stored.name))
            return actual is renamed or actual == renamed  # a Symbol's assumptions count too
        if kind is dict:
            if len(actual) != len(stored):
                return False
            for key, value in stored.items():
                if not self.matches(value, actual.get(names.get(key, key)), names):
                    return False
            return True
        parts, actual_parts = (stored, actual) if kind is tuple else (stored.args, actual.args)
        if len(parts) != len(actual_parts):
            return False
        for part, actual_part in zip(parts, actual_parts):
            if not self.matches(part, actual_part, names):
                return False
        return True

    def rename(self, item, names: dict):
        """``item`` with the names in ``names`` renamed; rebuilt where it changes, as SymPy built it."""
        if id(item) not in self._varying:
            return item
        kind = type(item)
        if kind is sp.Symbol:
            return symbol(names.get(item.name, item.name))
        if kind is str:
            return names.get(item, item)
        if kind is tuple:
            return tuple(self.rename(a, names) for a in item)
        if kind is dict:
            return {names.get(a, a): self.rename(b, names) for a, b in item.items()}
        args = tuple(self.rename(a, names) for a in item.args)
        if isinstance(item, AssocOp):  # as built: SymPy's flatten already ordered these args
            return kind._from_args(args, item.is_commutative)
        return item.func(*args, evaluate=False)


def _template(k: int, inputs, result):
    names: set[str] = set()
    varying: set[int] = set()
    nodes = _collect((inputs, result), names, varying)
    if nodes is None or nodes > _MAX_NODES:
        return _NOT_REUSABLE
    return _Template(k, names, inputs, result, varying)


@lru_cache(maxsize=1 << 20)
def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol of a node name: plain (no assumptions, so ``parse_expr`` reads it back), made
    once per name (SymPy's constructor costs more than the lookup; large m names a few per example)."""
    return sp.Symbol(name)


def _collect(item, names: set, varying: set) -> int | None:
    """Add every name in ``item`` to ``names``, and to ``varying`` the ids of the expressions
    that hold an example-indexed one; the number of expression nodes, or None where ``item``
    holds something the rename cannot rebuild."""
    if isinstance(item, str):
        names.add(item)
        if example_index(item)[0] is not None:
            varying.add(id(item))
        return 0
    if type(item) in (tuple, dict):
        parts = [a for pair in item.items() for a in pair] if isinstance(item, dict) else item
        counts = [_collect(a, names, varying) for a in parts]
        if any(id(a) in varying for a in parts):
            varying.add(id(item))
        return None if None in counts else sum(counts)
    if item is None or isinstance(item, (int, bool)):
        return 0
    if not isinstance(item, sp.Basic):
        return None
    if isinstance(item, sp.Symbol):
        if type(item) is not sp.Symbol:  # a Dummy or Wild compares by more than its name
            return None
        names.add(item.name)
        if example_index(item.name)[0] is not None:
            varying.add(id(item))
        return 1
    if not item.args:
        return 1 if item.is_Number or item.is_NumberSymbol else None
    if not isinstance(item, (AssocOp, sp.Pow, sp.Function)):
        return None
    counts = [_collect(a, names, varying) for a in item.args]
    if None in counts:
        return None
    if any(id(a) in varying for a in item.args):
        varying.add(id(item))
    return sum(counts) + 1


def _base(name: str, k: int) -> str | None:
    """``xhat`` for ``xhat_k``; None for a name of another example or of none."""
    base, index = example_index(name)
    return base if base is not None and index == k else None


def _precedence_mul(item) -> int:
    """SymPy's ``precedence_Mul``, deciding "is it a negative product" from the leading
    coefficient alone. SymPy's ``Mul.could_extract_minus_sign`` first builds ``-self`` to rule
    out ``zoo*x == -zoo*x``; a negative number coefficient never equals its negation, and zoo is
    not negative, so the answer is the same without building a second product (that was half
    the JSON printer's time)."""
    mul = _precedence.PRECEDENCE["Mul"]
    if any(isinstance(arg, sp.Function) and getattr(arg, "precedence", mul) < mul for arg in item.args):
        return mul
    c = item.args[0]
    if not c.is_Number:
        return mul
    # a rational's sign is its numerator's: asking SymPy's assumptions deduces all of a new
    # number's facts first (most of this function's time at m = 1024)
    negative = c.p < 0 if c.is_Rational else c.is_extended_negative
    return _precedence.PRECEDENCE["Add"] if negative else mul


@contextmanager
def mul_precedence_from_coefficient():
    """SymPy's printers look a product's precedence up in one shared table: swap the rule in
    for the duration of one of our prints only (the JSON printer's, verify's code printer's)."""
    table = _precedence.PRECEDENCE_FUNCTIONS
    saved, table["Mul"] = table["Mul"], _precedence_mul
    try:
        yield
    finally:
        table["Mul"] = saved
