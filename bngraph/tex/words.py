r"""A document's own names of several letters: ``rms(x)_i``, ``\text{RMS}(x)``, ``rrms``.

Write-ups about RMSNorm name its statistic as a function of the input (``rms(x)_i = …``,
``\text{RMS}(x) = …``) and then write the word bare (``\frac{\gamma}{RMS}``, ``\partial rrms(x)_k``).
Letter by letter, ``rms`` is r·m·s and ``\text{RMS}(x)`` is RMS·x. A word the document writes as a
function of its input (``WORD(x)``, x or X, bold or not), as a name in ``\text``, ``\mathrm`` or
``\operatorname``, defined by a formula of its own (``dout = …``, lower case), or differentiated by (``\partial istd``: a code's name, three letters or more) is one
name wherever the document writes it; the ``(x)`` after it is its argument (a statistic of the whole
input), not a factor. Known functions (ln, exp, max …) and the words of a note (for, where …) are left
alone.

>>> words = own_words([r"rms(x)_i = \sqrt{\frac{1}{N}\sum_j x_{ij}^2}", r"\text{for all } i"])
>>> sorted(words)
['rms']
>>> own_words([r"\frac{\partial y}{\partial x}_{\text{via }\mu}"])  # words of prose (with their space): no name
frozenset()
>>> sorted(own_words([r"\frac{\partial l}{\partial istd} = \frac{\partial l}{\partial x}"]))
['istd']
>>> with_own_words(r"\frac{\partial rms(x)_{k}}{\partial x_{ij}} = \frac{x_{ij}}{N rms} \text{ (rms as above)}", words)
'\\frac{\\partial \\operatorname{rms}_{k}}{\\partial x_{ij}} = \\frac{x_{ij}}{N \\operatorname{rms}} \\text{ (rms as above)}'
"""
from __future__ import annotations

import re

# functions the grammar reads, and words of prose that sit in \text{} beside a formula
_NOT_NAMES = {"ln", "log", "exp", "sin", "cos", "tan", "tanh", "max", "min", "sqrt", "det", "sgn", "sign", "diag",
              "softmax", "sum", "mean", "var", "std", "for", "from", "where", "if", "with", "and", "when", "since",
              "over", "on", "all", "each", "every", "as", "by", "so", "then", "thus", "hence", "because", "is", "of",
              "the", "in", "to", "we", "let", "or", "at", "be", "it", "not", "are", "an"}
_ARGUMENT = r"\(\s*(?:\\(?:mathbf|boldsymbol|vec|bm)\s*\{\s*[xX]\s*\}|\\(?:mathbf|boldsymbol|vec|bm)\s*[xX]|[xX])\s*\)"
_FONT = r"\\(?:text|mathrm|operatorname|textrm)\s*\{([A-Za-z]{2,})\}"  # \text{via } with a space: prose
_CALL = re.compile(rf"(?:{_FONT}|(?<![\\A-Za-z])([A-Za-z]{{2,}}))\s*{_ARGUMENT}")
_NAMED = re.compile(_FONT)
_DEFINED = re.compile(r"^\s*([a-z]{3,})(?:_\{?\s*[a-z0-9]\s*\}?)?\s*=")  # dout = ∂L/∂y, xmu_i = x_i − μ: a code's name
_DIFFERENTIATED = re.compile(r"\\partial\s*([A-Za-z]{3,})(?![A-Za-z])")  # ∂l/∂istd: a code's name, one word


def own_words(texes) -> frozenset[str]:
    """The names of several letters a document writes as functions of x or in a font of words."""
    words = set()
    for tex in texes:
        words |= {font or bare for font, bare in _CALL.findall(tex)}
        words |= set(_NAMED.findall(tex))
        words |= set(_DIFFERENTIATED.findall(tex))
        words |= set(_DEFINED.findall(tex))
    return frozenset(w for w in words if w.lower() not in _NOT_NAMES)


def with_own_words(tex: str, words: frozenset[str]) -> str:
    """``tex`` with each of the document's own words one name (``\\operatorname{rms}``; not ``\\mathrm``, which
    ``a.\\mathrm{…}`` would take for a note after a full stop) and its ``(x)`` dropped."""
    if not words:
        return tex
    alternatives = "|".join(sorted(map(re.escape, words), key=len, reverse=True))
    font = re.compile(rf"\\(?:text|mathrm|operatorname|textrm)\s*\{{({alternatives})\}}(\s*{_ARGUMENT})?")
    bare = re.compile(rf"(?<![\\A-Za-z])({alternatives})(?![A-Za-z])(\s*{_ARGUMENT})?")
    tex = font.sub(lambda k: k[0] if _UNDER.search(k.string, 0, k.start()) else rf"\operatorname{{{k[1]}}}", tex)
    # not inside the words of a note (\text{the rms of x}): split around them
    parts = _NOTE.split(tex)
    return "".join(part if k % 2 else bare.sub(_one_name, part) for k, part in enumerate(parts))


def _one_name(match: re.Match) -> str:
    if _IN_A_FONT.search(match.string, 0, match.start()):  # \mathrm{rms} already, \operatorname{RMS}, x_{rms}
        return match[0]
    return rf"\operatorname{{{match[1]}}}"


_IN_A_FONT = re.compile(r"(?:\\[A-Za-z]+\s*\{|[_^]\s*\{?)\s*$")
_UNDER = re.compile(r"[_^]\s*\{?\s*$")  # a word under or over a letter (\mu_{\text{run}}) is a label


_NOTE = re.compile(r"(\\(?:text|textrm|mbox|textit|textbf)\s*\{[^{}]*\})")
