"""The search page in a real browser: Playwright driving Debian's headless chromium, with no
network but the app itself (every other request is refused, so a CDN asset would fail the test)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tessera.rag import prepare
from tessera.rag.conversation import with_rewrite
from tessera.retrieval.fusion import hybrid_search
from tests.serve.conftest import Recording, live_server

REPO = Path(__file__).resolve().parents[2]
DOCS_SCREENSHOT = REPO / "docs" / "search_page.png"  # refreshed with TESSERA_UPDATE_SCREENSHOT=1


def chromium_path() -> str | None:
    """Debian's chromium binary (the /usr/bin wrapper script also works), or None."""
    for candidate in (
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium found (Debian: apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_search_page_in_chromium(browser, make_app, loaded, tmp_path: Path) -> None:
    with live_server(make_app()) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        foreign: list[str] = []
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def only_the_app(route) -> None:
            if route.request.url.startswith(url):
                route.continue_()
            else:
                foreign.append(route.request.url)
                route.abort()

        page.route("**/*", only_the_app)
        page.goto(url + "/")
        page.wait_for_selector("#indexes input[value='head-bm25']")
        assert page.is_checked("#indexes input[value='head-minilm']")

        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("/")  # keyboard: `/` focuses the query box
        page.keyboard.type("boundary layer flow")
        page.keyboard.press("Enter")
        page.wait_for_selector("#results li .hit-title")
        titles = page.locator("#results li .hit-title")
        expected = loaded["head-minilm"].search("boundary layer flow", k=10)
        assert titles.count() == 10
        assert page.input_value("#q") == "boundary layer flow"
        first = page.locator("#results li").first.inner_text()
        assert f"id {expected[0].doc_id}" in first and f"{expected[0].score:.4f}" in first
        assert page.locator("#results mark").count() > 0  # query terms highlighted
        assert "server" in page.inner_text("#meta") and "ms" in page.inner_text("#meta")

        page.check("#indexes input[value='head-bm25']")  # two indexes: fused
        page.click("#search button[type=submit]")
        page.wait_for_function("document.querySelector('#meta').textContent.includes('(RRF)')")
        shot = page.screenshot(path=str(tmp_path / "search_page.png"))  # fused results, highlighted
        assert shot[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("TESSERA_UPDATE_SCREENSHOT") == "1":  # a test run leaves docs/ as it was
            DOCS_SCREENSHOT.write_bytes(shot)

        titles.first.click()  # the document view
        page.wait_for_selector("dialog#doc[open]")
        assert page.inner_text("#doc-text").strip()
        page.keyboard.press("Escape")
        page.wait_for_selector("dialog#doc:not([open])", state="attached")

        page.click("#ask")  # RAG from both indexes, fused: sources (no generator in this server)
        page.wait_for_selector("#sources li")
        assert "no generator" in page.inner_text("#answer")
        fused = hybrid_search([loaded["head-minilm"], loaded["head-bm25"]], ["boundary layer flow"], 10, 100)
        sources = page.locator("#sources li .score").all_inner_texts()
        assert [text.strip() for text in sources] == [hit.doc_id for hit in fused[0]]
        cites = page.locator("#sources li .cite-number").all_inner_texts()  # the numbers answers cite
        assert [text.strip() for text in cites] == [f"[{n}]" for n in range(1, len(fused[0]) + 1)]

        page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not foreign and not errors, (foreign, errors)


@contextmanager
def cranfield_page(browser, index_dir: Path) -> Iterator:
    """The page over one Cranfield index ("cran"), loaded, with a query typed in."""
    from tessera.serve import ServeSettings, create_app

    with live_server(create_app(ServeSettings(indexes={"cran": str(index_dir)}))) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(url + "/")
        page.wait_for_selector("#indexes input[value='cran']")
        page.fill("#q", "propeller slipstream lift")
        yield page


def test_page_filters_by_metadata(browser, cranfield_bm25: Path) -> None:
    """The filter box sends its JSON; hits and the document view show metadata; a bad filter
    shows the service's message naming the key; malformed JSON is caught before sending."""
    from tessera.retrieval.index import Index

    index = Index.load(cranfield_bm25)
    where = '{"bib": {"$gte": "naca", "$lt": "nacb"}}'
    with cranfield_page(browser, cranfield_bm25) as page:
        page.fill("#filter", where)
        page.click("#search button[type=submit]")
        page.wait_for_selector("#results li .meta")
        expected = index.search(
            "propeller slipstream lift", k=10, filter={"bib": {"$gte": "naca", "$lt": "nacb"}}
        )
        shown = page.locator("#results li .score").all_inner_texts()
        assert [text.split("id ")[-1] for text in shown] == [hit.doc_id for hit in expected]
        metas = page.locator("#results li .meta").all_inner_texts()
        assert len(metas) == 10 and all("bib: naca" in text for text in metas)

        page.locator("#results li .hit-title").first.click()
        page.wait_for_selector("dialog#doc[open]")
        assert "bib: naca" in page.inner_text("#doc-meta")
        page.keyboard.press("Escape")

        page.fill("#filter", '{"bib": {"$like": "naca%"}}')
        page.click("#search button[type=submit]")
        page.wait_for_function("document.querySelector('#error').textContent.includes('filter.bib.$like')")
        page.fill("#filter", '{"bib": ')
        page.click("#search button[type=submit]")
        page.wait_for_function("document.querySelector('#error').textContent.includes('not valid JSON')")


def test_page_diverse_box_sends_mmr(browser, cranfield_bm25: Path) -> None:
    """The "diverse" box asks for MMR at weight 0.5: the page lists what search_one(mmr=0.5) picks."""
    from tessera.retrieval.index import Index
    from tessera.retrieval.query_set import search_one

    index = Index.load(cranfield_bm25)
    with cranfield_page(browser, cranfield_bm25) as page:
        page.check("#diverse")
        page.click("#search button[type=submit]")
        page.wait_for_selector("#results li .score")
        shown = page.locator("#results li .score").all_inner_texts()
        expected = search_one([index], "propeller slipstream lift", 10, mmr=0.5)
        assert [text.split("id ")[-1] for text in shown] == [hit.doc_id for hit in expected]
        assert expected[1].doc_id != index.search("propeller slipstream lift", k=2)[1].doc_id


def test_page_shows_similar_documents(browser, cranfield_bm25: Path) -> None:
    """A document's view offers its nearest documents (GET /v1/similar), listed as results."""
    from tessera.retrieval.index import Index
    from tessera.retrieval.similar import similar

    index = Index.load(cranfield_bm25)
    with cranfield_page(browser, cranfield_bm25) as page:
        page.fill("#k", "5")
        page.click("#search button[type=submit]")
        page.wait_for_selector("#results li .hit-title")
        first = page.locator("#results li .score").first.inner_text().split("id ")[-1]
        page.locator("#results li .hit-title").first.click()
        page.wait_for_selector("dialog#doc[open]")
        page.click("#similar")
        page.wait_for_function(f"document.querySelector('#meta').textContent.includes('like {first}')")
        shown = page.locator("#results li .score").all_inner_texts()
        assert [text.split("id ")[-1] for text in shown] == [h.doc_id for h in similar(index, first, 5)]


def test_page_asks_for_the_api_key(browser, make_app, loaded) -> None:
    """A service with keys: the page shows the key form (no index listed); a wrong key is refused
    and the form shown again; the right one lists the indexes, searches and answers, and the
    tab keeps it."""
    from tessera.serve.auth import digest

    key = "page-test-key-0123456789"
    with live_server(make_app(api_key_digests=[digest(key)])) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/")
        page.wait_for_selector("#key-form:not([hidden])")
        assert "needs an API key" in page.inner_text("#status")
        assert page.locator("#indexes input").count() == 0
        page.fill("#key", "a-wrong-key-of-some-length")
        page.press("#key", "Enter")
        page.wait_for_function("document.querySelector('#status').textContent.includes('invalid API key')")
        assert page.is_visible("#key-form")
        page.fill("#key", key)
        page.click("#key-form button")
        page.wait_for_selector("#indexes input[value='head-bm25']")
        assert page.is_hidden("#key-form") and "ready: 2 index(es)" in page.inner_text("#status")
        page.fill("#q", "boundary layer flow")
        page.click("#search button[type=submit]")
        page.wait_for_selector("#results li .hit-title")
        expected = loaded["head-minilm"].search("boundary layer flow", k=10)
        assert f"id {expected[0].doc_id}" in page.locator("#results li").first.inner_text()
        page.click("#ask")  # the streamed RAG request carries the key too
        page.wait_for_selector("#sources li")
        page.reload()  # the tab keeps the key
        page.wait_for_selector("#indexes input[value='head-bm25']")
        assert page.is_hidden("#key-form") and not errors, errors


def test_page_holds_a_conversation_of_follow_ups(browser, make_app, loaded) -> None:
    """An answer opens a conversation: each follow-up goes to the chat API with every earlier
    turn, is searched as the chosen mode says (what was searched is shown), and lists the turns
    before it; "Answer" starts a new conversation. A scripted generator stands in for the LLM."""
    app = make_app(("head-minilm",))
    with live_server(app) as url:
        generator = Recording()
        app.state.rag.generator = generator
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sent: list[dict] = []
        page.on("request", lambda r: sent.append(json.loads(r.post_data)) if "/v1/chat/" in r.url else None)
        page.goto(url + "/")
        page.wait_for_selector("#indexes input[value='head-minilm']")
        assert "answers by scripted" in page.inner_text("#status")
        first = "what is a propeller slipstream"
        answer = "The slipstream raises lift [1]."
        page.fill("#q", first)
        page.click("#ask")
        page.wait_for_selector("#follow-up:not([hidden])")
        assert page.inner_text("#question") == first and page.inner_text("#answer") == answer
        cited = page.locator("#sources li .hit-title").first.inner_text()
        page.click("#answer a.cite")  # "[1]": the first source's document
        page.wait_for_selector("dialog#doc[open]")
        assert page.inner_text("#doc-title") == cited
        page.keyboard.press("Escape")

        def follow_up(question: str, mode: str, turns: int) -> None:
            page.fill("#fq", question)
            page.select_option("#follow-mode", mode)
            page.press("#fq", "Enter")
            page.wait_for_function(
                f"document.querySelectorAll('#turns li').length === {turns}"
                " && !document.querySelector('#follow-up').hidden"
            )

        second = "what does it do to the wing"
        follow_up(second, "rewrite", 1)
        assert sent[-1]["messages"] == [
            {"role": "user", "content": first},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": second},
        ]
        assert sent[-1]["follow_up"] == "rewrite" and sent[-1]["model"] == "head-minilm"
        searched = with_rewrite(second, "propeller slipstream effect on wing lift")
        assert page.text_content("#searched") == f"searched: {searched}" and page.is_visible("#searched")
        expected = prepare(loaded["head-minilm"], second, k=10, search_query=searched)
        shown = [text.strip() for text in page.locator("#sources li .score").all_inner_texts()]
        assert shown == [source["doc_id"] for source in expected.sources]
        assert page.locator("#turns li p").all_inner_texts() == [first, answer]
        assert page.inner_text("#question") == second and page.inner_text("#answer") == answer
        assert {"role": "assistant", "content": answer} in generator.seen[-1]  # the history was prompted

        third = "and at high speed"
        follow_up(third, "last", 2)  # its own words: nothing else searched, nothing shown
        assert [m["content"] for m in sent[-1]["messages"]] == [first, answer, second, answer, third]
        assert page.is_hidden("#searched") and page.input_value("#fq") == ""

        page.fill("#q", "boundary layer flow")  # "Answer": a new conversation
        page.click("#ask")
        page.wait_for_function("document.querySelector('#question').textContent === 'boundary layer flow'")
        page.wait_for_selector("#follow-up:not([hidden])")
        assert page.locator("#turns li").count() == 0 and not errors, errors


def test_page_address_keeps_the_search_and_fused_hits_keep_their_index(browser, tmp_path: Path) -> None:
    """A reload or a shared link searches the same indexes, k, filter; a fused hit found only by
    the second index shows its text and opens from there; a failed search leaves no old results."""
    import urllib.request

    from tessera.indexing.builder import build_index
    from tessera.serve import ServeSettings, create_app

    roots = {}
    for name, docs in {
        "birds": {"b1": "gannets dive for fish", "b2": "puffins nest on cliffs"},
        "more": {"m1": "a quetzal sings in the cloud forest", "b1": "gannets dive for fish"},
    }.items():
        corpus = tmp_path / f"{name}.jsonl"
        corpus.write_text(
            "".join(json.dumps({"_id": i, "title": t.title(), "text": t}) + "\n" for i, t in docs.items())
        )
        roots[name] = str(build_index(corpus, tmp_path / name, encoder="bm25", show_progress=False))
    with live_server(create_app(ServeSettings(indexes=roots))) as url:
        head = urllib.request.urlopen(urllib.request.Request(url + "/", method="HEAD"))  # uptime probes
        assert head.status == 200
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#indexes input[value='more']")
        page.check("#indexes input[value='more']")
        page.fill("#q", "quetzal forest")
        page.fill("#k", "5")
        page.click("#search button[type=submit]")
        page.wait_for_selector("#results li .snippet mark")
        assert page.inner_text("#results li .hit-title") == "A Quetzal Sings In The Cloud Forest"
        page.click("#results li .hit-title")
        page.wait_for_selector("dialog#doc[open]")
        assert page.inner_text("#doc-id") == "more · m1"
        page.keyboard.press("Escape")
        address = page.url
        assert "index=birds&index=more" in address and "k=5" in address

        again = browser.new_page()
        again.goto(address)  # a shared link: the same indexes and k, searched at once
        again.wait_for_selector("#results li .hit-title")
        assert again.is_checked("#indexes input[value='more']") and again.input_value("#k") == "5"
        assert again.inner_text("#results li .hit-title") == "A Quetzal Sings In The Cloud Forest"
        again.fill("#filter", '{"year": {"$between": 1}}')
        again.click("#search button[type=submit]")
        again.wait_for_function(
            "document.querySelector('#error').textContent.includes('filter.year.$between')"
        )
        assert again.locator("#results li").count() == 0 and again.inner_text("#meta") == ""
