"""The console as a person uses it: a real headless Chromium (Debian's `chromium` and
`chromium-driver`) against the real service (gunicorn) over a small demo province.

Off unless CASETRAIL_TEST_BROWSER=1 (.ci/run turns them on). Chromium is told that no
host but this machine exists: a page that needs another host shows it, broken. Each
test saves screenshots under its tmp dir.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from demo.generator import DemoSize, demo_clock, load_demo
from projections import engine_for
from store.chain_links import CHAIN_TABLE
from tests.web.conftest import Service

ENABLED = os.environ.get("CASETRAIL_TEST_BROWSER") == "1"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not ENABLED,
        reason="browser tests are off: install chromium and chromium-driver and set "
        "CASETRAIL_TEST_BROWSER=1 to run them",
    ),
]
SIZE = DemoSize(disputes=80, resettlement=30, correction=30, bases=13, townships_per_county=2)
PROVINCE = "320000"


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, str]]]:
    """The service over a demo province, with a provincial auditor and supervisor."""
    root = tmp_path_factory.mktemp("province")
    settings = Settings(data_dir=root / "var")
    ct = bootstrap(settings, clock=demo_clock())
    try:
        load_demo(ct, SIZE, seed=7)
        engine_for(ct).catch_up()
        tokens = {
            role: ct.directory.create_user(f"省{role}", role, PROVINCE)[1]
            for role in ("auditor", "supervisor")
        }
    finally:
        ct.close()
    service = Service(settings, root / "gunicorn.log")
    service.start()
    try:
        yield service, tokens
    finally:
        service.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver  # optional: only the browser tests need selenium
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        # No host but this one: anything loaded from elsewhere fails visibly.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(options=options, service=DriverService(driver_path))
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def base(service: Service) -> str:
    return f"http://127.0.0.1:{service.port}"


def sign_in(driver: Any, service: Service, token: str) -> None:
    from selenium.webdriver.common.by import By  # optional: see `browser`

    driver.get(base(service) + "/console/")
    assert "登录" in driver.title
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    titled(driver, "概览")


def titled(driver: Any, text: str) -> None:
    """Wait for the page a click started to load: the implicit wait covers elements, not titles."""
    from selenium.webdriver.support.ui import WebDriverWait  # optional: see `browser`

    WebDriverWait(driver, 10).until(lambda d: text in d.title)


def drawn(element: Any) -> bool:
    size = element.size
    return bool(size["width"] > 0 and size["height"] > 0)


def test_an_auditor_reads_the_overview_drills_down_and_sees_a_tampered_case_fail(
    province: tuple[Service, dict[str, str]], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By  # optional: see `browser`

    service, tokens = province
    sign_in(browser, service, tokens["auditor"])
    units_chart = browser.find_element(By.ID, "chart-units")
    trend_chart = browser.find_element(By.ID, "chart-trend")
    assert drawn(units_chart) and drawn(trend_chart)
    bars = units_chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert bars and any(drawn(bar) for bar in bars)
    assert trend_chart.find_elements(By.CSS_SELECTOR, "polyline")
    browser.save_screenshot(str(tmp_path / "overview.png"))

    # Drill down: province → city → county, by the links beside the chart.
    for _ in range(2):
        link = browser.find_element(By.CSS_SELECTOR, "ul.units a")
        name = link.text
        link.click()
        assert name in browser.find_element(By.TAG_NAME, "h1").text
    browser.save_screenshot(str(tmp_path / "county.png"))

    # An overdue case from the (auditor's) overdue list: its timeline, verified.
    browser.find_element(By.LINK_TEXT, "待办／逾期").click()
    browser.find_element(By.CSS_SELECTOR, "#overdue a").click()
    case_id = browser.current_url.rstrip("/").rsplit("/", 1)[1]
    assert browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
    assert "已核验" in browser.find_element(By.ID, "verify-result").text
    browser.save_screenshot(str(tmp_path / "case.png"))

    # Someone with the database file rewrites who recorded the case's first event.
    with sqlite3.connect(service.data_dir / "casetrail.sqlite") as db:
        changed = db.execute(
            f"UPDATE {CHAIN_TABLE} SET actor = 'someone_else' WHERE case_id = ? AND version = 1",
            (case_id,),
        ).rowcount
    assert changed == 1
    browser.refresh()
    assert "核验失败" in browser.find_element(By.ID, "verify-result").text
    browser.save_screenshot(str(tmp_path / "tampered.png"))
    browser.find_element(By.LINK_TEXT, "审计").click()
    browser.find_element(By.ID, "verify-store").click()
    assert "核验失败" in browser.find_element(By.ID, "verify-result").text
    assert browser.find_elements(By.CSS_SELECTOR, "#access-log tbody tr a")
    browser.save_screenshot(str(tmp_path / "audit.png"))

    browser.find_element(By.ID, "sign-out").click()
    titled(browser, "登录")
    browser.get(base(service) + "/console/audit")
    assert "登录" in browser.title


def test_the_docs_page_shows_swagger_ui_offline(
    province: tuple[Service, dict[str, str]], browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By  # optional: see `browser`

    service, _ = province
    browser.get(base(service) + "/api/v1/docs")
    title = browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title")
    assert "casetrail" in title.text
    assert browser.find_elements(By.CSS_SELECTOR, ".opblock")
    browser.save_screenshot(str(tmp_path / "docs.png"))
