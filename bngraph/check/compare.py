"""Is a user's forward a built-in layer? ``bngraph derive --function my.py:f --compare batchnorm``.

Two questions, each answered for every m where it can be:

- *the same function?* the closed-form forwards y[i] (every definition written out in x)
  are equal on the normal form of :mod:`bngraph.closedform.recognise`;
- *the same backward?* each gradient's closed form (dL_dx[i], and dL_d<p> for each
  parameter) likewise: identical as printed, or equal on the normal form.

The parameters are matched by position (``eps`` of yours is ``epsilon`` of the layer).
Where the two differ, a small counterexample shows it: the smallest m from 1 to
:data:`SIZES`'s last, at a point of small numbers, where the engine's numbers for the two
disagree. Where a closed form is missing, only those sizes are tried, and the answer says so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import sympy as sp

from bngraph.errors import BngraphError
from bngraph.check.numeric import max_relative_error
from bngraph.closedform.evaluate import adjoint_values, forward_values
from bngraph.closedform.recognise import in_inputs, normal_form
from bngraph.closedform.simplify import ClosedForm, closed_form_of
from bngraph.engine.derive import derive
from bngraph.engine.graph import build_graph
from bngraph.engine.layers import get_layer
from bngraph.engine.trace import trace
from bngraph.engine.usercode import function_name, load_function

SIZES = range(1, 7)
X = (1.0, 3.0, 4.0, 8.0, 2.0, 7.0)  # small numbers, spread so that no variance is 0 beyond m = 1
PARAMETERS = (1.5, 0.5, 0.1, 0.7, 1.2, 0.3)  # by position: gamma, beta, epsilon, …
DY = (1.0, -2.0, 0.5, 3.0, -1.0, 2.0)
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Answer:
    """One question's answer: ``same``, how that is known, and a counterexample if not."""

    same: bool
    how: str
    counterexample: str | None = None


@dataclass(frozen=True)
class Comparison:
    function: str
    layer: str
    parameters: dict  # yours -> the layer's
    forward: Answer
    backward: dict  # gradient key (yours) -> Answer
    identical: bool  # every formula and definition the same, as printed

    @property
    def exit_code(self) -> int:
        return 0 if self.forward.same and all(a.same for a in self.backward.values()) else 1

    def format(self) -> str:
        pairs = ", ".join(f"{mine} ~ {theirs}" if mine != theirs else mine for mine, theirs in self.parameters.items())
        pairs = f" (parameters by position: {pairs})" if pairs else ""

        def said(answer: Answer) -> str:
            return answer.how + (f": {answer.counterexample}" if answer.counterexample else "")

        verdict = "the same function" if self.forward.same else "a different function"
        lines = [f"bngraph derive --compare: {self.function} against {self.layer}{pairs}",
                 f"forward:  {verdict}: {self.forward.counterexample or self.forward.how}"]
        lines += ["backward:"] if self.backward else []
        width = max(map(len, self.backward), default=0)
        lines += [f"  {key:<{width}}  {said(answer)}" for key, answer in self.backward.items()]
        if self.identical:
            lines.append("the closed forms are identical, formula for formula and definition for definition")
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        def answer(a: Answer) -> dict:
            return {"same": a.same, "how": a.how, "counterexample": a.counterexample}

        doc = {"function": self.function, "layer": self.layer, "parameters": self.parameters,
               "forward": answer(self.forward), "backward": {k: answer(a) for k, a in self.backward.items()},
               "identical": self.identical, "exit_code": self.exit_code}
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _leaves(func) -> list[str]:
    return [r.name for r in trace(func, 2).records if r.op in ("parameter", "constant")]  # m = 2: ddof=1 is defined


def _closed(func, name: str) -> ClosedForm | None:
    try:
        return closed_form_of(func, name)
    except BngraphError:
        return None


def compare(func, layer: str) -> Comparison:
    """How ``func`` (a user's forward) compares with the built-in ``layer``."""
    theirs = get_layer(layer).function
    mine_leaves, their_leaves = _leaves(func), _leaves(theirs)
    title = function_name(func)
    if len(mine_leaves) != len(their_leaves):
        differ = Answer(False, f"it takes the parameters ({', '.join(mine_leaves)}), {layer} takes "
                               f"({', '.join(their_leaves)})")
        return Comparison(title, layer, {}, differ, {}, False)
    parameters = dict(zip(mine_leaves, their_leaves))
    rename = {sp.Symbol(t): sp.Symbol(u) for u, t in parameters.items()}
    mine, other = _closed(func, title), _closed(theirs, layer)
    numbers = _Numbers(func, theirs, mine_leaves, their_leaves, layer)
    closed = mine is not None and other is not None
    # numbers first: where they already differ, no proof is attempted (a normal form of two
    # different closed forms can be large)
    counterexample = numbers.forward()
    forward = _answer(not counterexample and closed and _equal(mine, other, "y[i]", "y[i]", rename, definitions=True),
                      closed, counterexample)
    backward, identical = {}, closed
    for key in ["dL_dx[i]"] + [f"dL_d{p}" for p in their_leaves]:
        if other is not None and key not in other.formulas:
            continue
        my_key = key if key == "dL_dx[i]" else f"dL_d{mine_leaves[their_leaves.index(key[4:])]}"
        printed = closed and my_key in mine.formulas and \
            sp.sstr(mine.formulas[my_key]) == sp.sstr(other.formulas[key].xreplace(rename))
        counterexample = None if printed else numbers.gradient(key)
        proved = printed or (not counterexample and closed and my_key in mine.formulas
                             and _equal(mine, other, my_key, key, rename))
        backward[my_key] = _answer(proved, closed, counterexample, identical=printed)
    if closed:
        identical = identical and _printed_alike(mine, other, rename)
    return Comparison(title, layer, parameters, forward, backward, identical)


def _equal(mine: ClosedForm, other: ClosedForm, my_key, key, rename, definitions=False) -> bool:
    table = (lambda c: c.definitions) if definitions else (lambda c: c.formulas)
    a = in_inputs(table(mine)[my_key], mine.definitions)
    b = in_inputs(table(other)[key], other.definitions).xreplace(rename)
    return normal_form(a - b) == 0


def _printed_alike(mine: ClosedForm, other: ClosedForm, rename) -> bool:
    def printed(table, swap):
        return [(k, sp.sstr(e.xreplace(swap))) for k, e in table.items()]

    return printed(mine.formulas, {}) == printed(other.formulas, rename) and \
        printed(mine.definitions, {}) == printed(other.definitions, rename)


def _answer(proved: bool, closed: bool, counterexample: str | None, identical: bool = False) -> Answer:
    if counterexample:
        return Answer(False, "differs", counterexample)
    if proved:
        return Answer(True, "identical closed forms" if identical else "equal for every m (proved on the closed forms)")
    if closed:  # equal wherever tried, but the normal form did not show it
        return Answer(True, f"equal at every m from {SIZES[0]} to {SIZES[-1]} tried; not proved for every m")
    return Answer(True, f"equal at every m from {SIZES[0]} to {SIZES[-1]} tried (no closed form to prove it for every m)")


class _Numbers:
    """Both functions' forward values and gradients at small m, by the engine, at one point each."""

    def __init__(self, mine, theirs, mine_leaves, their_leaves, layer: str):
        self.mine, self.theirs, self.layer = mine, theirs, layer
        self.names = list(zip(mine_leaves, their_leaves))
        self._cache = {}

    def _at(self, m: int):
        """Both sides' forward values and gradients at m, or None where either is undefined
        (a variance over m − 1 at m = 1; the root of a zero variance differentiated)."""
        if m not in self._cache:
            try:
                self._cache[m] = self._both(m)
            except BngraphError:
                self._cache[m] = None
        return self._cache[m]

    def _both(self, m: int):
        sides = []
        for func, pick in ((self.mine, 0), (self.theirs, 1)):
            graph = build_graph(trace(func, m), "named")
            leaves = {f"x_{k}": X[k - 1] for k in range(1, m + 1)}
            leaves.update({names[pick]: PARAMETERS[n] for n, names in enumerate(self.names)})
            upstream = {f"dL_dy_{k}": DY[k - 1] for k in range(1, m + 1)}
            values = forward_values(graph, leaves)
            sides.append((values, adjoint_values(derive(graph), values, upstream)))
        return sides

    def _point(self, m: int, upstream: bool) -> str:
        def numbers(values):
            return "(" + ", ".join(f"{v:g}" for v in values[:m]) + ")"

        params = "".join(f", {mine} = {PARAMETERS[n]:g}" for n, (mine, _) in enumerate(self.names))
        return f"at m = {m}, x = {numbers(X)}{params}" + (f", dL_dy = {numbers(DY)}" if upstream else "")

    def forward(self) -> str | None:
        for m in SIZES:
            if self._at(m) is None:
                continue
            (mine, _), (theirs, _) = self._at(m)
            a, b = [np.array([side[f"y_{k}"] for k in range(1, m + 1)]) for side in (mine, theirs)]
            error, (k,) = max_relative_error(a, b)
            if error > TOLERANCE:
                return f"{self._point(m, False)}: y_{k + 1} = {a[k]:.6g} (yours), {b[k]:.6g} ({self.layer})"
        return None

    def gradient(self, key: str) -> str | None:
        """The first m at which the gradient ``key`` (the layer's name) differs."""
        for m in SIZES:
            if self._at(m) is None:
                continue
            (_, mine), (_, theirs) = self._at(m)
            if key == "dL_dx[i]":
                names = [(f"x_{k}", f"x_{k}") for k in range(1, m + 1)]
            else:
                names = [next((u, t) for u, t in self.names if t == key[4:])]
            a = np.array([mine.get(u, 0.0) for u, _ in names])
            b = np.array([theirs.get(t, 0.0) for _, t in names])
            error, (k,) = max_relative_error(a, b)
            if error > TOLERANCE:
                label = f"dL_d{names[k][0]}"
                return f"{self._point(m, True)}: {label} = {a[k]:.6g} (yours), {b[k]:.6g} ({self.layer})"
        return None


def compare_text(args) -> tuple[str, int]:
    """``derive --function FILE.py:FUNC --compare LAYER``: the report (text or JSON) and the exit status."""
    if not args.function:
        raise BngraphError("--compare LAYER compares your --function FILE.py:FUNC with a built-in layer; give --function")
    if args.format not in ("text", "json"):
        raise BngraphError("--compare prints text or JSON (--format text|json)")
    result = compare(load_function(args.function), args.compare)
    return (result.to_json() if args.format == "json" else result.format()), result.exit_code
