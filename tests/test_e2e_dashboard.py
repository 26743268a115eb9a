"""The dashboard addon in a real headless browser (Debian's chromium driven by Playwright)
against a real cluster: login with the token, live updates without a reload, logs followed
live, and the scale button changing the Deployment."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Mikro, wait_for

pytestmark = pytest.mark.docker
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TICKER = """
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  containers:
  - {name: main, image: "hello-ip:1", command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 1; done"]}
"""


@pytest.fixture(scope="module")
def page(mikro: Mikro, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    enabled = mikro.run("enable", "dashboard").stdout.strip().splitlines()[-1]
    assert enabled.startswith("Addon dashboard is enabled at http://127.0.0.1:")
    mikro.run("apply", "-f", str(ROOT / "examples" / "stack-offline.yml"), "--wait", timeout=180)
    url = mikro.run("dashboard", "--url").stdout.strip()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.on("dialog", lambda dialog: dialog.accept())
        tab.goto(url)
        tab.screenshots = tmp_path_factory.mktemp("screens")  # type: ignore[attr-defined]
        yield tab
        browser.close()


def ready_cell(page: Any, name: str) -> str:
    return page.inner_text(f"#workloads tr[data-name='{name}'] td[data-ready]")


def test_page_needs_the_token(mikro: Mikro, page: Any) -> None:
    base = mikro.run("dashboard", "--url").stdout.strip().split("#", 1)[0]
    stranger = page.context.browser.new_context()  # no session: no token
    tab = stranger.new_page()
    tab.goto(base)
    tab.wait_for_selector("#login:not([hidden])")
    tab.fill("#token", "not-the-token")
    tab.click("#login button")
    tab.wait_for_selector("#login-error:has-text('Not accepted')")
    assert tab.is_hidden("#main")
    stranger.close()


def test_lists_the_seed_stack_and_follows_a_scale_live(mikro: Mikro, page: Any) -> None:
    page.wait_for_selector("#workloads tr[data-name='mon-app-deployment'] td[data-ready]")
    assert wait_for(lambda: ready_cell(page, "mon-app-deployment") == "2/2", 30, what="2/2 in the page")
    assert page.inner_text("#services").count("mon-app-service") == 1
    page.screenshot(path=str(Path(page.screenshots) / "seed-stack.png"), full_page=True)
    mikro.kubectl("scale", "deployment/mon-app-deployment", "--replicas=3")
    # no reload: the watch brings the third pod and the new count
    wait_for(lambda: ready_cell(page, "mon-app-deployment") == "3/3", 60, what="3/3 without a reload")
    assert page.locator("#pods tr[data-name^='mon-app-deployment-']").count() == 3
    page.screenshot(path=str(Path(page.screenshots) / "scaled-to-3.png"), full_page=True)


def test_follows_a_pods_logs(mikro: Mikro, page: Any) -> None:
    mikro.run("apply", "-f", "-", "--wait", input=TICKER, timeout=120)
    page.wait_for_selector("#pods tr[data-name='ticker']")
    page.click("#pods tr[data-name='ticker'] button[data-action='logs']")
    page.wait_for_selector("#logs:has-text('tick-')")

    def last_tick() -> int:
        ticks = [line for line in page.inner_text("#logs").splitlines() if line.startswith("tick-")]
        return int(ticks[-1].removeprefix("tick-")) if ticks else 0

    first = last_tick()
    wait_for(lambda: last_tick() >= first + 2, 30, what="new log lines arriving live")
    page.screenshot(path=str(Path(page.screenshots) / "logs.png"), full_page=True)
    mikro.kubectl("delete", "pod", "ticker", "--now")


def test_scale_button_changes_the_deployment(mikro: Mikro, page: Any) -> None:
    row = "#workloads tr[data-name='mon-app-deployment']"
    page.fill(f"{row} input[type=number]", "1")
    page.click(f"{row} button[data-action='scale']")
    wait_for(lambda: mikro.json("deployment", "mon-app-deployment")["spec"]["replicas"] == 1, 30, what="replicas 1")
    wait_for(lambda: ready_cell(page, "mon-app-deployment") == "1/1", 60, what="1/1 in the page")


def test_delete_button_deletes_the_pod(mikro: Mikro, page: Any) -> None:
    # Not one of the pods the scale to 1 is still ending: its row may leave the page under the
    # pointer.
    alive = [p for p in mikro.pods("projet=mon-app") if not p["metadata"].get("deletionTimestamp")]
    victim = alive[0]["metadata"]["name"]
    button = f"#pods tr[data-name='{victim}'] button[data-action='delete']"
    page.wait_for_selector(button)
    page.click(button)
    wait_for(lambda: victim not in [p["metadata"]["name"] for p in mikro.pods()], 60, what="the pod deleted")
