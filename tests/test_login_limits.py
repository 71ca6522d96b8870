"""Logins of a whole office behind one proxy address, through the suite's real nginx, with the
login and registration limits of config/homeserver.template.yaml (not the harness's relaxed ones).

Hundreds of LGWAN PCs reach the server from one proxy address: that address's budget must let
the whole office in at 8:30, while guessing one account's password stays throttled. nginx
overwrites X-Forwarded-For with the address it sees, so Synapse counts real client addresses
and a client cannot choose its own.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from harness import RunningHomeserver

from lgwan_chat.templates import config_dir

#: Limits this module leaves as the template ships them.
SHIPPED = ("rc_login", "rc_registration")
OFFICE = 50
FORGED = "10.9.9.9"


@pytest.fixture(scope="module")
def homeserver(hs_backend, tmp_path_factory):
    """Synapse behind the suite's nginx (x_forwarded, as deployed) with the shipped limits.
    Self-registration is on here only to check its limit (the suite ships it off)."""
    hs = RunningHomeserver(tmp_path_factory.mktemp(f"hs-{hs_backend}"), hs_backend, shipped_rate_limits=SHIPPED,
                           spec={"x_forwarded": True},
                           extra={"enable_registration": True, "enable_registration_without_verification": True})
    hs.start()
    try:
        yield hs
    finally:
        hs.close()


def call(base_url: str, method: str, path: str, body: dict | None = None, token: str | None = None,
         source: str = "127.0.0.1", headers: dict | None = None) -> tuple[int, dict]:
    """One request from the client address ``source`` (any 127.x address is this machine)."""
    url = urllib.parse.urlsplit(base_url)
    assert url.hostname, base_url
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=300, source_address=(source, 0))
    try:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, sent)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def password_login(base_url: str, localpart: str, password: str, source: str = "127.0.0.1",
                   headers: dict | None = None) -> tuple[int, dict]:
    return call(base_url, "POST", "/_matrix/client/v3/login",
                {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
                 "password": password, "initial_device_display_name": "庁内PC"}, source=source, headers=headers)


def outcome(result: tuple[int, dict]) -> tuple[int, str | None]:
    status, body = result
    return status, body.get("errcode")


def test_a_whole_office_logs_in_through_one_address(homeserver, nginx_front):
    """Monday 8:30: 50 staff behind one proxy address log in within a minute; every one gets in."""
    staff = [homeserver.new_user("office") for _ in range(OFFICE)]  # by the admin API: no login spent
    entrance = nginx_front.url("lgwan")
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda u: password_login(entrance, u.localpart, u.password), staff))
    refused = [(u.localpart, outcome(r)) for u, r in zip(staff, results, strict=True) if r[0] != 200]
    assert refused == []
    assert all(body["user_id"] == user.user_id and body["access_token"]
               for user, (_, body) in zip(staff, results, strict=True))


@pytest.mark.parametrize("attacker", ["one address", "a new address each try"])
def test_wrong_passwords_for_one_account_are_throttled(homeserver, nginx_front, attacker):
    """Guessing one account's password: 5 tries, then 429, whatever addresses the guesses come
    from; the right password waits too. A colleague behind the same proxy is not locked out."""
    victim, colleague = homeserver.new_user("victim"), homeserver.new_user("colleague")
    entrance = nginx_front.url("internet")
    results = []
    for attempt in range(10):
        source = "127.0.0.1" if attacker == "one address" else f"127.0.1.{attempt + 1}"
        results.append(outcome(password_login(entrance, victim.localpart, secrets.token_urlsafe(8), source)))
    assert results == [(403, "M_FORBIDDEN")] * 5 + [(429, "M_LIMIT_EXCEEDED")] * 5
    assert outcome(password_login(entrance, victim.localpart, victim.password)) == (429, "M_LIMIT_EXCEEDED")
    assert password_login(entrance, colleague.localpart, colleague.password)[0] == 200


def whois_addresses(synapse_url: str, admin_token: str, user_id: str) -> set[str]:
    """The client addresses Synapse recorded for the user's sessions (what an admin looks up)."""
    status, body = call(synapse_url, "GET",
                        f"/_synapse/admin/v1/whois/{urllib.parse.quote(user_id)}", token=admin_token)
    assert status == 200, body
    return {c["ip"] for device in body["devices"].values() for s in device["sessions"] for c in s["connections"]}


@pytest.mark.parametrize("zone", ["internet", "lgwan"])
def test_synapse_sees_the_real_client_address_not_a_forged_one(homeserver, nginx_front, zone):
    """Through nginx, Synapse records the address of the PC itself (so limits count per address),
    and an X-Forwarded-For the client sends is overwritten, never believed."""
    admin, user = homeserver.new_user("admin", admin=True), homeserver.new_user("pc")
    entrance, pc = nginx_front.url(zone), "127.0.0.2"
    forged = {"X-Forwarded-For": FORGED}
    status, session = password_login(entrance, user.localpart, user.password, source=pc, headers=forged)
    assert status == 200, session
    assert call(entrance, "GET", "/_matrix/client/v3/account/whoami", token=session["access_token"],
                source=pc, headers=forged)[0] == 200
    for _ in range(100):  # Synapse writes client addresses in batches
        seen = whois_addresses(homeserver.url("lgwan"), admin.access_token, user.user_id)
        if seen:
            break
        time.sleep(0.2)
    assert seen == {pc}


def test_self_registration_from_one_address_is_not_cut_at_three(homeserver, nginx_front):
    """Should an admin turn self-registration on, a class of 30 behind one proxy can sign up."""
    entrance = nginx_front.url("internet")

    def register(n: int) -> tuple[int, str | None]:
        return outcome(call(entrance, "POST", "/_matrix/client/v3/register",
                            {"username": f"trainee{n}-{secrets.token_hex(3)}", "password": secrets.token_urlsafe(12),
                             "auth": {"type": "m.login.dummy"}}))

    assert [register(n) for n in range(30)] == [(200, None)] * 30


@pytest.mark.parametrize("guide", ["admin-guide.ja.md", "admin-guide.en.md"])
def test_the_admin_guide_shows_the_shipped_limits(guide):
    """The guide's 2.5 snippet is what the template ships (and what the tests above ran)."""
    text = (config_dir().parent / "docs" / guide).read_text(encoding="utf-8")
    section = text[text.index("### 2.5 "):text.index("### 2.6 ")]
    (snippet,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    shipped = yaml.safe_load((config_dir() / "homeserver.template.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(snippet) == {key: shipped[key] for key in SHIPPED}
