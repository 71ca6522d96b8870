"""``lgwan-chat deploy accounts OUTDIR``: the administrator's and the bots' accounts.

Run once Synapse is up (after ``deploy init`` and starting ``lgwan-chat-synapse.service``), before
the bots start; running it again changes nothing. It also registers ``doctor``, an ordinary
account that ``lgwan-chat doctor --deployment OUTDIR`` logs in with (``secrets/doctor.password``).
Registration uses the shared secret on the main process's LGWAN listener (loopback: the admin
API is not reachable through nginx), with the passwords in ``OUTDIR/secrets/`` (``admin.password``
made here if missing). Each bot registered now is exempted from Synapse's message rate limit, as
the demo does: a bot answering many staff must not wait. ``records`` is a server admin of its own
for the daily ``records purge-media`` timer: its access token is kept in ``secrets/records.token``
(0600), so the timer never holds the admin's password and its deletions are audited under its name.
"""

from __future__ import annotations

import secrets as random
from pathlib import Path

import yaml

from bots.runtime.accounts import exempt_from_rate_limits
from lgwan_chat.core.http import HttpError, http_json
from lgwan_chat.homeserver import register_user
from lgwan_chat.templates import write_private

from .render import RECORDS_TOKEN, UNIT_PREFIX, Layout

ADMIN = "admin"
#: An ordinary account (no admin rights) for ``lgwan-chat doctor --deployment OUTDIR``.
DOCTOR = "doctor"
#: The server admin the records purge-media timer acts as.
RECORDS = "records"


def synapse_url(layout: Layout) -> str:
    """The main process's LGWAN listener, as deploy.yaml says."""
    shared = yaml.safe_load((layout.synapse / "deploy.yaml").read_text(encoding="utf-8"))
    port = next(lst["port"] for lst in shared["listeners"] if lst.get("tag") == "lgwan")
    return f"http://127.0.0.1:{port}"


def deployed_bots(outdir: Path) -> list[str]:
    prefix = f"{UNIT_PREFIX}-bot-"
    return sorted(p.name[len(prefix):-len(".service")] for p in (outdir / "systemd").glob(f"{prefix}*.service"))


def _password(outdir: Path, name: str) -> str:
    path = outdir / "secrets" / name
    if not path.is_file():
        write_private(path, random.token_urlsafe(18) + "\n")
    return path.read_text(encoding="utf-8").strip()


def ensure_accounts(outdir: Path) -> dict[str, str]:
    """localpart -> "created" or "exists", for the admin, every deployed bot and the doctor's test account."""
    layout = Layout(outdir.resolve())
    url = synapse_url(layout)
    shared_secret = _password(outdir, "registration_shared_secret")
    server_name = yaml.safe_load((layout.synapse / "homeserver.yaml").read_text(encoding="utf-8"))["server_name"]
    outcome: dict[str, str] = {}
    admin_password = _password(outdir, "admin.password")
    admin_token = None
    accounts = [(ADMIN, admin_password, True)]
    accounts += [(f"{bot}-bot", _password(outdir, f"{bot}-bot.password"), False) for bot in deployed_bots(outdir)]
    accounts.append((DOCTOR, _password(outdir, f"{DOCTOR}.password"), False))
    accounts.append((RECORDS, _password(outdir, f"{RECORDS}.password"), True))
    token_file = outdir / RECORDS_TOKEN
    for localpart, password, admin in accounts:
        try:
            registered = register_user(url, shared_secret, localpart, password, admin=admin,
                                       device_name=f"{UNIT_PREFIX} records timer" if localpart == RECORDS else None)
        except HttpError as e:
            if e.errcode != "M_USER_IN_USE":
                raise
            outcome[localpart] = "exists"
            if localpart == RECORDS and not token_file.is_file():  # the token file was lost: a new session
                write_private(token_file, _login(url, server_name, RECORDS, password) + "\n")
            continue
        outcome[localpart] = "created"
        if localpart == RECORDS:
            write_private(token_file, registered["access_token"] + "\n")
        elif admin:
            admin_token = registered["access_token"]
        else:
            if admin_token is None:  # the admin exists from an earlier run: one login, only now
                admin_token = _login(url, server_name, ADMIN, admin_password)
            if localpart != DOCTOR:  # the bots only: doctor is an ordinary user
                exempt_from_rate_limits(url, admin_token, registered["user_id"])
    return outcome


def _login(url: str, server_name: str, localpart: str, password: str) -> str:
    return str(http_json("POST", url + "/_matrix/client/v3/login", {
        "type": "m.login.password", "password": password, "initial_device_display_name": f"{UNIT_PREFIX} {localpart}",
        "identifier": {"type": "m.id.user", "user": f"@{localpart}:{server_name}"}})["access_token"])
