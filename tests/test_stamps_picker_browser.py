"""The sticker picker page in a real headless Chromium: it lists the stamps with their labels,
answers the widget API handshake, and clicking a stamp posts the right m.sticker message."""

from __future__ import annotations

import json
import shutil
from urllib.parse import quote, urlsplit

import pytest
from harness import http_get
from playwright.sync_api import sync_playwright
from test_stamps_pack import SAMPLES, STAMPS, stamps_module, wait_for_pack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A closed network: Chromium must not try to reach anything on its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def homeserver_modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stamps")
    for item in STAMPS:
        shutil.copy(SAMPLES / item["image"], folder / item["image"])
    return stamps_module(folder)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def pack_state(homeserver) -> dict:
    user = homeserver.new_user("viewer")
    alias = quote(f"#stamps:{homeserver.server_name}")
    room_id = json.loads(http_get(homeserver.url("internet") + f"/_matrix/client/v3/directory/room/{alias}",
                                  user.access_token)[2])["room_id"]
    return json.loads(http_get(homeserver.url("internet") + f"/_matrix/client/v3/rooms/{quote(room_id)}"
                               "/state/m.room.image_pack/", user.access_token)[2])


def open_picker(browser, homeserver, lang: str, tmp_path):
    wait_for_pack(homeserver)
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    # Top-level, the page's parent is itself: record what it posts to its parent (Element).
    page.add_init_script("window.__sent = []; window.postMessage = (message, origin) => window.__sent.push(message);")
    page.goto(homeserver.url("internet") + f"/_synapse/client/lgwan/v1/stamps/picker?lang={lang}&widgetId=w1")
    page.wait_for_selector("button[data-stamp='kakunin']")
    page.screenshot(path=str(tmp_path / f"picker-{lang}.png"))
    return page, requests


def test_picker_lists_stamps_and_sends_a_sticker(browser, homeserver, tmp_path):
    page, requests = open_picker(browser, homeserver, "ja", tmp_path)
    assert page.locator("button span").all_inner_texts() == ["了解", "確認しました"]
    assert page.locator("h1").inner_text() == "テスト市スタンプ"
    assert all(page.locator(f"button[data-stamp='{s['id']}'] img").evaluate("i => i.naturalWidth") > 0
               for s in STAMPS)  # images really load

    # Element asks for capabilities; the picker asks for m.sticker only.
    page.evaluate("""window.dispatchEvent(new MessageEvent('message', {data: {api: 'toWidget',
        action: 'capabilities', requestId: 'r1', widgetId: 'w1', data: {}}, origin: location.origin}))""")
    handshake = page.evaluate("window.__sent")[-1]
    assert handshake["requestId"] == "r1" and handshake["response"] == {"capabilities": ["m.sticker"]}

    page.click("button[data-stamp='kakunin']")
    sticker = page.evaluate("window.__sent")[-1]
    expected = pack_state(homeserver)["images"]["kakunin"]
    assert sticker["api"] == "fromWidget" and sticker["action"] == "m.sticker" and sticker["widgetId"] == "w1"
    assert sticker["data"]["content"]["url"] == expected["url"]
    assert sticker["data"]["content"]["body"] == "確認しました"
    assert sticker["data"]["content"]["info"]["mimetype"] == "image/png"

    # No external asset: everything came from the homeserver itself.
    origin = urlsplit(homeserver.url("internet")).netloc
    assert requests and all(urlsplit(url).netloc == origin for url in requests), requests
    page.close()


def test_picker_in_english(browser, homeserver, tmp_path):
    page, _ = open_picker(browser, homeserver, "en-GB", tmp_path)
    assert page.locator("button span").all_inner_texts() == ["Got it", "Checked"]
    page.click("button[data-stamp='ryokai']")
    sticker = page.evaluate("window.__sent")[-1]
    assert sticker["data"]["name"] == "Got it" and sticker["data"]["content"]["body"] == "了解"
    page.close()
