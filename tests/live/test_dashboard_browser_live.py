"""The dashboard in a real headless browser (Playwright driving Debian's Chromium) against a
real ``serverroom serve`` with the bundled model: sign in with the admin key, create a project
and a key (the secret shown once, and it works), run a streamed playground turn, see it in
usage and in the stored responses, revoke the key. The page may load nothing from elsewhere.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import openai
import pytest
from playwright.sync_api import Page, Route, sync_playwright

from tests.live.server import LiveServer

pytestmark = pytest.mark.live

ADMIN_KEY = "sk-admin-" + "B" * 40
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"SERVERROOM_AUTH__ADMIN_KEY": ADMIN_KEY}
    live = LiveServer(
        tmp_path_factory.mktemp("dashboard"), env=env, args=["--engine.slot_context", "2048"]
    )
    with live.running():
        yield live


class Watched:
    """What a page did that it must not: script errors, and requests to other hosts."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.elsewhere: list[str] = []


@pytest.fixture
def watched() -> Watched:
    return Watched()


@pytest.fixture
def page(server: LiveServer, watched: Watched) -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context()
        context.set_default_timeout(60_000)
        tab = context.new_page()

        def only_local(route: Route) -> None:
            if urlparse(route.request.url).hostname != "127.0.0.1":
                watched.elsewhere.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        tab.route("**/*", only_local)
        tab.on("pageerror", lambda exc: watched.problems.append(str(exc)))
        tab.on("dialog", lambda dialog: dialog.accept())  # hx-confirm's "are you sure?"
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def test_sign_in_make_a_key_chat_and_see_the_usage(
    server: LiveServer, page: Page, watched: Watched
) -> None:
    p = page
    root = server.root_url
    p.goto(f"{root}/dashboard")
    assert p.url.endswith("/dashboard/login")
    p.fill("input[name=key]", "sk-admin-not-this-one")
    p.click("button[type=submit]")
    p.get_by_text("That is not a valid admin key.").wait_for()
    p.fill("input[name=key]", ADMIN_KEY)
    p.click("button[type=submit]")
    p.wait_for_url(f"{root}/dashboard/usage")

    # A project and a key, made in the browser.
    p.click("text=Projects & keys")
    p.fill("input[name=name]", "Browser project")
    p.click("text=Create project")
    p.wait_for_url(re.compile(r".*/dashboard/projects/proj_\w+$"))
    project_id = p.url.rsplit("/", 1)[1]
    p.fill("form[hx-post$='/keys'] input[name=name]", "browser")
    p.click("text=Create key")
    secret = p.input_value("#new-key-secret")
    assert secret.startswith("sk-proj-")
    user = openai.OpenAI(api_key=secret, base_url=server.base_url, max_retries=0)
    assert any(m.id == "gpt-4o-mini" for m in user.models.list())
    p.reload()
    assert secret not in p.content()  # it was shown once

    # A streamed playground turn, billed to the new project.
    p.click("text=Playground")
    p.select_option("#pg-project", project_id)
    p.fill("#pg-input", "Say hello to the dashboard.")
    p.click("#pg-send")
    stats = p.locator(".bubble.assistant .turn-stats")
    stats.wait_for()
    reply = p.locator(".bubble.assistant .body").inner_text()
    assert reply.strip(), "the streamed answer is empty"
    line = stats.inner_text()
    assert re.search(r"\d+ in \(\d+ cached\) · \d+ out", line) and "$" in line, line
    response_id = stats.get_attribute("data-response-id")
    assert response_id and response_id.startswith("resp_")

    # The turn in usage (the project's row) and among the stored responses.
    p.goto(f"{root}/dashboard/usage")
    row = p.locator("#usage-table tr", has_text="Browser project")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "1", cells  # one request: the playground turn
    assert int(cells[5].replace(",", "")) > 0  # output tokens
    p.goto(f"{root}/dashboard/responses")
    p.fill("input[name=q]", response_id)
    p.locator("#responses-rows tr", has_text=response_id).wait_for()
    p.click(f"text={response_id}")
    p.get_by_text("Say hello to the dashboard.", exact=True).wait_for()

    # Revoke the key in the browser: it stops working at once.
    p.goto(f"{root}/dashboard/projects/{project_id}")
    p.click("#keys-table tr:has-text('browser') >> text=Revoke")
    p.locator("#keys-table tr", has_text="revoked").wait_for()
    with pytest.raises(openai.AuthenticationError):
        user.models.list()

    assert watched.problems == []
    assert watched.elsewhere == []
