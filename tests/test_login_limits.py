"""Logins of a whole office behind one proxy address, through the suite's real nginx, with the
login and registration limits of config/homeserver.template.yaml (not the harness's relaxed ones)
and the zone module's failed-login limit as config/modules.yaml ships it.

Hundreds of LGWAN PCs reach the server from one proxy address: that address's budget must let
the whole office in at 8:30 (typos included), while guessing one account's password stays
throttled, and so does trying one password on many accounts from one address (spraying). nginx
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

from lgwan_chat.core.i18n import t
from lgwan_chat.homeserver import ZONES_MODULE, suite_modules
from lgwan_chat.templates import config_dir
from synapse_modules.zones.config import FailedLoginLimit, parse
from synapse_modules.zones.login_failures import AddressBuckets

#: Limits this module leaves as the template ships them.
SHIPPED = ("rc_login", "rc_registration")
OFFICE = 200
#: every this many staff mistype their password once before typing it right
TYPO_EVERY = 10
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


def shipped_failed_login_limit() -> FailedLoginLimit:
    """The zone module's failed_logins_per_address as config/modules.yaml ships it."""
    (zones,) = [m["config"] for m in suite_modules() if m["module"] == ZONES_MODULE]
    return parse(zones).failed_logins_per_address


def test_a_whole_office_logs_in_through_one_address(homeserver, nginx_front):
    """Monday 8:30: 200 staff behind one proxy address log in within a minute, one in ten after
    mistyping their password once; every one gets in (right passwords are never counted, and the
    typos stay within the address's failed-login budget)."""
    staff = [homeserver.new_user("office") for _ in range(OFFICE)]  # by the admin API: no login spent
    entrance = nginx_front.url("lgwan")

    def arrive(n: int) -> tuple[tuple[int, str | None] | None, tuple[int, dict]]:
        user = staff[n]
        typo = outcome(password_login(entrance, user.localpart, user.password + "x")) if n % TYPO_EVERY == 0 \
            else None
        return typo, password_login(entrance, user.localpart, user.password)

    with ThreadPoolExecutor(max_workers=10) as pool:
        arrivals = list(pool.map(arrive, range(OFFICE)))
    typos = [typo for typo, _ in arrivals if typo is not None]
    assert typos == [(403, "M_FORBIDDEN")] * (OFFICE // TYPO_EVERY)
    results = [result for _, result in arrivals]
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


def test_one_password_tried_on_many_accounts_from_one_address_is_paused(homeserver, nginx_front):
    """Password spraying: one guess for each of many accounts (so no account's own limit is met)
    from one address. After the shipped budget of failed logins the address gets 429 with a reason
    in Japanese and English, a right password from it waits too, and a colleague elsewhere logs in."""
    limit = shipped_failed_login_limit()
    entrance, sprayer = nginx_front.url("internet"), "127.0.3.1"
    real = [homeserver.new_user("sprayed") for _ in range(3)]
    # mostly names guessed from a staff list (no such account: as wrong as a wrong password)
    names = [u.localpart for u in real] + [f"staff-{secrets.token_hex(3)}" for _ in range(limit.burst_count + 7)]
    started = time.monotonic()
    answers = [password_login(entrance, name, "Spring2026!", source=sprayer) for name in names]
    drained = (time.monotonic() - started) * limit.per_second  # failures forgiven while the spray ran
    statuses = [outcome(answer) for answer in answers]
    assert statuses[:limit.burst_count] == [(403, "M_FORBIDDEN")] * limit.burst_count
    assert statuses[-5:] == [(429, "M_LIMIT_EXCEEDED")] * 5
    assert statuses.count((403, "M_FORBIDDEN")) <= limit.burst_count + int(drained) + 1
    paused = answers[-1][1]
    assert paused["jp.lgwan.reason"] == "failed_logins_from_address" and 0 < paused["retry_after_ms"] <= 60_000
    seconds = paused["retry_after_ms"] // 1000
    assert paused["jp.lgwan.message"] == {lang: t("zones.failed_logins_from_address", lang, seconds=seconds)
                                          for lang in ("ja", "en")}
    assert paused["error"].startswith(paused["jp.lgwan.message"]["ja"])
    victim = real[0]
    assert outcome(password_login(entrance, victim.localpart, victim.password, source=sprayer)) == \
        (429, "M_LIMIT_EXCEEDED")
    assert password_login(entrance, victim.localpart, victim.password, source="127.0.3.2")[0] == 200


def test_failed_logins_drain_away_and_successes_cost_nothing():
    """The failed-login budget of one address, on a clock the test moves."""
    now = [0.0]
    buckets = AddressBuckets(FailedLoginLimit(per_second=0.5, burst_count=3), clock=lambda: now[0])
    for _ in range(3):
        assert buckets.take("10.0.0.1") is None  # three failures
    assert buckets.take("10.0.0.1") == pytest.approx(2.0)  # the fourth waits for one to drain (1 / 0.5 s)
    assert buckets.take("10.0.0.2") is None  # another address has its own budget
    now[0] += 2.0
    assert buckets.take("10.0.0.1") is None  # one drained: one more try
    for _ in range(100):  # right passwords: taken, then given back
        assert buckets.take("10.0.0.3") is None
        buckets.give_back("10.0.0.3")
    assert buckets.take("10.0.0.3") is None


def test_addresses_whose_failures_drained_are_forgotten(monkeypatch):
    """Memory stays bounded: once more addresses than PRUNE_AT are remembered, those with nothing
    left to drain are dropped (their budget is full again either way)."""
    from synapse_modules.zones import login_failures

    monkeypatch.setattr(login_failures, "PRUNE_AT", 10)
    now = [0.0]
    buckets = AddressBuckets(FailedLoginLimit(per_second=1, burst_count=5), clock=lambda: now[0])
    for n in range(10):
        buckets.take(f"10.0.1.{n}")
    now[0] += 5.0
    buckets.take("10.0.2.1")  # the eleventh address: the drained ten go
    assert list(buckets._levels) == ["10.0.2.1"]


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
    """The guide's 2.5 snippets are what the template and modules.yaml ship (and what the tests
    above ran)."""
    text = (config_dir().parent / "docs" / guide).read_text(encoding="utf-8")
    section = text[text.index("### 2.5 "):text.index("### 2.6 ")]
    synapse_limits, module_limit = re.findall(r"```yaml\n(.*?)```", section, re.S)
    shipped = yaml.safe_load((config_dir() / "homeserver.template.yaml").read_text(encoding="utf-8"))
    assert yaml.safe_load(synapse_limits) == {key: shipped[key] for key in SHIPPED}
    (zones,) = [m["config"] for m in suite_modules() if m["module"] == ZONES_MODULE]
    assert yaml.safe_load(module_limit) == {"failed_logins_per_address": zones["failed_logins_per_address"]}
