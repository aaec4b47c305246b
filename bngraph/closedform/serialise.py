"""A closed form as plain JSON data and back, read without ``eval``, ``sympify`` or ``pickle``.

An expression is written as a table of nodes, each made from earlier ones: a symbol (its name
and assumptions), an integer, a rational, or one of a few SymPy classes applied to earlier
nodes (``["Add", 3, 7]``). Read back, each node is built by its class from a fixed list with
``evaluate=False``, so it comes back with the same arguments in the same order: equal to what
was written, and printed alike. A node of any other class cannot be written (``Unwritable``);
a table that names another class, or refers to a node not yet made, cannot be read (``Unreadable``).

>>> import sympy as sp
>>> x, m = sp.IndexedBase("x"), sp.Symbol("m", positive=True)
>>> e = sp.Sum(x[sp.Symbol("j")], (sp.Symbol("j"), 1, m)) / m
>>> document = to_document({"mu": e})
>>> from_document(document)["mu"] == e
True
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

import sympy as sp
from sympy.core.assumptions import _assume_defined

# The classes a closed form is made of; a table naming anything else is not read.
CLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    sp.Add, sp.Mul, sp.Pow, sp.Sum, sp.Tuple, sp.Indexed, sp.IndexedBase, sp.exp, sp.log)}
_EVALUATING = (sp.Add, sp.Mul, sp.Pow, sp.exp, sp.log)  # built with evaluate=False: no rewriting on the way back


class Unwritable(ValueError):
    """An expression with a node of a class outside ``CLASSES``."""


class Unreadable(ValueError):
    """A document that is not a table of allowed nodes."""


class _Writer:
    def __init__(self):
        self.nodes: list[list] = []
        self.index: dict[sp.Basic, int] = {}

    def expr(self, e: sp.Basic) -> int:
        found = self.index.get(e)
        if found is not None:
            return found
        if isinstance(e, sp.Integer):
            node = ["Integer", int(e)]
        elif isinstance(e, sp.Rational):
            node = ["Rational", int(e.p), int(e.q)]
        elif type(e) is sp.Symbol:
            node = ["Symbol", e.name, dict(sorted(e._assumptions_orig.items()))]
        elif CLASSES.get(type(e).__name__) is type(e):
            node = [type(e).__name__, *(self.expr(a) for a in e.args)]
        else:
            raise Unwritable(f"a {type(e).__name__} node")
        self.nodes.append(node)
        self.index[e] = len(self.nodes) - 1
        return self.index[e]

    def value(self, v: Any) -> Any:
        """Strings, booleans and None as they are; expressions as ``{"e": node}``; tuples as
        lists; mappings as lists of [key, value] pairs (so their order is kept)."""
        if v is None or isinstance(v, (str, bool)):
            return v
        if isinstance(v, sp.Basic):
            return {"e": self.expr(v)}
        if isinstance(v, Mapping):
            return {"map": [[k, self.value(x)] for k, x in v.items()]}
        if isinstance(v, (tuple, list)):
            return [self.value(x) for x in v]
        raise Unwritable(f"a {type(v).__name__} value")


def to_document(value: Any) -> dict:
    """``value`` (strings, booleans, expressions, tuples, mappings, nested) as JSON data."""
    writer = _Writer()
    body = writer.value(value)
    return {"nodes": writer.nodes, "value": body}


def _node(node: Any, made: list) -> sp.Basic:
    if not isinstance(node, list) or not node or not isinstance(node[0], str):
        raise Unreadable("a node is not a list headed by its kind")
    kind, rest = node[0], node[1:]
    if kind == "Integer" and len(rest) == 1 and type(rest[0]) is int:
        return sp.Integer(rest[0])
    if kind == "Rational" and len(rest) == 2 and all(type(r) is int for r in rest) and rest[1] > 1:
        return sp.Rational(*rest)
    if kind == "Symbol" and len(rest) == 2 and isinstance(rest[0], str) and isinstance(rest[1], dict):
        assumptions = rest[1]
        if not all(k in _assume_defined and isinstance(v, bool) for k, v in assumptions.items()):
            raise Unreadable("a symbol with an unknown assumption")
        return sp.Symbol(rest[0], **assumptions)
    cls = CLASSES.get(kind)
    if cls is None:
        raise Unreadable(f"a node of kind {kind!r}")
    if not all(type(a) is int and 0 <= a < len(made) for a in rest):  # earlier nodes only: no cycles
        raise Unreadable("a node refers to one not made before it")
    args = [made[a] for a in rest]
    return cls(*args, evaluate=False) if cls in _EVALUATING else cls(*args)


def _value(v: Any, made: list) -> Any:
    if v is None or isinstance(v, (str, bool)):
        return v
    if isinstance(v, list):
        return tuple(_value(x, made) for x in v)
    if isinstance(v, dict) and set(v) == {"e"}:
        if type(v["e"]) is not int or not 0 <= v["e"] < len(made):
            raise Unreadable("an expression refers to no node")
        return made[v["e"]]
    if isinstance(v, dict) and set(v) == {"map"} and isinstance(v["map"], list):
        pairs = v["map"]
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise Unreadable("a mapping is not a list of [key, value] pairs")
        return MappingProxyType({k: _value(x, made) for k, x in pairs})
    raise Unreadable(f"a value of type {type(v).__name__}")


def from_document(document: Any) -> Any:
    """The value ``to_document`` wrote (tuples for lists, read-only mappings for mappings)."""
    if not isinstance(document, dict) or set(document) != {"nodes", "value"} or not isinstance(document["nodes"], list):
        raise Unreadable("not a document of nodes and a value")
    made: list[sp.Basic] = []
    for node in document["nodes"]:
        made.append(_node(node, made))
    return _value(document["value"], made)
