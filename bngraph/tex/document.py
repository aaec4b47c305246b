r"""Find the equations in a write-up: Markdown, LaTeX, a Jupyter notebook or plain text.

Math is found in ``$…$``, ``$$…$$``, ``\[…\]``, ``\(…\)`` and the display environments
(equation, align, aligned, gather, eqnarray, multline …), and in reStructuredText (Sphinx) in each paragraph
of a ``.. math::`` directive and each ``:math:`…``` role. An align gives one equation per
row; a row ``&= …`` continues the left side of the row above; a row that starts with
``+``/``-`` continues the row above. The document's own macros (``\newcommand``,
``\renewcommand``, ``\def``, ``\DeclareMathOperator``) are expanded; ``\require{…}``,
``\label``, ``\tag`` are dropped. Every equation keeps its line (and notebook cell).

>>> doc = "Mean:\n$$\\begin{aligned}\n\\mu &= \\frac{1}{m}\\sum_i x_i \\\\\n &= \\bar{x}\n\\end{aligned}$$"
>>> [(s.line, s.tex) for s in find_equations(doc)]
[(3, '\\mu = \\frac{1}{m}\\sum_i x_i'), (4, '\\mu = \\bar{x}')]
"""
from __future__ import annotations

import json
import re
import stat
import sys
from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path

from bngraph.errors import BngraphError

FORMATS = {".md": "md", ".markdown": "md", ".tex": "tex", ".latex": "tex", ".ipynb": "ipynb", ".txt": "txt"}
DISPLAY_ENVS = "equation|align|alignat|aligned|gather|gathered|eqnarray|multline|flalign|displaymath|split|math"
MAX_EXPANSION = 20000  # characters: a macro that keeps growing is recursive


@dataclass(frozen=True)
class Snippet:
    """One equation as written (macros expanded), where it is, and how it was set."""

    tex: str
    line: int
    cell: int | None = None
    display: bool = True
    continues: bool = False  # its left side is the row above's (an align "&= …" row)
    head: bool = False  # math with no relation that the next formula, "= …", goes on from: the chain's left side

    @property
    def where(self) -> str:
        return f"cell {self.cell}, line {self.line}" if self.cell is not None else f"line {self.line}"


@dataclass(frozen=True)
class Macro:
    nargs: int
    default: str | None  # the optional first argument's default, \newcommand{\x}[2][a]{…}
    body: str


# -- reading ----------------------------------------------------------------------------
def read_document(path_or_text, doc_format: str | None = None) -> tuple[str, str, list[tuple[int | None, str]]]:
    """(name, format, [(cell, text)]): the Markdown cells of a notebook, or one text.

    A ``Path``, or a ``str`` naming an existing file, is read as a file; any other ``str``
    is the document itself (Markdown unless ``doc_format`` says otherwise).
    """
    if isinstance(path_or_text, Path) and str(path_or_text) == STDIN:  # Path("-"): the command line's FILE
        return "<stdin>", doc_format or "md", [(None, _decode(sys.stdin.buffer.read(MAX_BYTES + 1), "<stdin>"))]
    path = _as_path(path_or_text)
    if path is None:
        if len(path_or_text) > MAX_BYTES:
            raise BngraphError(_too_large("the text", len(path_or_text)))
        return "<text>", doc_format or "md", [(None, path_or_text)]
    _check_regular_file(path)
    fmt = doc_format or FORMATS.get(path.suffix.lower(), "txt")
    try:
        with path.open("rb") as handle:
            text = _decode(handle.read(MAX_BYTES + 1), str(path))
    except OSError as exc:
        raise BngraphError(f"{path}: cannot read ({exc.strerror})") from None
    if fmt == "ipynb":
        return str(path), fmt, notebook_cells(text, str(path))
    return str(path), fmt, [(None, text)]


STDIN = "-"
MAX_EQUATIONS = 3000  # at a few milliseconds to a second each
MAX_BYTES = 2_000_000  # a write-up is a few hundred kilobytes; past this the audit would take minutes


def _too_large(what: str, size: int) -> str:
    return f"{what} is too large to audit (over {MAX_BYTES / 1e6:g} MB; it has {size / 1e6:.1f} MB or more)"


def _decode(data: bytes, name: str) -> str:
    if len(data) > MAX_BYTES:
        raise BngraphError(_too_large(name, len(data)))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BngraphError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def _check_regular_file(path: Path) -> None:
    """A document is a regular file: a directory, a FIFO or a device is named for what it is
    (opening a FIFO would wait for a writer forever)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BngraphError(f"{path}: no such file") from None
    except OSError as exc:
        raise BngraphError(f"{path}: cannot read ({exc.strerror})") from None
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    for test, kind in kinds:
        if test(mode):
            raise BngraphError(f"{path}: {kind}, not a regular file")
    if path.stat().st_size > MAX_BYTES:
        raise BngraphError(_too_large(str(path), path.stat().st_size))


def _as_path(path_or_text) -> Path | None:
    if isinstance(path_or_text, Path):
        return path_or_text
    if not isinstance(path_or_text, str):
        raise BngraphError("a document is a path or its text")
    text = path_or_text
    if "\n" in text or "$" in text or "\\" in text or len(text) > 4096:
        return None
    if text.strip() and (Path(text).exists() or Path(text).suffix.lower() in FORMATS):
        return Path(text)
    return None


def notebook_cells(text: str, name: str = "notebook") -> list[tuple[int, str]]:
    """The Markdown cells of an .ipynb (JSON), numbered from 1 as the notebook shows them."""
    try:
        nb = json.loads(text)
        cells = nb["cells"]
        found = []
        for number, cell in enumerate(cells, 1):
            if cell.get("cell_type") == "markdown":
                source = cell.get("source", "")
                found.append((number, "".join(source) if isinstance(source, list) else str(source)))
        return found
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BngraphError(f"{name}: not a Jupyter notebook (JSON with cells)") from None


# -- masking what is not mathematics ----------------------------------------------------
def _blank(text: str, start: int, end: int) -> str:
    """``text`` with [start, end) replaced by spaces, newlines kept: offsets stay valid."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


# GitHub and GitLab Markdown also take a fenced block of language "math" as display math.
_MATH_FENCE = re.compile(r"^(```|~~~)[ \t]*math[ \t]*$(.*?)^\1[ \t]*$", re.S | re.M)


def _math_fences_as_dollars(text: str) -> str:
    """Each ```math fence rewritten as $$ … $$ of the same length: offsets (and lines) stay valid."""
    def dollars(match: re.Match) -> str:
        opening, closing = match.start(2) - match.start(0), match.end(0) - match.end(2)
        return "$$".ljust(opening) + match[2] + "$$".ljust(closing)
    return _MATH_FENCE.sub(dollars, text)


# reStructuredText / Sphinx: a ``.. math::`` directive (options such as ``:label:`` first, then an indented
# body whose paragraphs are equations of their own) and the inline role :math:`…`.
_RST_DIRECTIVE = re.compile(r"^([ \t]*)\.\.[ \t]+math::(.*)$")
_RST_OPTION = re.compile(r"^\s*:[A-Za-z][\w-]*:")
_RST_ROLE = re.compile(r":math:`\s*([^`\n]*?)\s*`")


def _indent(line: str) -> int:
    return len(line) - len(line.expandtabs(4).lstrip())


def _rst_directive(lines: list[str], k: int) -> int:
    """Rewrite the ``.. math::`` directive at line k in place, each paragraph of its body as ``$$…$$`` (on the
    same lines, so line numbers hold); returns the line after the body."""
    match = _RST_DIRECTIVE.match(lines[k])
    indent, head = len(match[1].expandtabs(4)), match[2]
    lines[k] = f"$${head}$$" if head.strip() else ""
    end = k + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end].expandtabs(4)) > indent):
        end += 1
    body = k + 1
    while body < end and lines[body].strip() and _RST_OPTION.match(lines[body]):  # :label:, :nowrap: …
        lines[body] = ""
        body += 1
    paragraph = None
    for n in range(body, end + 1):
        if n < end and lines[n].strip():
            paragraph = n if paragraph is None else paragraph
            continue
        if paragraph is not None:
            lines[paragraph] = "$$" + lines[paragraph]
            lines[n - 1] += "$$"
            paragraph = None
    return end


def _rst_math_as_dollars(text: str) -> str:
    """Sphinx math rewritten as Markdown's: each directive paragraph ``$$…$$``, each role ``$…$``. Only
    within lines: line numbers stay valid."""
    lines, k = _RST_ROLE.sub(lambda m: f"${m[1]}$" if m[1] else "", text).split("\n"), 0
    while k < len(lines):
        k = _rst_directive(lines, k) if _RST_DIRECTIVE.match(lines[k]) else k + 1
    return "\n".join(lines)


def _mask(text: str, fmt: str) -> str:
    if fmt != "tex":
        text = _rst_math_as_dollars(_math_fences_as_dollars(text))
    patterns = [r"<!--.*?-->"]
    if fmt == "tex":
        patterns += [r"\\begin\{(verbatim|lstlisting|minted)\}.*?\\end\{\1\}", r"(?<!\\)%[^\n]*"]
    else:
        patterns += [r"^(```|~~~).*?^\1[^\n]*$", r"(`+)[^`\n].*?\1"]
    for pattern in patterns:
        for match in list(re.finditer(pattern, text, re.S | re.M)):
            text = _blank(text, match.start(), match.end())
    return text


def prose_math(text: str, fmt: str) -> tuple[str, list[tuple[int, str, str, bool]]]:
    """(the text with code and comments blanked, its math blocks): for reading the prose around the math."""
    masked = _mask(text, "md" if fmt == "ipynb" else fmt)
    return masked, math_blocks(masked)


# -- macros -------------------------------------------------------------------------------
_DEFINE = re.compile(r"\\(?:(?:re)?newcommand|providecommand|DeclareMathOperator)\*?|\\def(?![a-zA-Z])|\\require\s*\{[^{}]*\}")


def group_end(text: str, start: int) -> int | None:
    """The index just after the ``}`` that closes the ``{`` at ``start`` (escaped braces
    ``\\{`` ``\\}`` do not count); None if it is never closed."""
    depth = 0
    for k in range(start, len(text)):
        if text[k] == "{" and text[k - 1] != "\\":
            depth += 1
        elif text[k] == "}" and text[k - 1] != "\\":
            depth -= 1
            if depth == 0:
                return k + 1
    return None


def _group(text: str, pos: int) -> tuple[str, int]:
    """The balanced ``{…}`` at ``pos`` (spaces skipped): (content, end)."""
    while pos < len(text) and text[pos] in " \t\n":
        pos += 1
    if pos >= len(text) or text[pos] != "{":
        raise ValueError("expected {")
    end = group_end(text, pos)
    if end is None:
        raise ValueError("unbalanced")
    return text[pos + 1:end - 1], end


def collect_macros(text: str) -> tuple[dict[str, Macro], list[tuple[int, int]]]:
    """The document's macro definitions and the spans they occupy."""
    macros, spans = {}, []
    for match in _DEFINE.finditer(text):
        command, pos = match[0], match.end()
        try:
            if command.startswith("\\require"):
                spans.append((match.start(), pos))
                continue
            if command == "\\def":
                name_match = re.compile(r"\s*\\([a-zA-Z]+)((?:#\d)*)").match(text, pos)
                name, nargs, default = name_match[1], len(name_match[2]) // 2, None
                body, end = _group(text, name_match.end())
            else:
                if text[pos:].lstrip().startswith("{"):
                    name_tex, pos = _group(text, pos)
                else:
                    name_match = re.compile(r"\s*(\\[a-zA-Z]+)").match(text, pos)
                    name_tex, pos = name_match[1], name_match.end()
                name = name_tex.strip().lstrip("\\")
                options = re.compile(r"\s*\[(\d)\](?:\s*\[([^\]]*)\])?").match(text, pos)
                nargs, default = (int(options[1]), options[2]) if options else (0, None)
                body, end = _group(text, options.end() if options else pos)
                if command.startswith("\\DeclareMathOperator"):
                    body = rf"\operatorname{{{body}}}"
        except (ValueError, TypeError):
            continue  # not a definition we can read: leave the text as it is
        macros[name] = Macro(nargs, default, body)
        spans.append((match.start(), end))
    return macros, spans


def expand_macros(tex: str, macros: dict[str, Macro]) -> str:
    r"""``tex`` with the macros replaced, arguments and all.

    >>> expand_macros(r"\pd{L}{\B}", {"pd": Macro(2, None, r"\frac{\partial #1}{\partial #2}"), "B": Macro(0, None, r"\mathcal{B}")})
    '\\frac{\\partial L}{\\partial \\mathcal{B}}'
    """
    if not macros:
        return tex
    pattern = re.compile(r"\\(%s)(?![a-zA-Z])" % "|".join(sorted(map(re.escape, macros), key=len, reverse=True)))
    for _ in range(100):
        match = pattern.search(tex)
        if match is None:
            return tex
        macro, pos, args = macros[match[1]], match.end(), []
        for k in range(macro.nargs):
            if k == 0 and macro.default is not None:
                option = re.compile(r"\s*\[([^\]]*)\]").match(tex, pos)
                args.append(option[1] if option else macro.default)
                pos = option.end() if option else pos
                continue
            arg, pos = _argument(tex, pos)
            args.append(arg)
        body = re.sub(r"#(\d)", lambda d: args[int(d[1]) - 1] if 0 < int(d[1]) <= len(args) else "", macro.body)
        tex = tex[:match.start()] + body + tex[pos:]
        if len(tex) > MAX_EXPANSION:
            break
    raise BngraphError("a macro's expansion does not end (is it recursive?)")


def _argument(tex: str, pos: int) -> tuple[str, int]:
    """One macro argument: a braced group, a command, or one character."""
    while pos < len(tex) and tex[pos] == " ":
        pos += 1
    if pos >= len(tex):
        return "", pos
    if tex[pos] == "{":
        try:
            return _group(tex, pos)
        except ValueError:
            return tex[pos + 1:], len(tex)
    command = re.compile(r"\\[a-zA-Z]+|\\.").match(tex, pos)
    if command:
        return command[0], command.end()
    return tex[pos], pos + 1


# -- finding the math -------------------------------------------------------------------
# Inline $…$ as pandoc reads it: no space just inside the dollars, no digit right after the
# closing one — so "costs $5 and $10" is not math.
_OPEN = re.compile(r"\$\$|\\\[|\\\(|\\begin\{(%s)(\*?)\}|(?<![\\$])\$(?![$\s])" % DISPLAY_ENVS)


def math_blocks(text: str) -> list[tuple[int, str, str, bool]]:
    """(offset of the content, content, environment, display) for each piece of math."""
    blocks, pos = [], 0
    while True:
        match = _OPEN.search(text, pos)
        if match is None:
            return blocks
        opener = match[0]
        if opener == "$$":
            close, env, display = re.compile(r"\$\$"), "$$", True
        elif opener == "\\[":
            close, env, display = re.compile(r"\\\]"), "[", True
        elif opener == "\\(":
            close, env, display = re.compile(r"\\\)"), "(", False
        elif opener == "$":
            # a row break \\ may end it (…\\$), an escaped \$ may not
            close, env, display = re.compile(r"(?:(?<=\\\\)|(?<![\\\s]))\$(?!\d)"), "$", False
        else:
            env, display = match[1], True
            close = re.compile(r"\\end\{%s%s\}" % (match[1], re.escape(match[2])))
        end = _closing(close, text, match.end())
        if end is None or (env == "$" and "\n\n" in text[match.end():end.start()]):
            pos = match.end()
            continue
        blocks.append((match.end(), text[match.end():end.start()], env, display))
        pos = end.end()


def _closing(close: re.Pattern, text: str, start: int) -> re.Match | None:
    r"""The closing delimiter, not one inside a brace group: ``$\textrm{a vector $X$ of length $N$}\\ \mu = …$``
    (MathJax reads math inside \text), as in a Stack Exchange post's one-dollar derivation."""
    pos = start
    while (end := close.search(text, pos)) is not None:
        between = text[start:end.start()]
        if between.count("{") - between.count("\\{") <= between.count("}") - between.count("\\}"):
            return end
        pos = end.end()
    return None


_INNER = re.compile(r"\\(?:begin|end)\{(?:aligned|split|gathered|alignedat|align|equation|eqnarray|gather|multline|"
                    r"alignat|flalign)\*?\}(?:\{\d+\})?")
# a row break, with its spacing \\[2pt]; a row that starts with a bracket (\\ [\frac{a}{b}]' = …) keeps it
_ROW = re.compile(r"\\\\(?:\s*\[\s*-?[\d.]+\s*(?:pt|em|ex|mm|cm|in|mu|px|bp|pc|dd|sp)\s*\])?|\\newline(?![a-zA-Z])")
_RELATION = re.compile(r"(?<![\\:<>!])=|:\s*=|\\(?:gets|leftarrow|longleftarrow|coloneqq|coloneq|triangleq|equiv|defeq|approx|mapsto)(?![a-zA-Z])")
_ENDS_WITH_RELATION = re.compile(r"(?<![\\:<>!])=\s*&?\s*$")
_ENDS_WITH_OPERATOR = re.compile(r"(?:(?<![\\^_{])[+\-]|\\cdot|\\times)\s*&?\s*$")
_OPERATOR_START = re.compile(r"^(?:[+\-]|\\cdot(?![a-zA-Z])|\\times(?![a-zA-Z]))")
_LEADING_LAYOUT = re.compile(r"^(?:\s|&|\\q?quad(?![a-zA-Z])|\\[,;:! ]|\\(?:nonumber|notag)(?![a-zA-Z])"
                             r"|\\(?:to|Rightarrow|rightarrow|implies)(?![a-zA-Z]))*")  # a row opening with an arrow
# A full-width comma or semicolon (CJK text) sets two equations apart as ", \quad" does.
# So does an arrow between two equations (``a = b \quad\Rightarrow\quad c = d``, ``\to``, ``\implies``).
_ARROW = r"\\(?:to|Rightarrow|rightarrow|implies|Longrightarrow|longrightarrow)(?![a-zA-Z])"
# (the arrow first: "\qquad \Rightarrow \qquad" is one separator, not a \qquad and a row opening with an arrow)
_SEPARATOR = re.compile(r"(?:\\q?quad\s*)?" + _ARROW + r"(?:\s*\\q?quad(?![a-zA-Z]))?"
                        r"|(?:[,;]\s*)?\\qquad(?![a-zA-Z])|,\s*\\q?quad(?![a-zA-Z])|;\s*(?:\\q?quad(?![a-zA-Z]))?|\s*[，；]\s*"
                        r"|\\quad(?=\s*[A-Za-z]\s*=\s*[0-9.]+\s*$)")  # "… \quad m = 0.1": a constant's value, set apart


def first_relation(tex: str) -> re.Match | None:
    """The first relation (=, :=, \\gets …) outside braces, or None."""
    for match in _RELATION.finditer(tex):
        before = tex[:match.start()]
        if before.count("{") - before.count("\\{") == before.count("}") - before.count("\\}"):
            return match
    return None


_CASES = re.compile(r"\\begin\{cases\}(.*?)\\end\{cases\}", re.S)


def _cases_of_equations(content: str) -> str:
    r"""``\begin{cases} \hat{x}_i = … & \text{if } t = 0 \\ \hat{x}_i = … & \text{if } t \neq 0 \end{cases}``:
    each case a whole equation, its condition after ``&`` set aside (blanked: offsets stay valid). A value by
    cases (``\mu = \begin{cases} … \end{cases}``) stays as written: the auditor names it, unchecked."""
    for match in _CASES.finditer(content):
        if first_relation(content[:match.start()].rsplit("\\\\", 1)[-1]) is not None:  # a value by cases: one piece
            for k in re.finditer(r"\\\\|(?<!\\)&", match[1]):
                content = _blank(content, match.start(1) + k.start(), match.start(1) + k.end())
            continue
        inner, start = match[1], match.start(1)
        conditions = []
        for at, end in [(start + k.start(), start + k.end()) for k in re.finditer(r"(?:(?!\\\\).)+", inner, re.S)]:
            row = content[at:end]
            if not row.strip():
                continue
            amp = row.find("&")
            equation = row if amp < 0 else row[:amp]
            if first_relation(equation) is None:
                break
            if amp >= 0:
                conditions.append((at + amp, end))
        else:
            for a, b in [(match.start(), match.start(1)), (match.end(1), match.end()), *conditions]:
                content = _blank(content, a, b)
    return content


def _rows(offset: int, content: str, env: str) -> list[tuple[int, str]]:
    """(offset, text) per row: split at \\\\, nested aligned/split unwrapped."""
    content = _cases_of_equations(content)
    for match in _INNER.finditer(content):
        content = _blank(content, match.start(), match.end())
    pieces, start = [], 0
    for match in _ROW.finditer(content):
        pieces.append((offset + start, content[start:match.start()]))
        start = match.end()
    pieces.append((offset + start, content[start:]))
    if len(pieces) == 1 and not env.startswith("multline") and "\\begin" not in content:
        pieces = _lines_of_equations(offset, content)
    if env.startswith("multline"):  # one equation set over several lines
        return [(pieces[0][0], " ".join(p for _, p in pieces))]
    return pieces


_ENDS_WITH_ARROW = re.compile(_ARROW + r"(?:\s|\\q?quad(?![a-zA-Z])|\\[,;:! ])*$")


def _lines_of_equations(offset: int, content: str) -> list[tuple[int, str]]:
    """A block with no \\\\ that holds one whole equation per line (a ```math block, a $$ … $$ typed line by line):
    a line starts an equation of its own when the one above is whole (it does not end in = or an operator) and
    it has a left side of its own; any other line goes on from the one above."""
    pieces, at = [], 0
    for line in content.split("\n"):
        text = line.strip()
        relation = first_relation(text)
        own = relation is not None and text[:relation.start()].replace("&", "").strip() and not _OPERATOR_START.match(text)
        if pieces and own and first_relation(pieces[-1][1]) is not None and not (
                _ENDS_WITH_RELATION.search(pieces[-1][1]) or _ENDS_WITH_OPERATOR.search(pieces[-1][1])
                or _ENDS_WITH_ARROW.search(pieces[-1][1])):  # "a = b \quad\to\quad" + "c = d": the arrow sets apart
            pieces.append((offset + at, line))
        elif pieces:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + "\n" + line)
        else:
            pieces.append((offset + at, line))
        at += len(line) + 1
    return pieces


NOTE_ROW = re.compile(r"\s*&*\s*(?:\\[bB]igg?[lr]?\s*)?(?:\(\s*\\(?:text|textrm|mbox)\s*\{|\\(?:text|textrm|mbox)\s*\{\s*"
                      r"(?:and|because|since|where|as|note|using|so|then|thus|hence|with|let)\b)", re.IGNORECASE)


def _equations_of_block(offset: int, content: str, env: str) -> list[tuple[int, str, bool]]:
    """(offset, equation, continues) per equation in one block, rows joined and continued."""
    found: list[list] = []
    for row_offset, row in _rows(offset, content, env):
        lead = _LEADING_LAYOUT.match(row).end()
        text = row[lead:].strip()
        if not text:
            continue
        at = row_offset + lead
        if found and (_ENDS_WITH_RELATION.search(found[-1][1]) or _ENDS_WITH_OPERATOR.search(found[-1][1])):
            # "… ] = \\ \frac{1}{…}" or "… + \\ &\quad \frac{…}": broken after the = or the +
            found[-1][1] += " " + text
            continue
        if found and _OPERATOR_START.match(text):  # "&\quad + …": the row above goes on
            found[-1][1] += " " + text
            continue
        if found and (relation := first_relation(text)) is not None and not text[:relation.start()].replace("&", "").strip():
            # the row a "&= …" row goes on from: not a note between them, "&\bigg(\text{Because } a = b\bigg)"
            previous = next((f[1] for f in reversed(found) if not NOTE_ROW.match(f[1])), found[-1][1])
            head = first_relation(previous)
            if head is not None:
                found.append([at, previous[:head.start()].replace("&", " ").strip() + " " + text.lstrip("&"), True])
                continue
        found.append([at, text, False])
    out = []
    for at, text, continues in found:
        for k, piece in enumerate(piece for column in split_columns(text) for piece in _split_separated(column)):
            out.append((at + (text.find(piece) if k else 0), piece, continues and k == 0))
    return out


def split_columns(row: str) -> list[str]:
    r"""An align row holding several equations, ``& \mu = a & v = b``, split at the ``&`` that
    starts a new left side; ``a &= b`` and ``t &=& u`` stay one equation."""
    pieces, depth, start = [], 0, 0
    for k, ch in enumerate(row):
        if ch == "{" and row[k - 1:k] != "\\":
            depth += 1
        elif ch == "}" and row[k - 1:k] != "\\":
            depth -= 1
        elif ch == "&" and depth == 0 and row[k - 1:k] != "\\":
            pieces.append(row[start:k])
            start = k + 1
    pieces.append(row[start:])
    equations: list[str] = []
    for k, piece in enumerate(pieces):
        relation = first_relation(piece)
        has_left = relation is not None and piece[:relation.start()].strip()
        nxt = pieces[k + 1] if k + 1 < len(pieces) else ""
        starts_next = (first_relation(nxt) is not None and not nxt[:first_relation(nxt).start()].strip())
        complete = bool(equations) and first_relation(equations[-1]) is not None
        if complete and (has_left or (piece.strip() and relation is None and starts_next)):
            equations.append(piece)
        elif equations:
            equations[-1] += " & " + piece
        else:
            equations.append(piece)
    return [e for e in equations if e.strip()] or [row]


def _split_separated(text: str) -> list[str]:
    """Several equations on one row, set apart by ``\\qquad`` or ``, \\quad``."""
    pieces, start = [], 0
    for match in _SEPARATOR.finditer(text):
        before, after = text[start:match.start()], text[match.end():]
        if first_relation(before) is not None and first_relation(after) is not None and not _RANGE_AFTER.match(after):
            pieces.append(before)
            start = match.end()
    pieces.append(text[start:])
    return [q.strip() for p in pieces for q in _split_at_commas(p) if q.strip()]


_RANGE_AFTER = re.compile(r"^\s*(?:[a-z]\s*(?:=\s*-?\d+\s*(?:,|\\l?dots|\\cdots|\.\.)|\\in(?![a-zA-Z])|\\ne)|\\forall)")


def _split_at_commas(text: str) -> list[str]:
    r"""``\gamma = 1, \sigma_0 = 1, B = 2``: settings written in a row, set apart by commas outside any bracket. Not
    a range after a formula (``…, i = 1, \dots, m``, ``…, j \in B``) and not a list (``x = 1, 2, 3``)."""
    pieces, start, depth = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "{([" and text[k - 1:k] != "\\":
            depth += 1
        elif ch in "})]" and text[k - 1:k] != "\\":
            depth -= 1
        elif ch == "," and depth == 0 and text[k - 1:k] != "\\":  # not the thin space \,
            before, after = text[start:k], text[k + 1:]
            rest = re.sub(r"^(?:\s|\\[ ,;!:]|\\q?quad(?![a-zA-Z]))*", "", after)
            if first_relation(before) is not None and first_relation(rest.split(",")[0]) is not None \
                    and not _RANGE_AFTER.match(rest):
                pieces.append(before)
                start = k + 1
    pieces.append(text[start:])
    return pieces


_LAYOUT = re.compile(r"(?<!\\)&|\\(?:label|tag)\*?\{[^{}]*\}|\\(?:nonumber|notag)(?![a-zA-Z])")


_WRAPPER = re.compile(r"^\\(?:boxed|color\s*\{[^{}]*\}|displaystyle\s*)\s*\{(.*)\}$", re.S)


_FULL_WIDTH = str.maketrans("，；：（）。", ",;:().")  # CJK punctuation typed inside a formula


def _tidy(tex: str) -> str:
    """Alignment marks, labels and tags out; runs of white space made one space; a whole
    equation in ``\\boxed{…}`` unwrapped."""
    tex = re.sub(r"\s+", " ", _LAYOUT.sub(" ", tex)).strip().translate(_FULL_WIDTH)
    wrapped = _WRAPPER.match(tex)
    return wrapped[1].strip() if wrapped and first_relation(wrapped[1]) is not None else tex


# "… (\text{Let } \frac{1}{\sqrt{\sigma^2 + \epsilon}} = t)" beside a formula: the note names what the formula writes t
_LET = re.compile(r"(?:\\boldsymbol\s*\{|\\mathbf\s*\{|\{)?\s*\(\s*\\text\s*\{\s*[Ll]et\s*\}\s*~?")
_LET_CLOSE = re.compile(r"\)\s*\}?\s*$")
_LET_NAME = re.compile(r"^\s*[A-Za-z](?:_\{?[A-Za-z0-9]\}?)?\s*$")


def _let_note(snippet: Snippet) -> list[Snippet]:
    """The snippet without a closing "(Let A = t)" note, and before it that note as a definition of its own,
    t = A (inline, so that it continues no chain)."""
    opening, closing = _LET.search(snippet.tex), _LET_CLOSE.search(snippet.tex)
    if opening is None or closing is None or closing.start() <= opening.end() or opening.start() == 0:
        return [snippet]
    note = snippet.tex[opening.end():closing.start()]
    relation = first_relation(note)
    if relation is None or note.count("(") != note.count(")"):
        return [snippet]
    left, right = note[:relation.start()], note[relation.end():]
    if _LET_NAME.match(right) and not _LET_NAME.match(left):  # "Let A = t": t names A
        note = f"{right.strip()} = {left.strip()}"
    formula = snippet.tex[:opening.start()].rstrip()
    return [replace(snippet, tex=note.strip(), display=False, continues=False), replace(snippet, tex=formula)]


def find_equations(text: str, fmt: str = "md", cell: int | None = None,
                   macros: dict[str, Macro] | None = None) -> list[Snippet]:
    """Every equation (math with a relation) of one text, in order, macros expanded."""
    own, spans = collect_macros(text)
    macros = {**(macros or {}), **own}
    for start, end in spans:
        text = _blank(text, start, end)
    text = _mask(text, fmt)
    newlines = [k for k, ch in enumerate(text) if ch == "\n"]
    found = []
    for offset, content, env, display in math_blocks(text):
        for at, tex, continues in _equations_of_block(offset, content, env):
            try:
                tex = expand_macros(tex, macros)
            except BngraphError:
                pass  # the parser will name the macro it cannot read
            found.append(Snippet(_tidy(tex), bisect_right(newlines, at - 1) + 1, cell, display, continues))
    found = [piece for snippet in found for piece in _let_note(snippet)]
    snippets = []
    for k, snippet in enumerate(found):
        if first_relation(snippet.tex) is None and not snippet.continues:
            after = found[k + 1].tex.lstrip() if k + 1 < len(found) else ""
            if not after.startswith("=") or not snippet.tex.strip():
                continue  # inline math that states nothing: $x_i$, $m$
            snippet = replace(snippet, head=True)  # $\frac{\partial r}{\partial x}$ then $= …$: what the chain is of
        snippets.append(snippet)
    return snippets


def document_equations(path_or_text, doc_format: str | None = None) -> tuple[str, list[Snippet]]:
    """(name, every equation of the document); notebook macros carry from cell to cell."""
    name, fmt, cells = read_document(path_or_text, doc_format)
    return name, equations_of(name, fmt, cells)


def equations_of(name: str, fmt: str, cells: list[tuple[int | None, str]]) -> list[Snippet]:
    """Every equation of a document already read (:func:`read_document`)."""
    macros: dict[str, Macro] = {}
    snippets = []
    for cell, text in cells:
        own, _ = collect_macros(text)
        snippets += find_equations(text, "md" if fmt == "ipynb" else fmt, cell, macros)
        macros.update(own)
        if len(snippets) > MAX_EQUATIONS:
            raise BngraphError(f"{name}: more than {MAX_EQUATIONS} equations; the auditor reads at most that many "
                               "in one document (split it)")
    return snippets
