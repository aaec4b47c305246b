"""The report's index.html, read as a document: its sections in learning order, its mathematics
made from the LaTeX document's own rows, no TeX left, the graph's nodes and edges linked to the
equations, nothing fetched, the same bytes every run. (tests/test_page_browser.py opens it.)"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from bngraph.output.mathml import math

from bngraph.cli import main
from bngraph.output.report import build_report

DATA = Path(__file__).parent / "data"
LEARNING_ORDER = ["forward-pass", "forward-graph", "local-partial-derivatives", "backward-graph",
                  "adjoints-by-the-chain-rule", "simplification", "the-backward-pass", "verification"]


class Outline(HTMLParser):
    """What a reader meets: section ids in order, visible text (code apart), and the link attributes."""

    def __init__(self):
        super().__init__()
        self.sections, self.text, self.code, self.nodes, self.edges, self.eqs = [], [], [], {}, {}, {}
        self.ids, self._skip, self._in_code, self._eq = set(), 0, False, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids.add(a["id"])
        if tag == "section":
            self.sections.append(a["id"])
        if tag in ("style", "script", "title"):
            self._skip += 1
        self._in_code = self._in_code or tag == "pre"
        if tag == "g" and "node" in a.get("class", ""):
            self.nodes[(a["id"].rsplit("-node", 1)[0], a.get("data-node"))] = a.get("data-about")
        if tag == "g" and "edge" in a.get("class", ""):
            self.edges[a["id"]] = a.get("data-partial")
        if tag == "tbody" and "data-about" in a:
            self._eq = a["id"]
            self.eqs[a["id"]] = (self.sections[-1], a["data-about"].split())

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._skip -= 1
        if tag == "pre":
            self._in_code = False

    def handle_data(self, data):
        if not self._skip:
            (self.code if self._in_code else self.text).append(data)


@pytest.fixture(scope="module")
def batchnorm():
    files, status = build_report("batchnorm", None, 3)
    assert status == 0
    return files


def _outline(page: str) -> Outline:
    outline = Outline()
    outline.feed(page)
    return outline


def test_sections_come_in_the_order_the_derivation_is_learned(batchnorm):
    sections = _outline(batchnorm["index.html"]).sections
    assert sections == ["introduction"] + LEARNING_ORDER


def test_no_tex_is_left_on_the_page(batchnorm):
    outline = _outline(batchnorm["index.html"])
    text = "".join(outline.text)
    assert not re.search(r"\\[A-Za-z]+|\$|\\\\|&=|\{\}", text), re.search(r".{30}(\\[A-Za-z]+|\$).{30}", text)
    assert "∂" in text and "μ" in text and "σ" in text  # the mathematics is there, as MathML's characters


def test_every_row_of_the_latex_document_is_on_the_page_as_mathml(batchnorm):
    """One source of truth: the right side of each row of derivation.tex, converted, is in the page."""
    tex = batchnorm["derivation.tex"]
    rows = [row for env in re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", tex, re.S)
            for row in env.split(" \\\\\n")]
    assert len(rows) > 30
    for row in rows:
        lhs, _, rhs = row.partition("&")
        rhs = re.sub(r" \\tag\*?\{.*\}$", "", rhs)  # the note or number: prose beside the math on the page
        assert math(rhs, display=True) in batchnorm["index.html"], row
        if lhs.strip():
            assert math(lhs.strip(), display=True) in batchnorm["index.html"], row


def test_a_node_is_linked_to_its_definition_local_partials_and_adjoint(batchnorm):
    outline = _outline(batchnorm["index.html"])
    assert outline.nodes[("forward-named", "mu")] == "mu"
    assert outline.nodes[("forward-named", "xhat_2")] == "xhat xhat_2"
    assert outline.nodes[("backward-named", "sigma2")] == "sigma2"
    about_mu = {section for section, about in outline.eqs.values() if "mu" in about}
    assert {"forward-pass", "local-partial-derivatives", "adjoints-by-the-chain-rule"} <= about_mu
    for family in ("x", "xhat", "sigma2", "gamma", "beta", "y"):  # every named node finds an equation
        assert any(family in about for _, about in outline.eqs.values()), family


def test_an_edge_shows_its_own_local_partial(batchnorm):
    page = batchnorm["index.html"]
    outline = _outline(page)
    linked = [p for p in outline.edges.values() if p]
    assert linked and all(p in outline.ids for p in linked)
    # the edge x_1 -> mu of the forward graph: dmu/dx_1 = 1/3 (the mean of three)
    edge = re.search(r'<g id="forward-named-edge\d+" class="edge" data-edge="x_1-&gt;mu" data-partial="([\w-]+)">', page)
    partial = re.search(rf'<table class="align" id="{edge[1]}">(.*?)</table>', page, re.S)[1]
    partial = re.sub(r"</?mrow>", "", html.unescape(partial))
    assert "<mfrac><mo>∂</mo><mi>μ</mi><mo>∂</mo><msub><mi>x</mi><mn>1</mn></msub></mfrac>" in partial
    assert "<mo>=</mo><mfrac><mn>1</mn><mn>3</mn></mfrac>" in partial


def test_the_page_fetches_nothing_and_has_its_style_and_script_inline(batchnorm):
    page = batchnorm["index.html"]
    bare = re.sub(r'xmlns(:\w+)?="[^"]*"|<!DOCTYPE[^>]*>', "", page)
    assert not re.search(r"https?:|//[a-z]|<link|@import|\bsrc=", bare)
    assert "<style>" in page and "<script>" in page and "addEventListener" in page


def test_the_page_is_small_and_the_same_bytes_every_run(tmp_path, capsys):
    for run in ("a", "b"):
        assert main(["report", "-o", str(tmp_path / run)]) == 0
    summary = capsys.readouterr().out.splitlines()
    assert summary[1].strip().startswith(f"open {tmp_path / 'a' / 'index.html'}")  # said first
    first, second = (tmp_path / "a" / "index.html").read_bytes(), (tmp_path / "b" / "index.html").read_bytes()
    assert first == second
    assert len(first) < 3_000_000


@pytest.mark.slow
def test_a_users_function_shows_its_source_and_the_statistics_bngraph_recognised():
    files, status = build_report(None, f"{DATA / 'numpy_forwards.py'}:kratzert_nine_steps", 3)
    assert status == 0
    outline = _outline(files["index.html"])
    assert outline.sections == ["introduction"] + LEARNING_ORDER + ["source"]
    code = "".join(outline.code)
    assert code.startswith("def kratzert_nine_steps(x, gamma, beta, eps):") and "sqrtvar" in code
    recognised = [about for section, about in outline.eqs.values() if section == "source"]
    assert recognised == [["mu"], ["sigma2"], ["xhat"]]  # the function names none of them
    assert not re.search(r"\\[A-Za-z]+|\$", "".join(outline.text))


def test_without_a_closed_form_the_page_is_the_derivation_at_m():
    from bngraph.check.verify import verify
    from bngraph.engine.derive import derive
    from bngraph.engine.graph import build_graph
    from bngraph.engine.layers import trace_target
    from bngraph.output.page import build_page
    from bngraph.output.render import render_graph

    traced = trace_target("batchnorm", None, 2)
    named, staged = derive(build_graph(traced, "named")), derive(build_graph(traced, "staged"))
    svgs = {f"{d}_{v.graph.view}.svg": render_graph(v.graph, None, format="svg", direction=d, derivation=v)
            for d in ("forward", "backward") for v in (named, staged)}
    outline = _outline(build_page(named, staged, None, verify(named, None, other_view=staged), svgs))
    assert outline.sections == ["forward-pass-at", "forward-graph", "local-partial-derivatives", "backward-graph",
                                "adjoints-by-the-chain-rule", "fully-substituted-at", "verification"]
    assert {s for s, about in outline.eqs.values() if "mu" in about} >= {"forward-pass-at", "adjoints-by-the-chain-rule"}
    assert outline.nodes[("forward-named", "xhat_2")] == "xhat xhat_2"  # at m, the equations are about xhat_2
    assert {s for s, about in outline.eqs.values() if "xhat_2" in about} >= {"forward-pass-at", "local-partial-derivatives",
                                                                             "adjoints-by-the-chain-rule"}
    assert not re.search(r"\\[A-Za-z]+|\$", "".join(outline.text))


def test_mathml_is_set_as_tex_sets_it():
    r"""Limits under and over a displayed sum, also inside \left( … \right); parentheses around one
    line of type unstretched; a slash unspaced. Inline, a sum keeps its limits beside it."""
    inside = math(r"\left(m \mu - \sum_{j=1}^{m} x_{j}\right)", display=True)
    assert "<munderover><mo>&#x02211;</mo>" in inside and "<msubsup>" not in inside
    assert inside.count('stretchy="true"') == 2  # around a sum, the parentheses grow
    assert math(r"\sum_{j=1}^{m} x_{j}").count("<msubsup>") == 1
    line = math(r"\left(\sigma^{2} + \epsilon\right)^{3/2}", display=True)
    assert line.count('stretchy="false"') == 2 and 'stretchy="true"' not in line
    assert '<mo lspace="0em" rspace="0em">&#x0002F;</mo>' in line
