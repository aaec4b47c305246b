"""The command line: a thin layer that parses arguments and calls the pipeline's stages.

Exit status: 0 success; 1 a verification found a mismatch; 2 bad input or usage.
Every error is one line on stderr, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from pathlib import Path

from bngraph.engine import progress
from bngraph.engine.limits import FULL_MAX_M, M_LIMITS, check_full, check_m
from bngraph.engine.usercode import forget_printed
from bngraph.errors import BngraphError, one_line

EXAMPLES = {
    "derive": """examples:
  bngraph derive                              # batchnorm, m = 3, named view, as text
  bngraph derive --m 4 --view staged          # the staged backward, by its 9 steps
  bngraph derive --format json -o bn.json     # the contract's JSON
  bngraph derive --format latex -o bn.tex     # a standalone LaTeX document (for every m)
  bngraph derive --format latex --full -o bn.tex   # … and the whole m = 3 expansion
  bngraph derive --function my_bn.py:forward  # your own forward pass (plain Python or NumPy)
  bngraph derive --function my_bn.py:forward --compare batchnorm
                                              # the same function as batchnorm? the same backward?""",
    "render": """examples:
  bngraph render -o bn.svg                    # forward graph, named view
  bngraph render --view staged --direction backward -o bn_back.pdf
  bngraph render --m 64 -o big.png            # large m is drawn with an ellipsis
  bngraph render --values random -o bn.svg    # each node's value and gradient, as in micrograd
  bngraph render --direction backward --chain-rule -o bn.svg
  bngraph render --view staged --direction backward --values random -o steps.png   # the 9 steps""",
    "verify": """examples:
  bngraph verify                              # batchnorm, m = 3
  bngraph verify layernorm --m 8""",
    "check-backward": """examples:
  bngraph check-backward layers.py:batchnorm_backward
  bngraph check-backward my.py:bn_backward --forward my.py:bn_forward""",
    "audit": """examples:
  bngraph audit notes.md
  bngraph audit derivation.tex --format json""",
    "codegen": """examples:
  bngraph codegen --target numpy -o bn.py     # batchnorm: forward(x, gamma, beta, eps), backward(dout, cache)
  bngraph codegen layernorm --target torch -o ln_torch.py   # a torch.autograd.Function
  bngraph codegen --function my.py:rmsnorm --target jax --axis 1 -o rms_jax.py   # over each row
  bngraph check-backward bn.py:backward       # the generated code, checked""",
    "report": """examples:
  bngraph report -o bngraph-output            # graphs, derivation, LaTeX, checks""",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        raise BngraphError(f"{self.prog}: {message} (see --help)")


def _m(command: str):
    """The ``--m`` option's type for ``command``: a whole number from 1 to the command's limit."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"m must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"m must be at least 1, got {value}")
        try:
            return check_m(command, value)
        except BngraphError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _target_options(p: argparse.ArgumentParser, command: str, view: bool = True) -> None:
    p.add_argument("layer", nargs="?", default=None, help="built-in layer (default: batchnorm; see `bngraph layers`)")
    p.add_argument("--function", metavar="FILE.py:FUNC", help="trace your own function FUNC(x, p1, p2, ...): plain "
                   "Python on the list x, or NumPy on the array x (also FUNC(x, gamma, beta, bn_param) -> (out, cache))")
    p.add_argument("--m", type=_m(command), default=3,
                   help=f"batch size m (default: 3; at most {M_LIMITS[command]}, larger work would not fit)")
    if view:
        p.add_argument("--view", choices=("named", "staged"), default="named", help="graph view (default: named)")


def _cache_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true", help="compute the closed form afresh: neither read nor write "
                   "bngraph's cache ($BNGRAPH_CACHE_DIR, else $XDG_CACHE_HOME/bngraph or ~/.cache/bngraph); "
                   "the output is the same")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bngraph",
        description="Trace, derive, check, draw and typeset the backward pass of Batch Norm\n"
        "and other normalization layers.",
        epilog="""examples:
  bngraph layers                              # the built-in layers
  bngraph derive                              # Batch Norm, m = 3: every adjoint and the closed form
  bngraph derive --function my_bn.py:forward --format json
  bngraph render -o bn.svg                    # draw the graph
  bngraph verify layernorm --m 8              # check against NumPy and finite differences

Run `bngraph COMMAND --help` for more examples. Exit status: 0 ok, 1 mismatch found, 2 bad input.""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name, help_):
        return sub.add_parser(name, help=help_, description=help_, epilog=EXAMPLES.get(name),
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("derive", "derive every adjoint and the closed form, as text, JSON, LaTeX or Markdown")
    _target_options(p, "derive")
    p.add_argument("--format", choices=("text", "json", "latex", "markdown"), default="text")
    p.add_argument("--loss", choices=("L", "ell"), default="L", help="LaTeX/Markdown: write the loss L or ℓ")
    p.add_argument("--batch-subscript", action="store_true", help="LaTeX/Markdown: write μ_𝓑 and σ²_𝓑")
    p.add_argument("--full", action="store_true", help="LaTeX/Markdown: add the derivation at the given m, node by node")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (LaTeX: a standalone document)")
    _cache_option(p)
    p.add_argument("--compare", metavar="LAYER", help="with --function: is it the same function as the built-in "
                   "LAYER for every m, with the same backward? (a small counterexample where not; exit 1 if not)")

    p = command("render", "draw the forward or backward graph with Graphviz (SVG, PNG, PDF, DOT)")
    _target_options(p, "render")
    p.add_argument("--direction", choices=("forward", "backward"), default="forward")
    p.add_argument("--full", action="store_true",
                   help=f"draw every example even for large m (up to m = {FULL_MAX_M}: the layout takes minutes above)")
    p.add_argument("--chain-rule", action="store_true", help="backward: write each node's chain-rule sum in it")
    p.add_argument("--constants", action="store_true", help="backward: draw the edges into constants (ε) too")
    p.add_argument("--values", metavar="SPEC", help="show each node's value and gradient: 'random' (seeded) "
                   "or name=number pairs, e.g. x_1=1,x_2=2,x_3=4,gamma=1.5,beta=0,epsilon=1e-5")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="FILE.svg, .png, .pdf or .dot")

    p = command("verify", "check the derived formulas against NumPy, finite differences and autograd")
    _target_options(p, "verify", view=False)
    _cache_option(p)

    p = command("check-backward", "check your own backward code against the references")
    p.add_argument("target", metavar="FILE.py:BACKWARD")
    p.add_argument("--forward", metavar="FILE.py:FORWARD", help="your forward (default: BACKWARD with backward->forward)")
    p.add_argument("--layer", default="batchnorm", help="layer your code implements (default: batchnorm)")

    p = command("audit", "check the formulas of a write-up (.md, .tex, .ipynb, .txt)")
    p.add_argument("file", metavar="FILE", help="the write-up (- reads standard input, as Markdown); at most 2 MB")
    p.add_argument("--layer", default="batchnorm", help="the layer the write-up is about: batchnorm (default), "
                   "batchnorm-eval, layernorm, rmsnorm")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _cache_option(p)

    p = command("codegen", "generate the derived forward and backward as a NumPy, PyTorch or JAX module")
    p.add_argument("layer", nargs="?", default=None, help="built-in layer (default: batchnorm; see `bngraph layers`)")
    p.add_argument("--function", metavar="FILE.py:FUNC", help="your own function FUNC(x, p1, p2, ...)")
    p.add_argument("--target", choices=("numpy", "torch", "jax"), required=True)
    p.add_argument("--axis", type=int, choices=(0, 1), default=None,
                   help="the axis of (N, D) arrays the m values run along: 0 normalises each column over the "
                        "batch (Batch Norm), 1 each row (Layer Norm, RMSNorm); default: the function's "
                        "__bngraph_axis__, else 0")
    p.add_argument("-o", "--output", metavar="FILE.py", help="write the module to FILE.py (default: standard output)")
    _cache_option(p)
    p.set_defaults(m=3, view="named")  # the closed form holds for every m; the trace needs one

    command("layers", "list the built-in layers")

    p = command("report", "the main job: graphs, derivation (text, JSON, LaTeX, Markdown) and checks in a folder")
    _target_options(p, "report", view=False)
    p.add_argument("-o", "--output", metavar="FOLDER", default="bngraph-output", help="folder (default: bngraph-output)")
    _cache_option(p)
    return parser


def _graph(args, view=None):
    from bngraph.engine.graph import build_graph
    from bngraph.engine.layers import trace_target

    if args.function and args.layer:
        raise BngraphError("give either a LAYER or --function, not both")
    label = args.function or args.layer or "batchnorm"
    progress.step(f"tracing {label} at m = {args.m}")
    t = trace_target(args.layer, args.function, args.m)
    progress.step(f"building the {view or args.view} graph")
    return build_graph(t, view or args.view, label)


def _derivation(args, view=None):
    from bngraph.engine.derive import derive

    graph = _graph(args, view)
    progress.step("deriving the adjoints")
    return derive(graph)


def _closed_form(derivation):
    from bngraph.closedform.simplify import closed_form

    progress.step("simplifying to the closed form")
    return closed_form(derivation)


def _emit(text: str, output: str | None) -> None:
    if output:
        from bngraph.output.files import write_atomic

        write_atomic(output, text)
    else:
        sys.stdout.write(text)


def cmd_derive(args) -> int:
    from bngraph.output import export

    if args.compare:
        from bngraph.check.compare import compare_text

        text, code = compare_text(args)
        _emit(text, args.output)
        return code
    d = _derivation(args)
    closed = _closed_form(d)
    progress.step(f"printing {args.format}")
    if args.format == "json":
        text = export.to_json(d, closed)
    elif args.format == "text":
        text = export.to_text(d, closed)
    else:
        from bngraph.tex import export as latex

        options = {"loss": "\\ell" if args.loss == "ell" else "L", "batch_subscript": args.batch_subscript,
                   "full": args.full}
        if args.format == "latex":
            text = latex.to_latex(d, closed, standalone=bool(args.output), **options)
        else:
            text = latex.to_markdown(d, closed, **options)
    _emit(text, args.output)
    return 0


def cmd_render(args) -> int:
    from bngraph.output.render import cli_render

    if args.full:
        check_full(args.m)
    if args.direction == "forward" and args.values is None:  # a plain forward diagram needs no adjoints
        return cli_render(args, _graph(args))
    d = _derivation(args)
    return cli_render(args, d.graph, d)


def cmd_verify(args) -> int:
    from bngraph.check.verify import cli_verify

    return cli_verify(args, _derivation(args, "named"))


def cmd_check_backward(args) -> int:
    from bngraph.check.backward import cli_check_backward

    return cli_check_backward(args)


def cmd_audit(args) -> int:
    from bngraph.audit.auditor import cli_audit

    return cli_audit(args)


def cmd_codegen(args) -> int:
    from bngraph.codegen import generate_for

    if args.output and not args.output.endswith(".py"):
        raise BngraphError(f"codegen writes a Python module: -o must name a .py file, not {args.output!r}")
    _emit(generate_for(_derivation(args), args.target, args.axis), args.output)
    return 0


def cmd_layers(args) -> int:
    from bngraph.engine.layers import LAYERS

    width = max(map(len, LAYERS))
    for layer in LAYERS.values():
        print(f"{layer.name:<{width}}  {layer.summary}")
    return 0


def cmd_report(args) -> int:
    from bngraph.output.report import write_report

    return write_report(args, Path(args.output))


COMMANDS = {
    "derive": cmd_derive, "render": cmd_render, "verify": cmd_verify, "check-backward": cmd_check_backward,
    "audit": cmd_audit, "codegen": cmd_codegen, "layers": cmd_layers, "report": cmd_report,
}


def entry() -> int:
    """The ``bngraph`` command (and ``python -m bngraph``): :func:`main` in a process of its own.

    Its garbage collector is told what such a process does: it builds hundreds of thousands of
    SymPy expressions that hold no reference cycles, and the collector's full passes over them
    and over SymPy's own objects cost about a quarter of ``derive`` at m = 1024 and at 16384.
    And once the command has written everything, the process ends without taking apart what it
    built, one object at a time (a tenth of ``derive --m 1024``'s time). :func:`main` called in a
    process of the caller's leaves the caller's collector and exit alone.
    """
    _own_process()
    code = main()
    with contextlib.suppress(OSError, ValueError):  # main's console flushed; a closed pipe says no more
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _own_process() -> None:
    gc.freeze()  # importing this module imported SymPy (bngraph.engine): out of the collector's passes
    gc.set_threshold(10_000, 50, 100)  # passes less often (CPython's default is 700, 10, 10)


def main(argv: list[str] | None = None) -> int:
    from bngraph.output.console import console

    with console():
        forget_printed()
        progress.begin()
        try:
            return _run(argv)
        finally:
            progress.end()  # erase the status line before the process ends or an error is printed


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        if getattr(args, "no_cache", False):  # the commands that compute a closed form
            from bngraph.closedform.cache import disabled

            with disabled():
                return COMMANDS[args.command](args)
        return COMMANDS[args.command](args)
    except BngraphError as exc:
        return _fail(f"bngraph: error: {exc}")
    except KeyboardInterrupt as exc:  # Ctrl-C, or user code that raised it (which says where)
        return _fail(f"bngraph: interrupted {exc}".rstrip())
    except (OSError, RecursionError, MemoryError) as exc:
        return _fail(f"bngraph: error: {type(exc).__name__}: {one_line(exc)}")
    except Exception as exc:  # a bug of ours: still one line; BNGRAPH_DEBUG=1 shows the traceback
        if os.environ.get("BNGRAPH_DEBUG"):
            raise
        return _fail(f"bngraph: internal error: {type(exc).__name__}: {one_line(exc)} "
                     "(please report it; BNGRAPH_DEBUG=1 shows the traceback)")


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2
