"""Build the tutorial notebooks from the cells written below, and run them.

Every cell is a Python string in this file, so a change to a notebook is reviewed here as
a plain diff; the ``.ipynb`` files are generated from it and committed with their outputs
so GitHub shows them. ``tests/test_notebooks.py`` checks that the committed cells equal
what this file generates and that every notebook runs without an error.

    python notebooks/build.py              # write and execute all four notebooks
    python notebooks/build.py 02 --no-execute
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from textwrap import dedent

import nbformat

HERE = Path(__file__).resolve().parent
KERNEL = "python3"
CELL_TIMEOUT = 120  # seconds


def md(text: str):
    return nbformat.v4.new_markdown_cell(dedent(text).strip())


def code(text: str):
    return nbformat.v4.new_code_cell(dedent(text).strip())


# Shared by the notebooks that print equations: SymPy expressions in the paper's notation.
SHOW_EQUATIONS = '''
    def lhs(key):
        """A closed form's key as an expression: "dL_dx[i]" -> dL_dx[i], "dL_dmu" -> dL_dmu."""
        base, _, index = key.partition("[")
        return sp.IndexedBase(base)[sp.Symbol(index[:-1])] if index else sp.Symbol(base)

    def equations(rows, notes=None):
        """Display (left side, right side) pairs, SymPy or LaTeX, as one aligned block."""
        as_tex = lambda e: e if isinstance(e, str) else tex(e)
        lines = []
        for k, (left, right) in enumerate(rows):
            note = rf"&& \\text{{{notes[k]}}}" if notes and notes[k] else ""
            lines.append(f"{as_tex(left)} &= {as_tex(right)} {note}")
        display(Math(r"\\begin{aligned}" + r" \\\\ ".join(lines) + r"\\end{aligned}"))
'''

# -- 01 ---------------------------------------------------------------------------------
BATCHNORM_BACKWARD = [
    md(r"""
    # The backward pass of Batch Normalization, step by step

    Batch Normalization (training mode) normalises one feature over a batch of $m$ examples
    $x_1, \dots, x_m$, then scales and shifts it:

    $$
    \mu = \frac{1}{m}\sum_{j=1}^{m} x_j, \qquad
    \sigma^2 = \frac{1}{m}\sum_{j=1}^{m} (x_j - \mu)^2, \qquad
    \hat{x}_k = \frac{x_k - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad
    y_k = \gamma \hat{x}_k + \beta .
    $$

    Given the upstream gradients $\partial L / \partial y_k$, the backward pass must return
    $\partial L/\partial x_k$, $\partial L/\partial \gamma$ and $\partial L/\partial \beta$.
    The hard part is that every $x_k$ reaches the loss three ways: directly through its own
    $\hat{x}_k$, and through the batch statistics $\mu$ and $\sigma^2$ that every $\hat{x}_j$ uses.

    This notebook traces the layer for $m = 3$, draws its computation graph, applies the chain
    rule node by node (nothing typed in: every derivative below comes from bngraph's engine),
    simplifies the result into the well-known closed form, and checks it numerically.
    """),
    code("""
    import inspect

    import sympy as sp
    from IPython.display import SVG, Markdown, Math, display

    import bngraph
    from bngraph.tex.export import tex, to_markdown
    from bngraph import closed_form
    from bngraph import verify
    """ + SHOW_EQUATIONS + """
    print(inspect.getsource(bngraph.LAYERS["batchnorm"].function))
    """),
    md(r"""
    ## 1. Trace the layer

    The layer above is a plain Python function. bngraph runs it on $m = 3$ traced scalars and
    records every operation. `name(...)` marks the quantities of the paper ($\mu$, $\sigma^2$,
    $\hat{x}$); `stage(...)` names the remaining steps of the classic nine-step staged graph.
    The **named view** keeps only the paper's quantities, each written in terms of its nearest
    named ancestors:
    """),
    code("""
    trace = bngraph.LAYERS["batchnorm"].trace(3)
    named = bngraph.build_graph(trace, "named", "batchnorm")
    print(named)
    """),
    code("""
    SVG(named.render(format="svg"))
    """),
    md(r"""
    The **staged view** keeps one node per primitive operation: the nine steps
    (mean, centre, square, variance, square root, inverse, normalise, scale, shift) a course
    assignment asks you to backpropagate through one at a time.
    """),
    code("""
    staged = bngraph.build_graph(trace, "staged", "batchnorm")
    print(staged)
    SVG(staged.render(format="svg"))
    """),
    md(r"""
    ## 2. Local partial derivatives

    Every edge $p \to c$ of the named graph carries the local partial $\partial c / \partial p$:
    the derivative of the child's own definition with respect to that parent, all other
    parents held fixed. For $\hat{x}_1 = (x_1 - \mu)/\sqrt{\sigma^2 + \epsilon}$ there are
    three of them (plus one for the constant $\epsilon$, which no gradient is needed for):
    """),
    code("""
    d = bngraph.derive(named)

    def partial(child, parent):
        return rf"\\frac{{\\partial {tex(sp.Symbol(child))}}}{{\\partial {tex(sp.Symbol(parent))}}}"

    rows = []
    for child in ("mu", "sigma2", "xhat_1", "y_1"):
        rows += [(partial(child, p), dp) for p, dp in d.local_partials_of(child).items()]
    equations(rows)
    """),
    md(r"""
    ## 3. Adjoints by the chain rule

    The adjoint of a node $n$ is the total derivative $\partial L / \partial n$. Reverse mode
    visits the nodes from the outputs back to the inputs; each adjoint is the sum, over the
    node's children $c$, of the child's adjoint times the local partial:

    $$ \frac{\partial L}{\partial n} = \sum_{c \,\in\, \text{children}(n)} \frac{\partial L}{\partial c}\,\frac{\partial c}{\partial n}. $$

    Each line below is one node: the chain-rule sum, then the same with the local partials
    filled in.
    """),
    code("""
    rows = []
    for adjoint in d.adjoints.values():  # reverse topological order
        terms = [tex(sp.Symbol(f"dL_d{c}")) + " " + partial(c, adjoint.node) for c, _ in adjoint.terms]
        rows += [(adjoint.symbol, " + ".join(terms)), ("", adjoint.expr)]
    equations(rows)
    """),
    md(r"""
    ### The $\sigma^2$ path of $\partial L / \partial \mu$

    $\mu$ has four children: the three $\hat{x}_k$ and $\sigma^2$, because
    $\sigma^2 = \frac{1}{m}\sum_j (x_j - \mu)^2$ uses $\mu$. The chain rule therefore has a term
    $\frac{\partial L}{\partial \sigma^2}\,\frac{\partial \sigma^2}{\partial \mu}$, and it is easy to
    drop by accident. Here it is, and here is why it contributes nothing: its local partial is
    $-\frac{2}{m}\sum_j (x_j - \mu)$, which is zero once $\mu$ is the mean of the $x_j$.
    """),
    code("""
    via_sigma2 = dict(d.adjoints["mu"].terms)["sigma2"]
    at_mean = sp.simplify(via_sigma2.subs(sp.Symbol("mu"), sp.Add(*sp.symbols("x_1:4")) / 3))
    equations([
        (partial("sigma2", "mu"), via_sigma2),
        ("", r"-\\frac{2}{3}\\sum_{j=1}^{3} (x_j - \\mu)"),
        (r"\\text{at } \\mu = \\tfrac{1}{3}(x_1 + x_2 + x_3)", at_mean),
    ])
    """),
    md(r"""
    ## 4. The backward graph

    The same graph with every edge reversed: gradients flow from the outputs (top) back to the
    inputs (bottom). Each edge is labelled with its local partial, each node with its adjoint;
    with numbers given for the inputs and parameters (and $\partial L/\partial y_k = 1$ unless
    given), every node also shows its value and gradient.
    """),
    code("""
    values = {"x_1": 1.0, "x_2": 2.0, "x_3": 6.0, "gamma": 2.0, "beta": 0.5, "epsilon": 1e-5,
              "dL_dy_1": 1.0, "dL_dy_2": -0.5, "dL_dy_3": 0.25}
    SVG(d.render(format="svg", values=values))
    """),
    md(r"""
    ## 5. The closed form

    Substituting the adjoints into each other gives every gradient in the forward values alone;
    at $m = 3$ that is already long:
    """),
    code("""
    def section(document, heading):
        \"\"\"The part of a Markdown document under the ``## heading...`` line, heading included.\"\"\"
        part = next(p for p in document.split("\\n## ")[1:] if p.startswith(heading))
        return Markdown("## " + part)

    section(to_markdown(d), "Fully substituted")
    """),
    md(r"""
    bngraph simplifies it for every batch size $m$ at once (the next notebook shows how) into
    the closed form that implementations use. Written with the two batch sums
    $\sum_j \partial L/\partial y_j$ and $\sum_j \partial L/\partial y_j\,\hat{x}_j$:
    """),
    code("""
    closed = closed_form(d)
    equations([(lhs(key), formula) for key, formula in closed.formulas.items()])
    """),
    md(r"""
    At $m = 3$ it reads as follows; the three sums are exactly what one pass over the batch
    computes.
    """),
    code("""
    equations([(sp.Symbol(f"dL_dx_{k}"), closed.instantiate("dL_dx[i]", 3, k)) for k in (1, 2, 3)])
    """),
    md(r"""
    ## 6. Check it with numbers

    `verify` evaluates the engine's adjoints (named and staged view) and the closed form on random
    inputs, and compares them with three references that share no code with the engine: a NumPy
    backward written from the math, central finite differences, and HIPS autograd.
    """),
    code("""
    print(verify(d, closed).format())
    """),
    md(r"""
    The whole derivation is also available as one document, in LaTeX (`d.to_latex(closed)`,
    `bngraph derive --format latex`) or Markdown (`to_markdown(d, closed)`); this is its
    simplification, each step citing the numbered identities:
    """),
    code("""
    section(to_markdown(d, closed), "Simplification")
    """),
]

# -- 02 ---------------------------------------------------------------------------------
CLOSED_FORM_ANY_M = [
    md(r"""
    # Why the closed form holds for every batch size $m$

    A trace at $m = 3$ proves a formula for $m = 3$ only. The backward pass of Batch Norm that
    every framework codes,

    $$
    \frac{\partial L}{\partial x_i} = \frac{\gamma}{m\sqrt{\sigma^2 + \epsilon}}
    \Big( m \frac{\partial L}{\partial y_i} - \sum_{j=1}^{m} \frac{\partial L}{\partial y_j}
    - \hat{x}_i \sum_{j=1}^{m} \frac{\partial L}{\partial y_j}\,\hat{x}_j \Big),
    $$

    is a statement about every $m \ge 1$. This notebook shows how bngraph reaches it:

    1. **Plate lifting.** The layer is traced at three sizes; the traces share one shape, a
       *plate program*: per-example families ($x_i$, $\hat{x}_i$, $y_i$) and batch values
       ($\mu$, $\sigma^2$) joined by sums over $j = 1..m$.
    2. **Reverse mode at symbolic $m$**, with one rule for sums: $x_i$ reaches
       $\sum_j f(x_j)$ only through its own term.
    3. **Simplification by identities** that the layer's own definitions imply, such as
       $\sum_j \hat{x}_j = 0$, each valid for every $m$.

    It ends with the compact backward a kernel writer codes, the edge case $m = 1$, and a check
    of the closed form at $m = 1, \dots, 8$ against the NumPy reference.
    """),
    code("""
    import numpy as np
    import sympy as sp
    from IPython.display import Math, display

    import bngraph
    from bngraph.closedform.evaluate import adjoint_values, closed_form_values, forward_values
    from bngraph.tex.export import tex
    from bngraph.closedform.plates import lift
    from bngraph.check.reference import reference_backward
    from bngraph import closed_form
    """ + SHOW_EQUATIONS + """
    batchnorm = bngraph.LAYERS["batchnorm"]
    closed = closed_form(bngraph.derive(bngraph.build_graph(batchnorm.trace(3), "named", "batchnorm")))
    print(bngraph.__version__)
    """),
    md(r"""
    ## 1. The plate program

    `lift` traces the layer at $m = 4, 5, 6$ and reads off one row per *family* of per-example
    nodes (`example`: one node per $i$, all made by the same rule) or per *batch* node
    (`batch`: one per batch). Constants that change with $m$, like the $1/m$ of the mean, are
    fitted as functions of $m$ on two sizes and checked on the third. Unnamed intermediates get
    generated names (`b4`, `b8`).
    """),
    code("""
    plates = lift(batchnorm.function)
    for node in plates.nodes:
        args = ", ".join(f"Σ_j {a[1]}[j]" if a[0] == "sum" else f"{a[1]}[i]" if a[0] == "e" else str(a[1])
                         for a in node.args)
        rule = f"= {node.op} {args}" if args else f"  ({node.role})"
        print(f"{node.kind:<8} {node.name:<8} {rule}")
    """),
    md(r"""
    Contracted to the named quantities, these are the layer's definitions at symbolic $m$,
    $i$ any example and $j$ summed:
    """),
    code("""
    equations([(lhs(key), value) for key, value in closed.definitions.items()])
    """),
    md(r"""
    ## 2. The chain rule at symbolic $m$

    Reverse mode runs on the plate program. Differentiating a SymPy `Sum` directly leaves
    `KroneckerDelta` and `Piecewise`; two rules replace it, both valid for every $m$:

    * the adjoint of a batch value sums its per-example uses over $j$
      (e.g. $\partial L/\partial\mu$ collects $\sum_j \partial L/\partial\hat{x}_j \cdot \partial\hat{x}_j/\partial\mu$);
    * an example value $x_i$ reaches a sum $\sum_j f(x_j)$ only through its own term:
      $\frac{\partial}{\partial x_i}\sum_j f(x_j) = f'(x_i)$.
    """),
    code("""
    equations([(lhs(key), chain) for key, chain in closed.chain_rule.items()])
    """),
    md(r"""
    ## 3. The identities

    Substituting the adjoints into each other leaves sums of $x_j$ and products with $x_j$.
    The simplification uses identities that the definitions themselves imply: the normalised
    value solved for the input, and each batch definition read as an equation for the one new
    sum it contains. $\mu$'s definition gives $\sum_j \hat{x}_j = 0$; $\sigma^2$'s gives
    $\sum_j \hat{x}_j^2 = m\sigma^2/(\sigma^2 + \epsilon)$.
    """),
    code("""
    equations([(identity.lhs, identity.rhs) for identity in closed.identities],
              [f"({identity.reason})" for identity in closed.identities])
    """),
    md(r"""
    ## 4. The steps, one rule at a time

    Each adjoint keeps the chain of steps that led to its closed form. For
    $\partial L/\partial\mu$, the path through $\sigma^2$ (notebook 01) disappears by the
    identity $\sum_j \hat{x}_j = 0$:
    """),
    code("""
    steps = closed.steps["dL_dmu"]
    equations([(lhs("dL_dmu") if k == 0 else "", step.expr) for k, step in enumerate(steps)])
    for k, step in enumerate(steps, 1):
        print(f"{k}. {step.description}")
    """),
    md(r"""
    And for $\partial L/\partial x_i$; the last step collects the result on the two batch sums:
    """),
    code("""
    steps = closed.steps["dL_dx[i]"]
    for k, step in enumerate(steps, 1):
        print(f"{k}. {step.description}")
    equations([(lhs("dL_dx[i]"), steps[0].expr), ("", steps[-1].expr)], ["(chain rule)", "(closed form)"])
    """),
    md(r"""
    ## 5. The compact backward

    Common subexpressions pulled out, this is what a kernel writer codes: two reductions over
    the batch ($s_1 = \sum_j \partial L/\partial y_j\,\hat{x}_j$ and $s_2 = \sum_j \partial L/\partial y_j$,
    which are also $\partial L/\partial\gamma$ and $\partial L/\partial\beta$), then one
    elementwise pass.
    """),
    code("""
    print(closed.compact_backward())
    """),
    md(r"""
    Transcribed into NumPy, for a batch of shape $(m, F)$ with one $\gamma$ per feature:
    """),
    code("""
    def backward_from_closed_form(dout, xhat, gamma, sigma2, eps):
        m = dout.shape[0]
        s1 = (dout * xhat).sum(axis=0)  # Σ_j dL/dy_j x̂_j  (= dL/dγ)
        s2 = dout.sum(axis=0)           # Σ_j dL/dy_j      (= dL/dβ)
        s3 = gamma / np.sqrt(sigma2 + eps)
        dx = s3 * (m * dout - s1 * xhat - s2) / m
        return dx, s1, s2
    """),
    md(r"""
    ## 6. The edge case $m = 1$

    With one example, $\mu = x_1$, so $\sigma^2 = 0$ and $\hat{x}_1 = 0$: the output is $\beta$
    whatever $x_1$ is, and the gradient with respect to $x_1$ must vanish. The closed form says
    so: at $m = 1$ the first two terms cancel, and the third carries $\hat{x}_1 = 0$.
    (PyTorch refuses to train Batch Norm on one value per channel for this reason.)
    """),
    code("""
    at_one = closed.instantiate("dL_dx[i]", 1, 1)
    equations([
        (sp.Symbol("dL_dx_1"), at_one),
        ("", at_one.subs(sp.Symbol("xhat_1"), 0)),
    ], ["(the closed form at m = 1)", r"(x̂_1 = 0)"])
    """),
    md(r"""
    The engine's own derivation at $m = 1$, traced and differentiated without the closed form,
    agrees: its fully substituted $\partial L/\partial x_1$ simplifies to $0$.
    """),
    code("""
    one = bngraph.derive(bngraph.build_graph(batchnorm.trace(1), "named", "batchnorm"))
    print(one.graph)
    equations([(sp.Symbol("dL_dx_1"), sp.simplify(one.substituted("x_1")))])
    """),
    md(r"""
    ## 7. Check at $m = 1, \dots, 8$

    For each $m$: random $x$, $\gamma$, $\beta$ and upstream gradients; the closed form
    evaluated by bngraph (its sums written out at that $m$), the NumPy transcription above, and
    the engine's adjoints of a fresh trace at that $m$, each against the NumPy reference
    backward. The error is relative to the size of $\partial L/\partial x$'s terms,
    $|\gamma|\max_j|\partial L/\partial y_j|/\sqrt{\sigma^2+\epsilon}$ (at $m = 1$ the gradient
    itself is $0$).
    """),
    code("""
    rng = np.random.default_rng(0)
    eps = 1e-5
    print(f"{'m':>2}  {'max |dL/dx|':>11}  {'closed form':>11}  {'NumPy kernel':>12}  {'engine':>9}")
    for m in range(1, 9):
        x, dout = rng.normal(0.5, 2.0, m), rng.normal(size=m)
        gamma, beta = rng.uniform(0.5, 2.0), rng.normal()
        dx_ref, dgamma_ref, dbeta_ref = reference_backward(
            "batchnorm", dout[:, None], x[:, None], [gamma], [beta], eps)
        dx_ref = dx_ref.ravel()

        graph = bngraph.build_graph(batchnorm.trace(m), "named", "batchnorm")
        leaves = {**{f"x_{k}": x[k - 1] for k in range(1, m + 1)}, "gamma": gamma, "beta": beta, "epsilon": eps}
        upstream = {f"dL_dy_{k}": dout[k - 1] for k in range(1, m + 1)}
        values = forward_values(graph, leaves)
        by_closed_form = np.array(closed_form_values(closed, values, upstream, m)["dL_dx[i]"])
        xhat = np.array([values[f"xhat_{k}"] for k in range(1, m + 1)])
        by_kernel = backward_from_closed_form(dout[:, None], xhat[:, None], gamma, values["sigma2"], eps)[0].ravel()
        adjoints = adjoint_values(bngraph.derive(graph), values, upstream)
        by_engine = np.array([adjoints[f"x_{k}"] for k in range(1, m + 1)])

        scale = abs(gamma) * np.abs(dout).max() / np.sqrt(values["sigma2"] + eps)
        errors = [np.abs(got - dx_ref).max() / scale for got in (by_closed_form, by_kernel, by_engine)]
        assert max(errors) < 1e-9, (m, errors)
        print(f"{m:>2}  {np.abs(dx_ref).max():>11.3g}  {errors[0]:>11.1e}  {errors[1]:>12.1e}  {errors[2]:>9.1e}")
    """),
]

# -- 03 ---------------------------------------------------------------------------------
CHECK_YOUR_BACKWARD = [
    md(r"""
    # Check your own backward pass

    You have written `batchnorm_forward` and `batchnorm_backward` for a course assignment or
    a kernel. The correct gradient is

    $$
    \frac{\partial L}{\partial x_i} = \frac{\gamma}{N\sqrt{\sigma^2 + \epsilon}}
    \Big( N\, \frac{\partial L}{\partial y_i} - \sum_{j} \frac{\partial L}{\partial y_j}
    - \hat{x}_i \sum_{j} \frac{\partial L}{\partial y_j}\,\hat{x}_j \Big),
    \qquad
    \frac{\partial L}{\partial \gamma} = \sum_j \frac{\partial L}{\partial y_j}\hat{x}_j,
    \qquad
    \frac{\partial L}{\partial \beta} = \sum_j \frac{\partial L}{\partial y_j},
    $$

    with sums over the $N$ examples of the batch. One wrong sign or a missing $1/N$ gives a
    gradient that still looks plausible. `bngraph.check.check_backward` calls your forward for
    its cache, hands the cache to your backward, compares $dx$, $d\gamma$, $d\beta$ with an
    independent NumPy reference on several shapes, seeds and $\epsilon$, and, when a gradient
    is wrong, names the mistake it matches.

    This notebook checks a deliberately wrong backward, fixes it, and then runs the same check
    as a pytest test.
    """),
    code("""
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from bngraph.check import check_backward, load_function

    # The student's files live in a scratch folder, not next to this notebook.
    notebook_dir = Path.cwd()
    workdir = Path(tempfile.mkdtemp(prefix="bngraph-check-"))
    os.chdir(workdir)
    print("working in a scratch folder")
    """),
    md(r"""
    ## 1. A backward with a bug

    The forward uses the assignment's signature `(x, gamma, beta, bn_param)` and keeps what the
    backward needs in its cache. The backward has a sign error: the $\hat{x}_i \sum_j g_j\hat{x}_j$
    term (the path through $\sigma^2$) is added instead of subtracted.
    """),
    code("""
    %%writefile my_batchnorm.py
    import numpy as np


    def batchnorm_forward(x, gamma, beta, bn_param):
        eps = bn_param.get("eps", 1e-5)
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        xhat = (x - mu) / np.sqrt(var + eps)
        return gamma * xhat + beta, (xhat, gamma, var, eps)


    def batchnorm_backward(dout, cache):
        xhat, gamma, var, eps = cache
        N = dout.shape[0]
        g = dout * gamma  # dL/dx̂
        dx = (N * g - g.sum(axis=0) + xhat * (g * xhat).sum(axis=0)) / (N * np.sqrt(var + eps))
        return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
    """),
    md(r"""
    ## 2. Check it

    `check_backward` finds `batchnorm_forward` next to `batchnorm_backward` by name. The
    report gives the worst relative error of each gradient and, below, the diagnosis:
    """),
    code("""
    report = check_backward(load_function("my_batchnorm.py:batchnorm_backward"))
    print(report.format())
    print("ok:", report.ok)
    """),
    md(r"""
    The same check from the command line; the exit status is 1 when a gradient is wrong:

    ```
    bngraph check-backward my_batchnorm.py:batchnorm_backward
    ```
    """),
    code("""
    def run(*command):
        \"\"\"Run a command in the scratch folder, print its output and exit status.\"\"\"
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        print(done.stdout + done.stderr)
        print("exit status", done.returncode)

    run(sys.executable, "-m", "bngraph", "check-backward", "my_batchnorm.py:batchnorm_backward")
    """),
    md(r"""
    ## 3. The same check as a pytest test

    Installing bngraph registers a pytest plugin with a fixture, `bngraph_check`, and the
    function behind it, `bngraph.check.assert_backward_matches`, works in any test. A wrong
    backward fails the test with the report above, diagnosis included.
    """),
    code("""
    %%writefile test_my_batchnorm.py
    from bngraph.check import assert_backward_matches
    from my_batchnorm import batchnorm_backward, batchnorm_forward


    def test_backward_matches_the_reference():
        assert_backward_matches(batchnorm_backward, forward=batchnorm_forward)


    def test_backward_with_the_fixture(bngraph_check):
        bngraph_check(batchnorm_backward)  # forward found by name, layer "batchnorm"
    """),
    code("""
    run(sys.executable, "-m", "pytest", "-q", "--tb=short", "--color=no", "-p", "no:cacheprovider",
        "test_my_batchnorm.py")
    """),
    md(r"""
    ## 4. Fix it, check again

    The sign of the $\hat{x}$ term is the fix. (Other slips bngraph names: the $1/N$ left out,
    the $\gamma$ left out of $dL/d\hat{x}$, the unbiased variance, a forgotten $\epsilon$,
    a sum over the wrong axis, $d\gamma$ and $d\beta$ swapped.)
    """),
    code("""
    %%writefile my_batchnorm.py
    import numpy as np


    def batchnorm_forward(x, gamma, beta, bn_param):
        eps = bn_param.get("eps", 1e-5)
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        xhat = (x - mu) / np.sqrt(var + eps)
        return gamma * xhat + beta, (xhat, gamma, var, eps)


    def batchnorm_backward(dout, cache):
        xhat, gamma, var, eps = cache
        N = dout.shape[0]
        g = dout * gamma  # dL/dx̂
        # the path through σ² enters with a minus sign: −x̂_i Σ_j g_j x̂_j
        dx = (N * g - g.sum(axis=0) - xhat * (g * xhat).sum(axis=0)) / (N * np.sqrt(var + eps))
        return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)
    """),
    code("""
    report = check_backward(load_function("my_batchnorm.py:batchnorm_backward"))
    print(report.format())
    """),
    code("""
    run(sys.executable, "-m", "pytest", "-q", "--tb=short", "--color=no", "-p", "no:cacheprovider",
        "test_my_batchnorm.py")
    """),
    code("""
    import shutil

    os.chdir(notebook_dir)
    shutil.rmtree(workdir)
    print("scratch folder removed")
    """),
]

# -- 04 ---------------------------------------------------------------------------------
OTHER_LAYERS_AND_MODES = [
    md(r"""
    # Evaluation mode, running statistics, Layer Norm and a layer of your own

    **Evaluation mode.** At test time Batch Norm does not use the batch's statistics but
    running averages collected during training:
    $y_k = \gamma\,(x_k - \mu_{\text{run}})/\sqrt{\sigma^2_{\text{run}} + \epsilon} + \beta$.
    $\mu_{\text{run}}$ and $\sigma^2_{\text{run}}$ are constants here, so the backward is just
    $\partial L/\partial x_k = \gamma\,\partial L/\partial y_k / \sqrt{\sigma^2_{\text{run}} + \epsilon}$.

    **Running statistics.** After each training batch,
    $\mu_{\text{run}} \leftarrow (1 - p)\,\mu_{\text{run}} + p\,\mu$ and
    $\sigma^2_{\text{run}} \leftarrow (1 - p)\,\sigma^2_{\text{run}} + p\,s^2$ with momentum
    $p$. Frameworks differ in $s^2$: PyTorch feeds the *unbiased* variance
    $\frac{1}{m-1}\sum_j (x_j - \mu)^2$, CS231n and Keras the *biased* one, $\sigma^2$, that the batch
    itself is normalised with.

    **Layer Norm** normalises one example over its $m$ entries instead of one feature over
    the batch: the same formulas, so the same backward.

    **Your own layer.** Any function written with `+ - * /`, `**`, `sum`, `len` and
    bngraph's `sqrt`, `exp`, `log` can be traced, derived, put in closed form and verified:
    here, RMSNorm.
    """),
    code("""
    import numpy as np
    import sympy as sp
    from IPython.display import SVG, Math, display

    import bngraph
    from bngraph.tex.export import tex
    from bngraph.check.reference import batchnorm_eval_forward, batchnorm_forward, update_running_stats
    from bngraph import closed_form
    from bngraph import verify
    """ + SHOW_EQUATIONS + """
    def derivation(layer, m=3):
        \"\"\"A built-in layer traced at m, its named graph derived (the layer's name kept for verify).\"\"\"
        return bngraph.derive(bngraph.build_graph(bngraph.LAYERS[layer].trace(m), "named", layer))

    print(sorted(bngraph.LAYERS))
    """),
    md(r"""
    ## 1. Evaluation mode

    The running statistics are constants of the graph (dashed edges: no gradient flows into
    them), so $x_k$ reaches the loss through its own $\hat{x}_k$ only:
    """),
    code("""
    evaluation = derivation("batchnorm-eval")
    print(evaluation.graph)
    SVG(evaluation.render(format="svg"))
    """),
    code("""
    evaluation_closed = closed_form(evaluation)
    equations([(lhs(key), formula) for key, formula in evaluation_closed.formulas.items()])
    """),
    code("""
    print(verify(evaluation, evaluation_closed).format())
    """),
    md(r"""
    ## 2. Running statistics: unbiased or biased variance

    One batch of $m = 3$ values, $x = (1, 2, 6)$: $\mu = 3$ and $\sum_j (x_j - \mu)^2 = 14$, so the
    unbiased variance is $14/2 = 7$ and the biased one $14/3 \approx 4.67$. From
    $\mu_{\text{run}} = 0$, $\sigma^2_{\text{run}} = 1$ with PyTorch's momentum $0.1$:
    """),
    code("""
    x = np.array([[1.0], [2.0], [6.0]])
    for variance in ("unbiased", "biased"):
        mean, var = update_running_stats([0.0], [1.0], x, momentum=0.1, variance=variance)
        print(f"{variance:>8}: running_mean = {mean[0]:.4f}, running_var = {var[0]:.4f}")
    """),
    md(r"""
    The difference does not wash out. Train on the same batch again and again and the running
    variance converges to the variance fed in: $7$ with PyTorch's convention, while the batch
    was normalised with $14/3$. In evaluation mode the same batch then comes out scaled by
    $\sqrt{(14/3 + \epsilon)/(7 + \epsilon)} \approx 0.816$: a factor $\sqrt{(m-1)/m}$, which
    matters for small $m$ and vanishes for large ones.
    """),
    code("""
    gamma, beta, eps = np.array([1.0]), np.array([0.0]), 1e-5
    train_out, _ = batchnorm_forward(x, gamma, beta, eps)
    print("training mode:        ", train_out.ravel().round(4))
    for variance in ("unbiased", "biased"):
        mean, var = np.zeros(1), np.ones(1)
        for _ in range(200):
            mean, var = update_running_stats(mean, var, x, momentum=0.1, variance=variance)
        eval_out, _ = batchnorm_eval_forward(x, gamma, beta, mean, var, eps)
        ratio = eval_out.ravel()[2] / train_out.ravel()[2]
        print(f"eval, {variance:>8} var:  {eval_out.ravel().round(4)}   running_var {var[0]:.4f}, "
              f"eval/train {ratio:.4f}")
    print(f"sqrt((m-1)/m) = {np.sqrt(2 / 3):.4f}")
    """),
    md(r"""
    With $m = 1$ the unbiased variance is undefined ($0/0$), and bngraph says so rather than
    return `nan`:
    """),
    code("""
    try:
        update_running_stats([0.0], [1.0], np.array([[5.0]]))
    except bngraph.BngraphError as error:
        print("BngraphError:", error)
    """),
    md(r"""
    ## 3. Layer Norm

    Layer Norm computes $\mu$ and $\sigma^2$ over the $m$ entries of one example. Traced, it has
    the same graph as Batch Norm, and its closed form is the same formula with $m$ the number of
    entries:
    """),
    code("""
    layernorm = derivation("layernorm")
    layernorm_closed = closed_form(layernorm)
    batchnorm_closed = closed_form(derivation("batchnorm"))
    equations([(lhs(key), formula) for key, formula in layernorm_closed.formulas.items()])
    print("same closed form as Batch Norm:", dict(layernorm_closed.formulas) == dict(batchnorm_closed.formulas))
    """),
    md(r"""
    The numbers differ from Batch Norm's only in what the reference sums over (the entries of a
    row, with one $\gamma$ per entry, instead of a column):
    """),
    code("""
    print(verify(layernorm, layernorm_closed).format())
    """),
    md(r"""
    ## 4. A layer of your own: RMSNorm

    RMSNorm drops the centring and the shift: $\mathrm{ms} = \frac{1}{m}\sum_j x_j^2$,
    $\mathrm{rms} = \sqrt{\mathrm{ms} + \epsilon}$, $y_k = \gamma\, x_k/\mathrm{rms}$. Written as
    a plain function, with `bngraph.name` marking the quantities to keep in the named view and
    `bngraph.sqrt` for the square root:
    """),
    code("""
    def rmsnorm(x, gamma, epsilon):
        m = len(x)
        ms = bngraph.name(sum(xk * xk for xk in x) / m, "ms")
        rms = bngraph.name(bngraph.sqrt(ms + epsilon), "rms")
        xhat = bngraph.name([xk / rms for xk in x], "xhat")
        return [gamma * h for h in xhat]

    rms_graph = bngraph.build_graph(bngraph.trace(rmsnorm, 3), "named")
    print(rms_graph)
    SVG(rms_graph.render(format="svg"))
    """),
    md(r"""
    The chain rule, node by node, then the closed form for every $m$: without the centring
    there is no $\sum_j \partial L/\partial y_j$ term.
    """),
    code("""
    rms = bngraph.derive(rms_graph)
    equations([(adjoint.symbol, adjoint.expr) for adjoint in rms.adjoints.values()])
    """),
    code("""
    rms_closed = closed_form(rms)
    equations([(lhs(key), formula) for key, formula in rms_closed.formulas.items()])
    equations([(identity.lhs, identity.rhs) for identity in rms_closed.identities],
              [f"({identity.reason})" for identity in rms_closed.identities])
    print(rms_closed.compact_backward())
    """),
    md(r"""
    There is no NumPy reference for a user's layer, so `verify` checks the engine and the closed
    form against finite differences and autograd of the very same function, run on numbers
    (`bngraph.name` and `bngraph.sqrt` pass numbers through):
    """),
    code("""
    print(verify(rms, rms_closed).format())
    """),
]

NOTEBOOKS = {
    "01_batchnorm_backward.ipynb": BATCHNORM_BACKWARD,
    "02_closed_form_any_m.ipynb": CLOSED_FORM_ANY_M,
    "03_check_your_backward.ipynb": CHECK_YOUR_BACKWARD,
    "04_other_layers_and_modes.ipynb": OTHER_LAYERS_AND_MODES,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` as written above, without outputs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.from_dict(cell) for cell in NOTEBOOKS[name]])
    nb.metadata = {
        "kernelspec": {"name": KERNEL, "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    for k, cell in enumerate(nb.cells):  # stable ids: a rebuild changes only what changed
        cell.id = f"cell-{k:02d}"
    return nb


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel, from this folder; raise on the first error."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name=KERNEL, record_timing=False,
                   resources={"metadata": {"path": str(HERE)}}).execute()
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _machine_warning(o)]
    return nb


def _machine_warning(output) -> bool:
    """A warning this machine's fontconfig prints when Graphviz lays out text: not part of the
    lesson (it reaches the notebook through ipykernel's capture of the process's stderr)."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    lines = [line for line in output.get("text", "").splitlines() if line.strip()]
    return bool(lines) and all(line.startswith("Fontconfig ") for line in lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (a prefix such as 02); default all")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    args = parser.parse_args(argv)
    names = [n for n in NOTEBOOKS if not args.names or any(n.startswith(p) for p in args.names)]
    for name in names:
        start = time.perf_counter()
        nb = build(name)
        if not args.no_execute:
            execute(nb)
        nbformat.write(nb, HERE / name)
        print(f"{name}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
