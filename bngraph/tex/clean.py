r"""What surrounds a formula as people write it, and the checks made before parsing.

``\text{for } i = 1 \dots m``, ``, \quad i = 1, \ldots, m``, ``// comment`` and a trailing
full stop are dropped; ``\frac12`` gets its braces; unbalanced braces and runaway
nesting are reported in one line before the grammar sees the text.
"""
from __future__ import annotations

import re

from bngraph.tex.document import group_end
from bngraph.tex.names import fail

MAX_DEPTH = 40  # nested braces; deeper is not notation, and would exhaust recursion


_QUALIFIER_WORDS = r"(?:for|from|because|where|if|with|and|when|since|over|on|i\.e|e\.g|all|each|every|as|by|so|then|thus|hence)\b"
_QUALIFIER = re.compile(
    r"(?:[,;.]\s*)?(?:\\q?quad\s*|\\[,;:! ]\s*|~\s*)*"
    r"(?:\\forall\b|//|\\(?:text|textrm|mbox|textit)\s*\{\s*" + _QUALIFIER_WORDS + ")")
# \text{(chain rule)} or \text{ by (1)} inside a formula: a remark, dropped where it stands
_REMARK = re.compile(r"\\(?:text|textrm|mbox|textit|textbf)\s*\{(?![A-Za-z][A-Za-z0-9_\\]*\})[^{}]*\}")
_RANGE = re.compile(  # ", i = 1, \dots, m" or "\quad i \in \mathcal{B}" after the formula
    r"(?:,|\\q?quad|\\[,;])\s*(?:\\q?quad\s*|\\[,;]\s*)*[a-z]\s*(?:=\s*[01]\s*,|\\in\b|=\s*1\s*(?:,\s*)?\\[lc]?dots)")
_TRAILING = re.compile(r"(?:\s|\\[,;! ]|\\q?quad)*[,.;]?(?:\s|\\[,;! ]|\\q?quad|(?<!\\)\\(?=\s*$))*$")  # "\ ,", a lone \ 


_SPACED = re.compile(r"\\q?quad(?![a-zA-Z])")
_NOTE_MARK = re.compile(r"\\(?:text|textrm|mbox|textit|textbf)\s*\{|\\in(?![a-zA-Z])")
_TEXT_BODY = re.compile(r"\\(?:text|textrm|mbox|textit|textbf)\s*\{[^{}]*\}")
_RELATION = re.compile(r"=|\\(?:approx|le|ge|leq|geq|neq|equiv)(?![a-zA-Z])|[<>]")
_CONTINUES = re.compile(r"\s*(?:[-+=]|\\(?:cdot|times|pm|mp)(?![a-zA-Z]))")


def _note_after_space(tex: str) -> int | None:
    r"""Where a note set off by ``\quad`` starts: ``\mu = … \quad x_i \text{ - vector}``,
    ``\qquad w, \beta \in \mathbb{R}^N \text{ (…)}``. A note has words or a membership and no
    relation of its own; a tail starting with an operator continues the formula."""
    for match in _SPACED.finditer(tex):
        before, after = tex[:match.start()], tex[match.end():]
        if before.count("{") - before.count("\\{") != before.count("}") - before.count("\\}"):
            continue
        if (before.strip() and _NOTE_MARK.search(after) and not _CONTINUES.match(after)
                and not _RELATION.search(_TEXT_BODY.sub(" ", after))):
            return match.start()
    return None


# (\text{Because gradients add up}) beside a formula, \bigg(\text{Because } a = b\bigg) as a row of its own: a remark in
# brackets, dropped; the equation a "because" note states is read without its brackets and opening words
_BRACKETED_REMARK = re.compile(r"(?:\\[bB]igg?[lr]?\s*)?\(\s*\\(?:text|textrm|mbox)\s*\{[^{}]*\}\s*(?:\\[bB]igg?[lr]?\s*)?\)")
_NOTE_OPENING = re.compile(r"^\s*(?:\\[bB]igg?[lr]?\s*)?\(\s*\\(?:text|textrm|mbox)\s*\{\s*(?:because|since|as|using|by|"
                           r"note|where)\b[^{}]*\}", re.IGNORECASE)
_NOTE_CLOSING = re.compile(r"(?:\\[bB]igg?[lr]?\s*)?\)\s*$")


def _without_note_brackets(tex: str) -> str:
    tex = _BRACKETED_REMARK.sub(" ", tex)
    opening = _NOTE_OPENING.match(tex)
    if opening is None:
        return tex
    tex = tex[opening.end():]
    closing = _NOTE_CLOSING.search(tex)
    if closing is not None and tex.count("(") < tex.count(")"):
        tex = tex[:closing.start()]
    return tex


def clean(tex: str) -> str:
    r"""``tex`` without what surrounds the formula: ``\text{for } i = 1 \dots m``, ``//`` comments,
    a trailing comma or full stop.

    >>> clean(r"\hat{x}_i = x_i - \mu, \quad \text{for all } i.")
    '\\hat{x}_i = x_i - \\mu'
    """
    tex = _without_note_brackets(tex)
    for match in sorted([*_QUALIFIER.finditer(tex), *_RANGE.finditer(tex)], key=lambda k: k.start()):
        if match.start() == 0:
            continue
        before = tex[:match.start()]
        if before.count("{") - before.count("\\{") == before.count("}") - before.count("\\}"):
            tex = before
            break
    note = _note_after_space(tex)
    if note is not None:
        tex = tex[:note]
    tex = _REMARK.sub(" ", tex)
    return _TRAILING.sub("", tex).strip()


_SHORT_ARGUMENT = re.compile(r"(\\[dtc]?frac(?:\{[^{}]*\})?)\s*([0-9A-Za-z]|\\[A-Za-z]+)")


def brace_short_arguments(tex: str) -> str:
    r"""``\frac12`` -> ``\frac{1}{2}``: a fraction's one-token arguments braced, so that the
    lexer never reads ``12`` as one number there."""
    for _ in range(2):
        tex = _SHORT_ARGUMENT.sub(lambda k: f"{k[1]}{{{k[2]}}}" if k[2] not in _NOT_ARGUMENTS else k[0], tex)
    return tex


_NOT_ARGUMENTS = {"\\left", "\\right", "\\big", "\\Big"}


def check_balance(tex: str) -> None:
    """Braces balanced and not nested too deeply, or a one-line error."""
    depth = 0
    deepest = 0
    for k, ch in enumerate(tex):
        if k and tex[k - 1] == "\\":
            continue
        if ch == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "}":
            depth -= 1
            if depth < 0:
                fail("unbalanced braces: a } without its {")
    if depth > 0:
        fail(f"unbalanced braces: {depth} {{ without }}")
    brackets = len(re.findall(r"[(\[]", tex))
    if deepest > MAX_DEPTH or brackets > 4 * MAX_DEPTH:
        fail("the formula is nested too deeply to be read")


_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ϵ": "epsilon", "μ": "mu", "σ": "sigma",
          "ρ": "rho", "λ": "lambda", "η": "eta", "θ": "theta", "∂": "partial", "ℓ": "ell", "∇": "nabla"}


# -- what write-ups write, rewritten to what the grammar reads ---------------------------------
_EXPECTATION = re.compile(r"(?<![A-Za-z\\])(?:\\(?:mathrm|mathbb|operatorname|text)\s*\{\s*E\s*\}\s*(?:\[\s*x\s*\]|\(\s*x\s*\))"
                          r"|E\s*\[\s*x\s*\])")  # E[x], \operatorname{E}(x); a bare E(x) may be the loss's value
_VARIANCE = re.compile(r"(?<![A-Za-z\\])(?:\\(?:mathrm|operatorname|text)\s*\{\s*Var\s*\}|Var)\s*(?:\[\s*x\s*\]|\(\s*x\s*\))")
_BATCH_STATISTIC = re.compile(r"\\(?:mu|sigma)(?![a-zA-Z])|[μσ]")
# ‖x‖², \lVert \mathbf{x} \rVert_2^2: the squared norm of the input vector, Σ_k x_k² (‖x‖ its root)
_NORM = re.compile(r"(?:\\\||\\lVert|\\left\s*\\\||\\Vert)\s*(?:\\(?:mathbf|boldsymbol|bm)\s*\{\s*x\s*\}|x)\s*"
                   r"(?:\\\||\\rVert|\\right\s*\\\||\\Vert)\s*(?:_\s*(?:\{\s*2\s*\}|2))?\s*(\^\s*(?:\{\s*2\s*\}|2))?")
_OLD_FONTS = {"rm": "mathrm", "bf": "mathbf", "it": "mathit", "cal": "mathcal", "sf": "mathrm", "tt": "mathrm"}
_REWRITES = [
    (_NORM, lambda k: r"\sum_{k} x_{k}^{2}" if k[1] else r"\sqrt{\sum_{k} x_{k}^{2}}"),
    # plain TeX's font switches, {\rm d}x, {\bf x}, {\cal L}, \rm{d}: the word after the switch in that font
    (re.compile(r"\\(rm|bf|it|cal|sf|tt)\s*\{"), lambda k: f"\\{_OLD_FONTS[k[1]]}{{"),
    (re.compile(r"\\(rm|bf|it|cal|sf|tt)(?![a-zA-Z])\s*([A-Za-z]+)"),  # {\rm dx}: the differential d, then x
     lambda k: f"\\{_OLD_FONTS[k[1]]}{{d}}{k[2][1]}" if re.fullmatch(r"d[a-z]", k[2]) else f"\\{_OLD_FONTS[k[1]]}{{{k[2]}}}"),
    # X', f'': a letter with primes is a name of its own (X' = (X − μ)/σ), not X and a stray mark
    (re.compile(r"(?<![\\A-Za-z])([A-Za-z])('+|\^\{?\\prime\}?)"), lambda k: f"\\mathrm{{{k[1]}{'prime' * max(1, k[2].count(chr(39)))}}}"),
    # \delta_j^i, \delta^i_j: Kronecker's delta in index notation, as \delta_{ij}
    (re.compile(r"\\delta\s*_\s*\{?\s*([a-z])\s*\}?\s*\^\s*\{?\s*([a-z])\s*\}?"), r"\\delta_{\2\1}"),
    # "a = = b": one relation typed twice; "a * -1", "a \cdot -b": a minus sign on the next factor
    (re.compile(r"(?<![<>!:=\\])=\s*=(?!=)"), "="),
    (re.compile(r"(\*|\\cdot(?![a-zA-Z])|\\times(?![a-zA-Z]))\s*-(?!\s*[=+-])"), r"\1 (-1) \\cdot "),
    # 1_{i = j}, \mathbb{1}_{i=j}: the indicator of i = j, Kronecker's delta
    (re.compile(r"(?<![\w.])(?:\\math(?:bb|bf|rm)\s*\{\s*[1I]\s*\}|1)\s*_\s*\{\s*([a-z])\s*=\s*([a-z])\s*\}"),
     r"\\delta_{\1\2}"),
    (re.compile(r"\\delta\s*\^\s*\{?\s*([a-z])\s*\}?\s*_\s*\{?\s*([a-z])\s*\}?"), r"\\delta_{\1\2}"),
    # γ, σ², x̂ typed as Unicode letters (Markdown editors, Chinese write-ups): the commands they stand for
    (re.compile("[%s]" % "".join(_GREEK)), lambda k: "\\" + _GREEK[k[0]] + " "),
    # a.b, \frac{x}{r}.\gamma: a full stop between two factors is a product (Chinese and some Markdown write-ups);
    # not a decimal point (0.5), not \left. or \right., not a full stop before a note (\quad, \text)
    (re.compile(r"(?<!\.)(?<!\\left)(?<!\\right)\.(?!\.)(?=\s*(?:[A-Za-z(\[{]|[^\x00-\x7f]|\\(?!(?:q?quad|text|"
                r"mathrm|tag|label|end|nonumber|notag|hspace|left|right)(?![a-zA-Z]))[a-zA-Z]+))"), r" \\cdot "),
    (re.compile(r"\\mathop\s*(\{\s*\\sum\s*\}|\\sum)(?![a-zA-Z])"), r"\\sum"),  # Word/MathType exports
    (re.compile(r"\\Sigma(?=\s*[_^])"), r"\\sum"),  # \Sigma^m_{i=1} x_i: a sum, in the capital letter
    (re.compile(r"\\part(?![a-zA-Z])"), r"\\partial"),  # a Markdown editor's shorthand
    (re.compile(r"\\triangledown(?![a-zA-Z])"), r"\\nabla"),  # ∇ drawn as a triangle (HackMD, Typora)
    # E[x], \mathbb{E}[x], Var(x), \text{Var}[x] of the input itself: the batch's mean and variance (the papers' and
    # PyTorch's own notation); of anything else (E[\mu_B], Var(q_i)) they stay unread, and so they do beside the
    # batch's own μ or σ (Var[x] = \frac{m}{m-1}\sigma_B^2: the population's variance, another quantity)
    # dLoss/dγ, ∂\text{loss}/∂y: the loss written as a word (a derivative's numerator), not L·o·s·s
    (re.compile(r"(\\partial\s*|(?<![A-Za-z\\])d\s*)(?:\\(?:text|mathrm|mathit|operatorname)\s*\{\s*(?:Loss|loss|Cost|cost)"
                r"\s*\}|(?:Loss|loss|Cost|cost)(?![A-Za-z]))"), r"\1L "),
    (_EXPECTATION, r"\\mu "),
    (_VARIANCE, r"\\sigma^2 "),
    (re.compile(r"\\(?:left\s*)?[|]\s*\\mathcal\s*\{?\s*B\s*\}?\s*\\(?:right\s*)?[|]|[|]\s*\\mathcal\s*\{?\s*B\s*\}?\s*[|]"
                r"|\\lvert\s*\\mathcal\s*\{?\s*B\s*\}?\s*\\rvert|[|]\s*B\s*[|]"), "m"),  # |B|: the batch size
    # \mathbf{- x̂_i Σ …}, \color{red}{+ …}: a sign that opens a decorated group is the term's, outside it (the group
    # left alone after the command goes would be a factor of the term before)
    (re.compile(r"(\\(?:boxed|bm|mathbf|boldsymbol|bold|color\s*\{[^{}]*\}|textcolor\s*\{[^{}]*\})\s*\{)\s*([-+])"), r"\2 \1"),
    (re.compile(r"\\color\s*\{[^{}]*\}|\\textcolor\s*\{[^{}]*\}"), ""),  # the argument stays, as a group
    (re.compile(r"\\(?:boxed|bm|mathbf|boldsymbol|bold)(?=\s*\{)"), ""),  # \bold: MathJax's old \mathbf
    (re.compile(r"\\(?:space|,|;|:|!|quad|qquad)(?![a-zA-Z])"), " "),
    # running_{mean}, moving_{var}: one name written as a word with a word under it, not r·u·n·n·i·n·g
    (re.compile(r"(?<![\\A-Za-z])([A-Za-z]{3,})\s*_\{\s*([A-Za-z]{2,})\s*\}"), r"\\mathrm{\1_\2}"),
    (re.compile(r"(?<!\\)_\{\s*([A-Za-z]{3,}|[A-Z][a-z]+)\s*\}"), r"_{\\text{\1}}"),  # \mu_{run}: a word, not r·u·n
    # x_k^{(i)}: a second index in parentheses above (the i-th example's k-th feature, or the k-th feature's i-th
    # example), never a power; which one is the feature is worked out as for x_{k,i}
    (re.compile(r"_\s*(?:\{\s*([a-z])\s*\}|([a-z]))\s*\^\s*\{\s*\(\s*([a-z])\s*\)\s*\}"), lambda k: f"_{{{k[1] or k[2]},{k[3]}}}"),
    (re.compile(r"\\sum\s*_\{\s*([a-z])\s*,?\s*([a-z])\s*\}"), r"\\sum_{\1}\\sum_{\2}"),  # \sum_{kl}: over k and l
    # x_{B,j}, x_{\mathcal{B},i}: the batch's name beside the example's index, as μ_B carries it: only the index
    (re.compile(r"_\{\s*(?:B|\\mathcal\s*\{?\s*B\s*\}?)\s*,\s*([a-z])\s*\}"), r"_{\1}"),
    (re.compile(r"_\{\s*([a-z])\s*,\s*(?:B|\\mathcal\s*\{?\s*B\s*\}?)\s*\}"), r"_{\1}"),
    (re.compile(r"_\{\s*mb\s*\}"), r"_{\\text{mb}}"),  # μ_{mb}: "of the mini-batch", as μ_B (not two indices m, b)
    (re.compile(r"_\{\s*([a-z])\s*,\s*:\s*\}"), r"_{\1}"),  # (∂X̂/∂X)_{i,:}: the row i of a matrix
    (re.compile(r"_\{\s*([a-z])\s*([a-z])\s*\}"), r"_{\1,\2}"),  # x_{ij}: two indices
    (re.compile(r"\\right\s*\|\s*_"), r"\\right._"),  # \left. … \right|_{x = 0}: the bar of evaluation
    (re.compile(r"\\(?:odot|circ)(?![a-zA-Z])"), r"\\cdot"),  # Hadamard: per example and feature, a product
    (re.compile(r"\\dfrac|\\tfrac|\\cfrac"), r"\\frac"),
    (re.compile(r"\\(?:text|textrm|mathrm|operatorname)\s*\{\s*sum\s*\}"), r"\\sum "),  # sum(…): the batch's sum
]
_NOT_INDEX_PAIRS = {"in", "on", "up", "at", "of", "to", "lr", "bn", "ln", "ok", "dx", "dy"}
_BRACED = re.compile(r"\\(underbrace|overbrace|underset|overset|stackrel)\s*\{")


_STEP = re.compile(r"_\{\s*([a-z]{2,3})\s*([-+])\s*([0-9])\s*\}")


def _step_counter(tex: str) -> str:
    r"""``\mu_{mb} = \rho\,\mu_{mb-1} + …``: a step counter of several letters beside its predecessor, as
    ``t`` and ``t-1`` (a letter the formula does not use otherwise)."""
    for match in _STEP.finditer(tex):
        word = match[1]
        if word in _NOT_INDEX_PAIRS:
            continue
        letter = next((c for c in "tsrq" if not re.search(rf"(?<![\\a-zA-Z]){c}(?![a-zA-Z])", tex)), None)
        if letter is None:
            return tex
        tex = re.sub(rf"_\{{\s*{word}\s*([-+]\s*[0-9])?\s*\}}", lambda k: f"_{{{letter}{k[1] or ''}}}", tex)
    return tex


def rewrite_constructs(tex: str) -> str:
    r"""What people write, in the grammar's terms: ``\mathop\sum\limits`` and ``\Sigma^m_{i=1}`` are
    sums, ``\part`` is ``\partial``, ``|\mathcal{B}|`` the batch size m, ``\boxed{…}`` and
    ``\color{red}{…}`` their content, ``\underbrace{a}_{\text{…}}`` is a, ``x_{ij}`` has two indices.

    >>> rewrite_constructs(r"\boxed{\mu = \frac{1}{|\mathcal{B}|}\mathop\sum\limits_{i} x_{ij}}")
    '{\\mu = \\frac{1}{m}\\sum\\limits_{i} x_{i,j}}'
    """
    tex = _step_counter(tex)
    population = _BATCH_STATISTIC.search(tex)  # E[x], Var[x] beside μ_B, σ_B: the population's, not the batch's
    for pattern, replacement in _REWRITES:
        if population and pattern in (_EXPECTATION, _VARIANCE):
            continue
        if replacement == r"_{\1,\2}":
            tex = pattern.sub(lambda k: k[0] if k[1] + k[2] in _NOT_INDEX_PAIRS else f"_{{{k[1]},{k[2]}}}", tex)
        else:
            tex = pattern.sub(replacement, tex)
    return written_out_sums(_drop_braces_notes(_d_notation(tex)))


# dx_i, dy_{i,j}, d\hat{x}_i, d\gamma, d\sigma^2: the code's names for ∂L/∂·, beside ∂ too
# (d\sigma^2 = \sum_j d\hat{x}_j \frac{\partial \hat{x}_j}{\partial \sigma^2}); where the formula writes Leibniz's
# \frac{dL}{dx} (or an integral's d), d stays d
_D_NAME = re.compile(r"(?<![A-Za-z\\_^])d\s*(\\hat\s*\{\s*x\s*\}|\\hat\s*x|\\bar\s*\{\s*x\s*\}|x|y|\\gamma|\\beta|\\mu|\\sigma)"
                     r"(?![A-Za-z])(\s*_\{[^{}]*\}|\s*_[A-Za-z0-9])?(\s*\^\s*\{?\s*2\s*\}?)?")


def _d_notation(tex: str) -> str:
    if re.search(r"\\frac\s*\{\s*d", tex) or re.search(r"\\(?:int|mathrm\s*\{\s*d)", tex) or re.search(
            r"(?<![A-Za-z\\])d\s*(?:[LJE](?![A-Za-z])|\\ell|\\mathcal\s*\{?\s*L)", tex):  # dL = Σ ∂L/∂x_i dx_i
        return tex
    return _D_NAME.sub(lambda k: rf"\frac{{\partial L}}{{\partial {k[1]}{k[2] or ''}{k[3] or ''}}}", tex)


_FIRST = re.compile(r"_\{?\s*1\s*\}?(?![0-9])")


def written_out_sums(tex: str) -> str:
    r"""``x_1 + x_2 + \dots + x_m`` -> ``\sum_{k=1}^{m} x_{k}``: the terms before ``\dots``
    from the one with index 1, and the last term, which names the upper bound.

    >>> written_out_sums(r"\mu = \frac{1}{m}(x_1 + x_2 + \dots + x_m)")
    '\\mu = \\frac{1}{m}(\\sum_{k=1}^{m} x_{k})'
    """
    for _ in range(5):
        dots = re.search(r"\\(?:ldots|cdots|dots|dotsb|dotsc)(?![a-zA-Z])", tex)
        if dots is None:
            return tex
        left, right = _terms_before(tex, dots.start()), _term_after(tex, dots.end())
        if left is None or right is None:
            return tex
        (_, terms), (last, end) = left, right
        first = next((k for k, (_, t) in enumerate(terms) if _FIRST.search(t)), None)
        if first is None:
            return tex
        template = terms[first][1]
        bound = re.search(r"_\{?\s*([A-Za-z])\s*\}?", last)
        letter = bound[1] if bound else None
        body = _FIRST.sub("_{k}", template, count=1)
        if letter is None or _bare(_FIRST.sub("_" + letter, template, count=1)) != _bare(last):
            return tex
        begin = terms[first][0]
        tex = tex[:begin] + f"\\sum_{{k=1}}^{{{letter}}} {body.strip()}" + tex[end:]
    return tex


def _bare(tex: str) -> str:
    return re.sub(r"\s|[{}]", "", tex)


def _split_terms(text: str) -> list[tuple[int, str]]:
    """(offset, term) of a sum written at brace and bracket depth 0."""
    terms, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif ch == "+" and depth == 0:
            terms.append((start, text[start:k]))
            start = k + 1
    terms.append((start, text[start:]))
    return terms


def _terms_before(tex: str, at: int):
    """The terms before ``\\dots`` back to the enclosing bracket or relation: (start, [(offset, term)])."""
    depth, k = 0, at - 1
    while k >= 0:
        ch = tex[k]
        if ch in "})]":
            depth += 1
        elif ch in "{([":
            if depth == 0:
                break
            depth -= 1
        elif ch == "=" and depth == 0:
            break
        k -= 1
    start = k + 1
    segment = tex[start:at]
    if not segment.rstrip().endswith("+"):
        return None
    terms = [(start + off, t) for off, t in _split_terms(segment.rstrip()[:-1])]
    return start, [(off, t) for off, t in terms if t.strip()]


def _term_after(tex: str, pos: int):
    """The term after ``\\dots +``: (term, end)."""
    match = re.compile(r"\s*\+\s*").match(tex, pos)
    if match is None:
        return None
    depth, k = 0, match.end()
    while k < len(tex):
        ch = tex[k]
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            if depth == 0:
                break
            depth -= 1
        elif ch in "+-=" and depth == 0:
            break
        k += 1
    return tex[match.end():k], k


def _drop_braces_notes(tex: str) -> str:
    r"""``\underbrace{a}_{note}`` -> ``{a}``; ``\underset{note}{a}`` -> ``{a}``."""
    for _ in range(20):
        match = _BRACED.search(tex)
        if match is None:
            return tex
        first_end = group_end(tex, match.end() - 1)
        if first_end is None:
            return tex
        rest = tex[first_end:]
        note = re.match(r"\s*[_^]\s*", rest)
        if match[1] in ("underbrace", "overbrace"):
            keep = tex[match.end() - 1:first_end]
            if note and rest[note.end():note.end() + 1] == "{":
                end = group_end(rest, note.end())
                rest = rest[end:] if end else rest
            elif note:
                rest = rest[note.end() + 1:]
        else:  # \underset{note}{a}: the second group is the value
            second = re.match(r"\s*\{", rest)
            end = group_end(rest, second.end() - 1) if second else None
            if end is None:
                return tex
            keep, rest = rest[second.end() - 1:end], rest[end:]
        tex = tex[:match.start()] + keep + rest
    return tex


