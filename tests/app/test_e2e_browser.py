"""End to end in a real browser: ``streamlit run app.py`` driven by Playwright + Chromium.

The server runs once per module on a free localhost port, with a small seeded demo store as
its data (``$RECSYS_APP_DATA``) and a pre-trained lab in a temporary ``$RECSYS_HOME``, so the
app only loads models. Each page in :data:`PAGES` is opened by URL; the test waits for its
title and key content (text, tables with rows, the outcome of an interaction), checks that
Streamlit shows no exception box and no "page not found" dialog, and saves a screenshot of
the whole page into one temporary folder (printed; run with ``-s`` to see it).

To cover a new page, add a :class:`PageCase` to :data:`PAGES`.

Needs Debian's Chromium (``apt-get install -y chromium``); skipped without ``/usr/bin/chromium``.
Playwright's own browser download is not used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright

from tests.app.live_app import (
    BUSY_SELECTOR,
    CHROMIUM,
    CHROMIUM_ARGS,
    ServerFailed,
    streamlit_server,
    wait_healthy,
)

HEALTH_TIMEOUT_S = 90.0
#: Per-wait timeout inside the browser (ms): Streamlit renders asynchronously.
WAIT_MS = 60_000
#: Longest wait for an evaluation started on the Model lab page (ms).
EVALUATE_MS = 120_000
#: Longest wait for the demo store's quick models to be trained on a switch (ms).
TRAIN_MS = 300_000
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}
#: Tallest screenshot (px): the page is captured whole up to this height.
MAX_SHOT_HEIGHT = 8000
#: Streamlit's error box for an uncaught exception in a page script.
EXCEPTION_SELECTOR = '[data-testid="stException"]'
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium)",
    ),
]


@dataclass(frozen=True)
class DemoData:
    """The small data set the app is started on."""

    csv: Path
    home: Path
    search_word: str
    search_title: str
    quiet_shopper: str


@dataclass(frozen=True)
class PageCase:
    """One page to open: its URL path, its ``st.title`` and what else must be shown.

    ``texts``: text that must be visible (case-sensitive substrings). ``tables``: for each
    entry, an ``st.dataframe`` whose column headers include that text must show at least one
    row. ``action``, if given, then interacts with the page (e.g. types a search query) and
    checks the outcome itself.
    """

    path: str
    title: str
    texts: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    action: Callable[[Page, DemoData], None] | None = field(default=None, compare=False)


def _wait_for_run(page: Page) -> None:
    """Wait until Streamlit has finished the current script run and loaded every element."""
    page.wait_for_timeout(300)  # let a rerun start before looking for its end
    expect(page.locator(BUSY_SELECTOR)).to_have_count(0, timeout=WAIT_MS)


def _table(page: Page, header: str) -> Locator:
    """The ``st.dataframe`` elements with a column header containing ``header``.

    The grid is drawn on a canvas; its cells are mirrored in an (invisible) accessibility
    table, which is what these locators read.
    """
    head = page.locator('[role="columnheader"]').filter(has_text=header)
    return page.locator('[data-testid="stDataFrame"]').filter(has=head)


def _wait_for_table(page: Page, header: str, cell_text: str | None = None) -> None:
    """Wait until a table with ``header`` shows a row (one containing ``cell_text`` if given)."""
    cells = _table(page, header).locator('[role="gridcell"]')
    if cell_text is not None:
        cells = cells.filter(has_text=cell_text)
    cells.first.wait_for(state="attached", timeout=WAIT_MS)


def _search(page: Page, data: DemoData) -> None:
    """Type a word from a product title; that product is listed by relevance."""
    box = page.get_by_label("Search products")
    box.fill(data.search_word)
    box.press("Enter")
    page.get_by_text("By relevance").first.wait_for(timeout=WAIT_MS)
    _wait_for_table(page, "relevance", data.search_title)
    _wait_for_run(page)
    # re-ranked for the shopper, but only among relevant matches
    page.get_by_text("Only relevant matches are re-ranked").first.wait_for(timeout=WAIT_MS)
    _wait_for_table(page, "if they order")
    _no_none_cells(page)


def _no_none_cells(page: Page) -> None:
    """No table cell reads "None" (missing values show a dash)."""
    cells = page.locator('[data-testid="stDataFrame"] [role="gridcell"]')
    texts = [t.strip() for t in cells.all_inner_texts()]
    assert "None" not in texts, "a table cell shows None"


def _find_shopper(page: Page, data: DemoData) -> None:
    """Typing the least active shopper's id selects that shopper (every id is findable)."""
    box = page.get_by_label("Find a shopper by id", exact=True)
    box.fill(data.quiet_shopper)
    box.press("Enter")
    page.get_by_text(f"{data.quiet_shopper}:").first.wait_for(timeout=WAIT_MS)
    _wait_for_run(page)
    _no_none_cells(page)
    # the select below the box shows the typed shopper too, not the one chosen before
    select = page.get_by_role("combobox", name=re.compile(r"^Shopper \("))
    expect(select).to_have_value(re.compile(rf"^{re.escape(data.quiet_shopper)} ·"))


def _similar_k(page: Page, _data: DemoData) -> None:
    """Each similar-items list has k = 10 rows (filled from the next model when short)."""
    tables = _table(page, "similarity")
    expect(tables).to_have_count(2, timeout=WAIT_MS)  # ALS and item-kNN
    for i in range(2):
        rows = tables.nth(i).locator('[role="row"]')
        expect(rows).to_have_count(11, timeout=WAIT_MS)  # the header row + 10
    _no_none_cells(page)


def _evaluate(page: Page, _data: DemoData) -> None:
    """Press Evaluate (default models and settings); the metrics tables appear."""
    page.get_by_role("button", name="Evaluate", exact=True).click()
    page.get_by_text("Model selection").first.wait_for(timeout=EVALUATE_MS)
    _wait_for_table(page, "ndcg")
    _wait_for_run(page)


#: The Explanations page shows SHAP importance and effect plots (the ranker is required).
_EXPLANATIONS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("What drives the purchase probability", "Effect of one feature"),
    ("mean |SHAP|",),
)

#: Every page of the app. Extend this list when a page is added.
PAGES: list[PageCase] = [
    PageCase("", "Overview", ("Trained models", "Where to go next"), ("fit time",)),
    PageCase("decision", "Decision", ("In short", "Model to ship", "Forward it")),
    PageCase("planner", "Test planner", ("Shoppers per arm", "Days to run")),
    PageCase("overview", "Overview", ("Trained models",)),
    PageCase("data", "Data", ("Upload your own log",), ("events",)),
    PageCase(
        "shopper",
        "Shopper",
        ("Recommendations", "Models side by side", "Expected revenue of this list"),
        ("overall",),
        action=lambda page, data: _find_shopper(page, data),
    ),
    PageCase(
        "similar",
        "Similar items",
        ("ALS (latent factors)",),
        ("similarity", "bought both"),
        action=lambda page, data: _similar_k(page, data),
    ),
    PageCase("search", "Search", ("Search products",), action=_search),
    PageCase("model_lab", "Model lab", ("Evaluate",), action=_evaluate),
    PageCase("explanations", "Explanations", *_EXPLANATIONS),
    PageCase("operations", "Operations", ("Health", "Backup and restore"), ("verification",)),
    PageCase("merchandising", "Merchandising", ("Rules served now", "Preview on a shopper")),
]


def _screenshot(page: Page, path: Path) -> None:
    """Capture the whole page: Streamlit scrolls inside its main block, not the document."""
    height = page.evaluate(
        """() => Math.max(document.body.scrollHeight,
            ...[...document.querySelectorAll('[data-testid="stMain"], section')]
                .map(e => e.scrollHeight))"""
    )
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, MAX_SHOT_HEIGHT)})
    page.wait_for_timeout(500)  # re-layout (canvas tables and charts redraw)
    page.screenshot(path=str(path), full_page=True)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    """A small seeded demo store as a CSV (with titles), and a lab pre-trained on it.

    The lab has the models the app wants for this data (:func:`ui.resources.wanted_models`),
    so the app finds it and only loads.
    """
    from recsys_core.data.demo_store import generate_demo_store
    from recsys_core.data.loaders import load_event_file
    from recsys_core.serving.lab import save_lab
    from recsys_core.training import TrainConfig, train_lab
    from ui.resources import wanted_models

    root = tmp_path_factory.mktemp("e2e_app")
    events, catalog = generate_demo_store(n_users=300, n_items=150, n_events=20_000, seed=1)
    events = events.merge(catalog[["item_id", "title", "category"]], on="item_id", how="left")
    csv = root / "demo_small.csv"
    events.to_csv(csv, index=False)
    home = root / "home"
    dataset = load_event_file(csv)  # as the app loads $RECSYS_APP_DATA: same name, checksum
    save_lab(train_lab(dataset, TrainConfig(models=wanted_models(dataset))), home=home)
    title = str(catalog["title"].iloc[0])
    word = max(title.split(), key=len)
    quiet = str(events.groupby("user_id", observed=True).size().sort_values(kind="stable").index[0])
    return DemoData(csv=csv, home=home, search_word=word, search_title=title, quiet_shopper=quiet)


@pytest.fixture(scope="module")
def app_url(demo_data: DemoData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run app.py`` on a free port; yields its base URL; always stops it."""
    log = tmp_path_factory.mktemp("e2e_server") / "streamlit.log"
    env = {**os.environ, "RECSYS_HOME": str(demo_data.home), "RECSYS_APP_DATA": str(demo_data.csv)}
    env.pop("RECSYS_APP_DATASET", None)
    args = (
        "--server.fileWatcherType",
        "none",
        "--client.showErrorDetails",
        "full",  # a failure message then carries the page's traceback
    )
    with streamlit_server(env, log, args) as (proc, base):
        try:
            wait_healthy(proc, base, log, HEALTH_TIMEOUT_S)
        except ServerFailed as exc:
            pytest.fail(str(exc))
        yield base
    print(f"\nstreamlit log: {log}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the screenshots of every page."""
    folder = tmp_path_factory.mktemp("e2e_screenshots")
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.mark.parametrize("case", PAGES, ids=lambda c: c.path or "root")
def test_page_renders(
    case: PageCase, app_url: str, browser: Browser, demo_data: DemoData, screenshots: Path
) -> None:
    """The page shows its title and key content, and no exception or not-found dialog."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(f"{app_url}/{case.path}", wait_until="domcontentloaded", timeout=WAIT_MS)
        page.locator("h1").filter(has_text=case.title).first.wait_for(timeout=WAIT_MS)
        for text in case.texts:
            page.get_by_text(text).first.wait_for(timeout=WAIT_MS)
        for header in case.tables:
            _wait_for_table(page, header)
        _wait_for_run(page)
        if case.action is not None:
            case.action(page, demo_data)
        _screenshot(page, screenshots / f"{case.path or 'root'}.png")
        expect(page.get_by_text("Page not found")).to_have_count(0)
        errors = page.locator(EXCEPTION_SELECTOR)
        assert errors.count() == 0, f"{case.title}: exception shown:\n{errors.first.inner_text()}"
    finally:
        context.close()


def test_app_loaded_instead_of_training(app_url: str, demo_data: DemoData) -> None:
    """After every page ran, the pre-trained version is still the only one: nothing retrained."""
    from recsys_core.serving.lab import list_versions

    versions = list_versions(home=demo_data.home)
    assert len(versions) == 1, [v["version"] for v in versions]


def test_switching_to_the_demo_store_shows_its_funnel(
    app_url: str, browser: Browser, demo_data: DemoData, screenshots: Path
) -> None:
    """The Data page switches to the built-in demo store; the Overview shows its real funnel
    (views, carts, purchases) and the pages work on its quick models at once. Runs last: it
    trains the demo store's quick models and starts its background training."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.goto(f"{app_url}/data", wait_until="domcontentloaded", timeout=WAIT_MS)
        page.locator("h1").filter(has_text="Data").first.wait_for(timeout=WAIT_MS)
        _wait_for_run(page)
        page.get_by_role("combobox", name="Active dataset").click()
        page.get_by_role("option", name="demo-store (synthetic)").click()
        page.get_by_text("Dataset: demo-store (synthetic)").first.wait_for(timeout=WAIT_MS)
        page.goto(f"{app_url}/overview?dataset=demo-store", wait_until="domcontentloaded")
        page.get_by_text("Trained models").first.wait_for(timeout=TRAIN_MS)
        page.get_by_text("Funnel: events per stage").first.wait_for(timeout=TRAIN_MS)
        page.get_by_text("Dataset: demo-store (synthetic)").first.wait_for(timeout=WAIT_MS)
        _screenshot(page, screenshots / "overview-demo-store.png")
        errors = page.locator(EXCEPTION_SELECTOR)
        assert errors.count() == 0, f"exception shown:\n{errors.first.inner_text()}"
    finally:
        context.close()


#: Elements whose text must never be cut with an ellipsis ("Active version 2026120…").
_CLIPPABLE = (
    '[data-testid="stMetricValue"], [data-testid="stMetricValue"] *, '
    '[data-testid="stMetricLabel"] *, [data-testid="stWidgetLabel"] *'
)


def _clipped_texts(page: Page) -> list[str]:
    """Texts that their box cuts off (wider content than the box, overflow hidden)."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter(e => e.textContent.trim()
                && getComputedStyle(e).textOverflow === 'ellipsis'
                && e.scrollWidth > e.clientWidth + 1)
            .map(e => e.textContent.trim())""",
        _CLIPPABLE,
    )


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.parametrize("path", ["shopper", "search", "operations", "decision", "planner"])
def test_no_metric_or_label_is_cut(path: str, width: int, app_url: str, browser: Browser) -> None:
    """Issue 24 (6): metric values and labels were cut ("Active version 2026120…") at
    common window widths."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{app_url}/{path}", wait_until="domcontentloaded", timeout=WAIT_MS)
        page.locator("h1").first.wait_for(timeout=WAIT_MS)
        _wait_for_run(page)
        page.wait_for_timeout(500)
        assert _clipped_texts(page) == []
    finally:
        context.close()


def _wide_tables(page: Page) -> list[str]:
    """The tables that scroll sideways, by their first headers: the last column in view is
    then cut ("ALS taste m…"), whatever its own width."""
    return page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')]
            .map(df => [df, df.querySelector('.dvn-scroller')])
            .filter(([df, sc]) => sc && sc.scrollWidth > sc.clientWidth + 1)
            .map(([df, sc]) => [...df.querySelectorAll('[role="columnheader"]')]
                .slice(0, 3).map(h => h.textContent.trim()).join(' | ')
                + ` (${sc.scrollWidth} px in ${sc.clientWidth} px)`)"""
    )


#: Pages whose tables must fit the window, with the action that fills them.
_TABLE_PAGES = [
    pytest.param("shopper", None, id="shopper"),
    pytest.param("search", _search, id="search"),
    pytest.param("operations", None, id="operations"),
    pytest.param("model_lab", _evaluate, id="model_lab"),
]


@pytest.mark.parametrize(("path", "action"), _TABLE_PAGES)
def test_no_table_header_is_cut_at_1280_and_1920_px(
    path: str,
    action: Callable[[Page, DemoData], None] | None,
    app_url: str,
    browser: Browser,
    demo_data: DemoData,
) -> None:
    """Issue 24 (6): the Shopper table's last header ("ALS taste m…") was cut at 1400 px:
    the table was wider than the page and scrolled sideways. Every table fits the window at
    1280 px and at 1920 px (headers that fit their own columns are checked by AppTest,
    ``test_no_table_header_is_cut_by_a_fixed_width``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{app_url}/{path}", wait_until="domcontentloaded", timeout=WAIT_MS)
        page.locator("h1").first.wait_for(timeout=WAIT_MS)
        _wait_for_run(page)
        if action is not None:
            action(page, demo_data)
        for width in (1280, 1920):
            page.set_viewport_size({"width": width, "height": 1000})
            page.wait_for_timeout(1000)  # re-layout: the grids re-measure their columns
            expect(page.locator('[data-testid="stDataFrame"]').first).to_be_attached()
            assert _wide_tables(page) == [], f"at {width} px"
    finally:
        context.close()


def _log_in(page: Page, name: str, password: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def _session_cookie(page: Page) -> dict[str, object] | None:
    """The lab's session cookie in this browser context, or ``None``."""
    found = [c for c in page.context.cookies() if str(c["name"]).startswith("recsys_session_")]
    assert len(found) <= 1, found
    return dict(found[0]) if found else None


def test_a_shared_link_survives_the_log_in_and_a_reload_keeps_the_session(
    demo_data: DemoData, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Issue 24 (2): with log-ins on, a shared link opened the log-in form under a "Page not
    found" dialog, dropped its path, and landed on Overview with the default model and k;
    a reload asked for the log-in again. Now the form opens at the link's own address, the
    log-in lands on the linked view (shopper, model, k), a reload keeps the session through
    a ``SameSite=Strict`` cookie holding the session token, and after the log-out a reload
    shows the log-in form (the cookie is cleared and the token revoked server-side)."""
    import shutil
    import time

    from recsys_core.security import audit, users
    from recsys_core.security.pseudonyms import pseudonym, pseudonym_key

    home = tmp_path_factory.mktemp("e2e_login") / "home"
    shutil.copytree(demo_data.home, home)  # the other tests' server stays in local mode
    password = "a long enough password 1"
    users.add_user("pm", password, "viewer", home=home)
    shown = pseudonym(demo_data.quiet_shopper, key=pseudonym_key(home))
    log = home.parent / "streamlit.log"
    env = {**os.environ, "RECSYS_HOME": str(home), "RECSYS_APP_DATA": str(demo_data.csv)}
    env.pop("RECSYS_APP_DATASET", None)
    with streamlit_server(env, log, ("--server.fileWatcherType", "none")) as (proc, base):
        wait_healthy(proc, base, log, HEALTH_TIMEOUT_S)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        try:
            page.goto(f"{base}/shopper?shopper={shown}&model=als&k=7")
            page.get_by_label("User name").wait_for(timeout=WAIT_MS)
            _wait_for_run(page)
            expect(page.get_by_text("Page not found")).to_have_count(0)
            assert "/shopper" in page.url
            assert _session_cookie(page) is None
            _log_in(page, "pm", password)
            page.locator("h1").filter(has_text="Shopper").first.wait_for(timeout=WAIT_MS)
            page.get_by_text(f"{shown}:").first.wait_for(timeout=WAIT_MS)
            page.get_by_text("by als").first.wait_for(timeout=WAIT_MS)
            page.get_by_text("Top 7 by").first.wait_for(timeout=WAIT_MS)
            _wait_for_run(page)

            cookie = _session_cookie(page)
            assert cookie is not None, "no session cookie after the log-in"
            assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            assert password not in str(cookie["value"]) and len(str(cookie["value"])) >= 40
            lifetime = float(cookie["expires"]) - time.time()  # type: ignore[arg-type]
            assert 0 < lifetime <= 12 * 3600 + 60  # a session lasts 12 h at most

            page.reload()  # a new browser connection: the cookie resumes the session
            page.locator("h1").filter(has_text="Shopper").first.wait_for(timeout=WAIT_MS)
            page.get_by_text(f"{shown}:").first.wait_for(timeout=WAIT_MS)
            page.get_by_text("Top 7 by").first.wait_for(timeout=WAIT_MS)
            expect(page.get_by_label("User name")).to_have_count(0)
            assert audit.read(action="login", contains="session-cookie", home=home)

            page.get_by_role("button", name="Log out").click()
            page.get_by_label("User name").wait_for(timeout=WAIT_MS)
            _wait_for_run(page)
            assert _session_cookie(page) is None, "the log-out left the cookie"
            page.reload()
            page.get_by_label("User name").wait_for(timeout=WAIT_MS)
            _wait_for_run(page)
            expect(page.locator("h1").filter(has_text="Shopper")).to_have_count(0)

            # a revoked token kept by the browser (a copy from before the log-out) is
            # refused server-side: the log-in form, and the cookie cleared
            context.add_cookies([cookie])  # type: ignore[list-item]
            page.reload()
            page.get_by_label("User name").wait_for(timeout=WAIT_MS)
            _wait_for_run(page)
            page.wait_for_timeout(500)
            assert _session_cookie(page) is None, "a refused cookie was kept"
            assert audit.read(action="login-resume-refused", home=home)
        finally:
            context.close()
