"""The report's index.html in a real browser: Playwright driving the Chromium Debian ships
(``apt-get install chromium``; Playwright's own browser download is not used).

Skipped, with the reason, only where Playwright or the browser is missing. Screenshots are
written to tests/artifacts/ (git-ignored) for a person to look at.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bngraph.output.report import build_report

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install -e '.[test]')")
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium found (apt-get install chromium)")
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    files, _ = build_report("batchnorm", None, 3)
    path = tmp_path_factory.mktemp("report") / "index.html"
    path.write_text(files["index.html"], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])  # root in a container
        yield browser
        browser.close()


@pytest.fixture
def opened(browser, page_file):
    """The page loaded from file://, with every console message and every request it made recorded."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.messages, page.requests = [], []
    page.on("console", lambda m: page.messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: page.messages.append(f"pageerror: {e}"))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    yield page
    page.close()


def _in_view(page, selector: str) -> bool:
    return page.eval_on_selector(selector, "e => { const r = e.getBoundingClientRect();"
                                           " return r.bottom > 0 && r.top < window.innerHeight; }")


def test_the_page_loads_from_disk_without_errors_or_network(opened, page_file):
    assert opened.messages == []
    assert opened.requests == [page_file.as_uri()]
    ARTIFACTS.mkdir(exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / "index_batchnorm_m3.png"), full_page=True)


def test_the_mathematics_is_set_as_mathml(opened):
    sizes = opened.eval_on_selector_all("math", "ms => ms.map(m => { const r = m.getBoundingClientRect();"
                                                " return [r.width, r.height]; })")
    visible = [s for s in sizes if s[0] > 0 and s[1] > 0]
    assert len(visible) >= 10
    # a fraction is taller than a line of text: MathML is laid out, not shown as its source
    height = opened.eval_on_selector("#forward-pass tbody.eq td.rhs math", "m => m.getBoundingClientRect().height")
    line = opened.eval_on_selector("#forward-pass + section p", "p => parseFloat(getComputedStyle(p).lineHeight)")
    assert height > line
    assert "\\frac" not in opened.inner_text("body")


def test_both_graphs_are_visible(opened):
    for figure in ("#forward-graph figure[data-view=named] svg", "#backward-graph figure[data-view=named] svg"):
        assert opened.is_visible(figure)
        box = opened.locator(figure).bounding_box()
        assert box["width"] > 300 and box["height"] > 300


def test_clicking_mu_shows_and_highlights_its_equations(opened):
    first = "#forward-pass tbody.eq[data-about~=mu]"
    mu = opened.locator("#backward-graph figure[data-view=named] g.node[data-node=mu]")
    mu.scroll_into_view_if_needed()
    assert not _in_view(opened, first)  # the definition is not in view before the click ...
    mu.click()
    highlighted = opened.eval_on_selector_all("tbody.eq.highlight", "es => es.map(e => e.closest('section').id)")
    assert {"forward-pass", "local-partial-derivatives", "adjoints-by-the-chain-rule"} <= set(highlighted)
    assert _in_view(opened, first)  # ... and is after it
    assert opened.eval_on_selector(first, "e => getComputedStyle(e.querySelector('td')).backgroundColor") \
        != "rgba(0, 0, 0, 0)"
    ARTIFACTS.mkdir(exist_ok=True)
    opened.screenshot(path=str(ARTIFACTS / "index_after_clicking_mu.png"))
    opened.locator("#forward-graph figure[data-view=named] g.node[data-node=sigma2]").click()
    now = opened.eval_on_selector_all("tbody.eq.highlight", "es => es.map(e => e.dataset.about)")
    assert now and all("sigma2" in about.split() for about in now)  # the old highlight is gone


def test_the_toggle_switches_named_and_staged_views(opened):
    named, staged = "#forward-graph figure[data-view=named]", "#forward-graph figure[data-view=staged]"
    assert opened.is_visible(named) and not opened.is_visible(staged)
    opened.click("#forward-graph button[data-view=staged]")
    assert opened.is_visible(staged) and not opened.is_visible(named)
    assert opened.get_attribute("#forward-graph button[data-view=staged]", "aria-pressed") == "true"
    assert opened.locator(staged + " g.node").count() > opened.locator(named + " g.node").count()
    assert opened.is_visible("#backward-graph figure[data-view=named]")  # the other graph is left alone
    opened.click("#forward-graph button[data-view=named]")
    assert opened.is_visible(named) and not opened.is_visible(staged)


def test_hovering_an_edge_shows_its_local_partial(opened):
    assert not opened.is_visible("#tip")
    opened.locator('#forward-graph figure[data-view=named] g.edge[data-edge="x_1->mu"] polygon').hover()
    assert opened.is_visible("#tip")
    assert opened.locator("#tip math").count() == 2  # ∂μ/∂x₁ and = 1/3, typeset
    assert "∂" in opened.inner_text("#tip")
    opened.mouse.move(1, 1)
    assert not opened.is_visible("#tip")


@pytest.mark.slow
@pytest.mark.parametrize("layer, function, m, node, family", [
    ("layernorm", None, 3, "sigma2", "sigma2"),
    ("batchnorm", None, 8, "xhat_8", "xhat"),
    (None, str(Path(__file__).parent / "data" / "numpy_forwards.py") + ":kratzert_nine_steps", 3, "x_2", "x"),
], ids=["layernorm", "m8", "function"])
def test_the_same_page_for_other_layers_batches_and_functions(browser, tmp_path, layer, function, m, node, family):
    files, status = build_report(layer, function, m)
    assert status == 0
    path = tmp_path / "index.html"
    path.write_text(files["index.html"], encoding="utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    messages, requests = [], []
    page.on("console", lambda msg: messages.append(msg.text))
    page.on("pageerror", lambda e: messages.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    assert messages == [] and requests == [path.as_uri()]
    assert page.eval_on_selector_all("math", "ms => ms.filter(m => m.getBoundingClientRect().width > 0).length") >= 10
    page.locator(f"#backward-graph figure[data-view=named] g.node[data-node={node}]").click()
    highlighted = page.eval_on_selector_all("tbody.eq.highlight", "es => es.map(e => e.dataset.about)")
    assert highlighted and all(family in about.split() or node in about.split() for about in highlighted)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"index_{layer or 'function'}_m{m}.png"), full_page=True)
    page.close()
