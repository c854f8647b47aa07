"""The web page, clicked through in headless Chromium against a real `cinerec serve`.

A real server process (two small saved models, a SQLite feedback store) on a free
127.0.0.1 port; Debian's chromium + chromedriver driven by selenium. Without them the
tests skip, unless CINEREC_REQUIRE_BROWSER=1 (CI): then they fail. The click-through
writes a screenshot to $CINEREC_SCREENSHOT_DIR (or the test's tmp folder) and prints
its path.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cinerec import artifacts
from cinerec.data.dataset import Dataset
from cinerec.models.registry import create_model
from tests.browser import chrome, need_browser, screenshot, severe
from tests.serving.artifacts import titled_dataset

KEY = "web-test-key"
TOYS = {0: "Toy Story", 3: "Toy Soldiers", 5: "Toy Story 2"}  # item index -> title
WAIT_S = 20
START_S = 60


def _need_browser() -> None:
    need_browser("httpx", "fastapi", "uvicorn")


# ---- a real server ------------------------------------------------------------------------
def _toy_dataset() -> Dataset:
    """The serving tests' titled data set, with a few "Toy ..." titles to search for."""
    ds = titled_dataset()
    titles = ds.items_meta.get_column("title").to_list()
    for i, t in TOYS.items():
        titles[i] = t
    return dataclasses.replace(ds, items_meta=ds.items_meta.with_columns(pl.Series("title", titles)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Server:
    url: str
    data: Dataset
    log: Path

    def api(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        import httpx

        r = httpx.request(method, self.url + path, timeout=10, **kw)
        assert r.status_code < 300, r.text
        return r.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    _need_browser()
    import httpx

    tmp = tmp_path_factory.mktemp("web")
    ds = _toy_dataset()
    paths = {}
    for name, params in (("svd", {"epochs": 10}), ("ease", {})):
        paths[name] = artifacts.save_model(create_model(name, **params).fit(ds), tmp / name)
    port = _free_port()
    log = tmp / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINEREC_")}
    cmd = [sys.executable, "-m", "cinerec", "serve", *(f"{n}={p}" for n, p in paths.items()),
           "--port", str(port), "--api-key", KEY, "--db", str(tmp / "feedback.db")]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`cinerec serve` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`cinerec serve` not ready after {START_S} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Server(url, ds, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# ---- a real browser ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(server, tmp_path_factory) -> Iterator[Any]:
    with chrome(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def _fresh_page(driver: Any, server: Server) -> None:
    """The page with an empty browser history, and the console log drained."""
    driver.get(server.url + "/")
    driver.execute_script("localStorage.clear()")
    driver.get(server.url + "/")
    _wait_count(driver, 0)
    driver.get_log("browser")


# ---- reading the page -----------------------------------------------------------------------
def _t(testid: str) -> str:
    return f'[data-testid="{testid}"]'


def _wait(driver: Any, what: str, cond: Any) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(lambda d: cond(d))
    except TimeoutException:
        state = driver.execute_script(
            "return {recs: document.querySelector('[data-testid=recs]').outerHTML.slice(0, 1500),"
            " error: document.getElementById('error').innerText}")
        raise AssertionError(f"timed out waiting for {what}; page: {json.dumps(state)[:2500]}") from None


def _count(driver: Any) -> int:
    return int(driver.find_element("css selector", _t("recs")).get_attribute("data-request-count"))


def _wait_count(driver: Any, after: int) -> int:
    """Wait for a recommendation answer newer than ``after`` to be rendered."""
    def done(d: Any) -> int | None:
        n = _count(d)
        busy = d.find_element("css selector", _t("recs")).get_attribute("aria-busy")
        return n if n > after and busy is None else None

    return _wait(driver, f"a recommendation answer after #{after}", done)


def _cards(driver: Any) -> list[dict[str, Any]]:
    """The shown recommendation cards as the page renders them (innerText: visible text)."""
    return driver.execute_script("""
        return [...document.querySelectorAll('[data-testid=rec]')].map(li => ({
            id: Number(li.dataset.movieId),
            title: li.querySelector('[data-testid=title]').innerText,
            why: li.querySelector('[data-testid=explanation]').innerText,
            text: li.innerText,
        }));""")


# ---- the tests ----------------------------------------------------------------------------------
def test_click_through(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    d = browser
    _fresh_page(d, server)
    n = _count(d)
    # No history yet: the explained fallback list, and the models listed from /v1/models.
    assert d.find_element(By.CSS_SELECTOR, _t("recs")).get_attribute("data-basis") == "fallback"
    fallback = d.find_element(By.CSS_SELECTOR, _t("fallback"))
    assert fallback.is_displayed() and "no user and no history given" in fallback.text
    model = Select(d.find_element(By.CSS_SELECTOR, _t("model-select")))
    assert [o.get_attribute("value") for o in model.options] == ["svd", "ease"]
    assert model.first_selected_option.get_attribute("value") == "svd"

    # Search "Toy": the three titles, through the debounced search box.
    d.find_element(By.CSS_SELECTOR, _t("search-input")).send_keys("Toy")
    _wait(d, "three search results", lambda d: len(d.find_elements(By.CSS_SELECTOR, _t("search-result"))) == 3)
    results = d.find_elements(By.CSS_SELECTOR, _t("search-result"))
    found = [r.find_element(By.CSS_SELECTOR, _t("title")).text for r in results]
    assert all(t.startswith("Toy ") for t in found) and len(set(found)) == 3

    # Rate two of them (5 and 3.5 stars); each rating re-queries the list.
    rated = {}
    for row, stars in ((results[0], "5"), (results[2], "3.5")):
        Select(row.find_element(By.CSS_SELECTOR, _t("rate-select"))).select_by_value(stars)
        row.find_element(By.CSS_SELECTOR, _t("rate-button")).click()
        rated[int(row.get_attribute("data-movie-id"))] = float(stars)
        n = _wait_count(d, n)
    mine = d.find_elements(By.CSS_SELECTOR, _t("my-rating"))
    assert {int(m.get_attribute("data-movie-id")) for m in mine} == set(rated)
    stored = json.loads(d.execute_script("return localStorage.getItem('cinerec.ratings.v1')"))
    assert {r["movieId"]: r["rating"] for r in stored} == rated

    # Ten personal picks, none of the rated ones, each with its explanation shown.
    history = [{"movieId": m, "rating": r} for m, r in rated.items()]
    cards = _cards(d)
    assert d.find_element(By.CSS_SELECTOR, _t("recs")).get_attribute("data-basis") == "fold-in"
    assert len(cards) == 10 and not fallback.is_displayed()
    assert not {c["id"] for c in cards} & set(rated)
    assert not {c["title"] for c in cards} & set(found[:1] + found[2:])
    assert all(c["why"].strip() and c["why"] != "no explanation given" for c in cards)
    assert all("confidence" in c["text"].lower() and "σ" in c["text"] for c in cards)
    calm = server.api("POST", "/v1/recommendations", json={"history": history, "k": 10})
    assert [c["id"] for c in cards] == [it["movieId"] for it in calm["items"]]
    assert [c["why"] for c in cards] == [it["explanation"]["text"] for it in calm["items"]]

    # The history lives in the browser: a reload shows the same ratings and list.
    d.refresh()
    n = _wait_count(d, 0)
    assert {int(m.get_attribute("data-movie-id")) for m in d.find_elements(By.CSS_SELECTOR, _t("my-rating"))} == set(rated)
    assert [c["id"] for c in _cards(d)] == [c["id"] for c in cards]

    # Risk aversion to the maximum (End key on the slider): the list is asked again with 2.0.
    d.find_element(By.CSS_SELECTOR, _t("risk-slider")).send_keys(Keys.END)
    _wait(d, "risk 2.0 shown", lambda d: d.find_element(By.CSS_SELECTOR, _t("risk-value")).text == "2.0")
    n = _wait_count(d, n)
    averse = server.api("POST", "/v1/recommendations",
                        json={"history": history, "k": 10, "risk_aversion": 2.0})
    assert [it["movieId"] for it in averse["items"]] != [it["movieId"] for it in calm["items"]]  # data check
    assert [c["id"] for c in _cards(d)] == [it["movieId"] for it in averse["items"]]
    assert "risk aversion 2.0" in d.find_element(By.CSS_SELECTOR, _t("recs-meta")).text

    # The other model, from the selector (found again: the reload replaced the page).
    model = Select(d.find_element(By.CSS_SELECTOR, _t("model-select")))
    model.select_by_value("ease")
    n = _wait_count(d, n)
    assert d.find_element(By.CSS_SELECTOR, _t("recs")).get_attribute("data-model") == "ease"
    by_ease = server.api("POST", "/v1/recommendations",
                         json={"history": history, "k": 10, "risk_aversion": 2.0, "model": "ease"})
    assert [c["id"] for c in _cards(d)] == [it["movieId"] for it in by_ease["items"]]
    model.select_by_value("svd")
    n = _wait_count(d, n)

    # A known user id: that user's list (GET ?user=), none of the movies they rated.
    user_field = d.find_element(By.CSS_SELECTOR, _t("user-id"))
    user_field.send_keys("5")
    d.find_element(By.CSS_SELECTOR, _t("user-apply")).click()
    n = _wait_count(d, n)
    assert d.find_element(By.CSS_SELECTOR, _t("recs")).get_attribute("data-basis") == "model"
    assert "user 5" in d.find_element(By.CSS_SELECTOR, _t("who-now")).text
    known = server.api("GET", "/v1/recommendations", params={"user": 5, "k": 10, "risk_aversion": 2.0})
    cards = _cards(d)
    assert [c["id"] for c in cards] == [it["movieId"] for it in known["items"]] and len(cards) == 10
    ds = server.data
    seen = set(ds.item_ids.raw(ds.items[ds.users == ds.user_ids.lookup([5])[0]]).tolist())
    assert seen and not {c["id"] for c in cards} & seen

    # Search results on screen too, for the screenshot: the rated ones are marked.
    d.find_element(By.CSS_SELECTOR, _t("search-input")).send_keys("Toy")
    _wait(d, "three search results", lambda d: len(d.find_elements(By.CSS_SELECTOR, _t("search-result"))) == 3)
    marked = d.find_elements(By.CSS_SELECTOR, f"{_t('search-result')}.rated")
    assert {int(m.get_attribute("data-movie-id")) for m in marked} == set(rated)
    screenshot(d, tmp_path, "cinerec-web.png")

    # Back to the visitor's own ratings.
    d.find_element(By.CSS_SELECTOR, _t("user-clear")).click()
    _wait_count(d, n)
    assert d.find_element(By.CSS_SELECTOR, _t("recs")).get_attribute("data-basis") == "fold-in"
    assert not severe(d), "the browser console has errors"


def test_api_errors_are_shown_and_saving_works(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    d = browser
    _fresh_page(d, server)
    n = _count(d)
    d.find_element(By.CSS_SELECTOR, _t("search-input")).send_keys("Toy Story 2")
    _wait(d, "one search result", lambda d: len(d.find_elements(By.CSS_SELECTOR, _t("search-result"))) == 1)
    row = d.find_element(By.CSS_SELECTOR, _t("search-result"))
    movie = int(row.get_attribute("data-movie-id"))
    row.find_element(By.CSS_SELECTOR, _t("rate-button")).click()
    n = _wait_count(d, n)

    # A wrong key: the server's refusal message is on the page.
    d.find_element(By.TAG_NAME, "summary").click()
    d.find_element(By.CSS_SELECTOR, _t("save-user")).send_keys("70001")
    d.find_element(By.CSS_SELECTOR, _t("api-key")).send_keys("not-the-key")
    d.find_element(By.CSS_SELECTOR, _t("save-button")).click()
    box = d.find_element(By.CSS_SELECTOR, _t("error"))
    _wait(d, "the 401 message", lambda d: box.is_displayed())
    assert "a valid API key is required" in box.text and "401" in box.text

    # The right key: stored, and the new user's list is folded from what was saved.
    key = d.find_element(By.CSS_SELECTOR, _t("api-key"))
    key.clear()
    key.send_keys(KEY)
    d.find_element(By.CSS_SELECTOR, _t("save-button")).click()
    status = d.find_element(By.CSS_SELECTOR, _t("save-status"))
    _wait(d, "saved", lambda d: status.text.startswith("saved"))
    assert "1 new" in status.text and not box.is_displayed()
    d.find_element(By.CSS_SELECTOR, _t("user-id")).send_keys("70001")
    d.find_element(By.CSS_SELECTOR, _t("user-apply")).click()
    n = _wait_count(d, n)
    assert d.find_element(By.CSS_SELECTOR, _t("recs")).get_attribute("data-basis") == "fold-in"
    assert "user 70001, from their saved ratings" in d.find_element(By.CSS_SELECTOR, _t("recs-meta")).text
    assert movie not in {c["id"] for c in _cards(d)}

    # A request the service refuses (a user id beyond int64): message shown, no blank page.
    field = d.find_element(By.CSS_SELECTOR, _t("user-id"))
    field.clear()
    field.send_keys("99999999999999999999999")
    d.find_element(By.CSS_SELECTOR, _t("user-apply")).click()
    _wait_count(d, n)
    assert box.is_displayed() and "user" in box.text and "HTTP 400" in box.text
    assert d.find_element(By.CSS_SELECTOR, _t("recs-error")).is_displayed()
    screenshot(d, tmp_path, "cinerec-web-error.png")
    # The console holds only the two refused requests, no script error.
    errors = severe(d)
    assert errors and all("status of 40" in e["message"] for e in errors), errors
