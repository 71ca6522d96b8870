"""``lgwan-chat demo``: the whole suite in the foreground on one machine.

First run: renders a deployment under ``var/demo/`` from ``config/``
(homeserver.yaml, modules.yaml, organisation.yaml), registers an admin, the
demo staff and the bot accounts, and writes ``credentials.json``. Every run:
validates the YAML, starts Synapse with every module and every bot, prints how
to log in, and stops everything cleanly on Ctrl-C. Data lives in ``var/demo/``,
so running again resumes where it stopped.

Everything under ``var/demo/`` is for its owner only (directories 0700, files 0600): it holds
tokens, password hashes, the federation signing key and the staff's messages and files.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

import bots
from bots.runtime.accounts import exempt_from_rate_limits
from bots.runtime.storage import RUNTIME_MIGRATIONS, Storage
from lgwan_chat.checkconfig import check_file
from lgwan_chat.core import organisation as org
from lgwan_chat.core.http import HttpError
from lgwan_chat.core.i18n import both, t
from lgwan_chat.coturn import Coturn, CoturnError, CoturnSpec, turnserver_binary
from lgwan_chat.homeserver import (
    Homeserver,
    HomeserverError,
    HomeserverSpec,
    port_in_use,
    suite_modules_yaml,
    turn_secret_path,
)
from lgwan_chat.nginx import Nginx, NginxError, NginxSpec, nginx_binary
from lgwan_chat.templates import config_dir, render, write_private

SERVER_NAME = "demo-city.test"
EDITABLE_FILES = ("modules.yaml", "organisation.yaml")
#: The demo's TURN server (coturn) listens this far above the internet port (8031 by default).
TURN_PORT_OFFSET = 23


def say(key: str, **params: Any) -> None:
    print(both(key, **params), flush=True)


#: modules.yaml's production line for approved devices, and the demo's (written on the first run).
PRODUCTION_DEVICE_APPROVAL = 'device_approval: {internet: self, lgwan: "off"}'
DEMO_DEVICE_APPROVAL = ('device_approval: {internet: "off", lgwan: "off"}'
                        "  # demo: no approval; production: {internet: self, lgwan: \"off\"}")


def demo_device_approval(modules_yaml: Path) -> None:
    """The demo holds no device: its staff log in from a browser on either entrance at once, and
    the demo's own test drives it so. To see approval, edit this line of var/demo/modules.yaml
    back to ``self`` and approve with ``lgwan-chat device approve`` (admin guide 4.12)."""
    text = modules_yaml.read_text(encoding="utf-8")
    if PRODUCTION_DEVICE_APPROVAL in text:
        modules_yaml.write_text(text.replace(PRODUCTION_DEVICE_APPROVAL, DEMO_DEVICE_APPROVAL, 1), encoding="utf-8")


def run(data_dir: Path, internet_port: int = 8008, lgwan_port: int = 8018, synapse_port_offset: int = 100) -> int:
    """Clients use ``internet_port`` / ``lgwan_port``: nginx when installed (the LGWAN media
    gate lives there) with Synapse behind it ``synapse_port_offset`` higher; else Synapse itself."""
    data_dir = data_dir.resolve()
    first_run = not (data_dir / "homeserver.yaml").exists()
    say("demo.generating" if first_run else "demo.resuming", path=data_dir)
    # What the demo and the processes it starts (Synapse, nginx, bots) create: for the owner only.
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    make_private(data_dir)  # a deployment made before this rule gets tightened
    for name in EDITABLE_FILES:
        if not (data_dir / name).exists():
            if name == "modules.yaml":
                write_private(data_dir / name, suite_modules_yaml(SERVER_NAME))
                demo_device_approval(data_dir / name)
            else:
                shutil.copyfile(config_dir() / name, data_dir / name)

    # Nothing starts on a broken configuration.
    issues = [i for name in EDITABLE_FILES for i in check_file(data_dir / name)]
    if issues:
        for issue in issues:
            print(issue.format(), file=sys.stderr)
        return 1

    with open(data_dir / "modules.yaml", encoding="utf-8") as f:
        modules = yaml.safe_load(f)["modules"]
    organisation = org.load(data_dir / "organisation.yaml")

    use_nginx = nginx_binary() is not None
    offset = synapse_port_offset if use_nginx else 0
    # Behind nginx, Synapse takes the client's address from X-Forwarded-For, which nginx overwrites:
    # login limits then count per staff PC, not per nginx. Without nginx, clients reach Synapse
    # directly and the header is theirs to forge: not trusted.
    homeserver = Homeserver(HomeserverSpec(data_dir=data_dir, server_name=SERVER_NAME,
                                           internet_port=internet_port + offset, lgwan_port=lgwan_port + offset,
                                           public_baseurl=f"http://127.0.0.1:{internet_port}", modules=modules,
                                           x_forwarded=use_nginx, turn_port=internet_port + TURN_PORT_OFFSET,
                                           device_approval=None))  # as var/demo/modules.yaml says
    synapse_ports = {homeserver.spec.internet_port, homeserver.spec.lgwan_port}
    if use_nginx and synapse_ports & {internet_port, lgwan_port}:
        use_nginx = False  # a deployment made without nginx: Synapse already holds the client ports
    if not use_nginx and homeserver.trusts_forwarded_for:
        say("demo.needs_nginx", path=data_dir / "homeserver.yaml")
        return 1
    public_ports = {internet_port, lgwan_port, int(upload_listen(data_dir, internet_port).rsplit(":", 1)[1])}
    if homeserver.turn_address is not None:
        public_ports.add(homeserver.turn_address[1])
    for port in sorted(public_ports | synapse_ports):
        if port_in_use(port):
            say("demo.port_busy", port=port)
            return 1
    if not use_nginx:
        print(t("demo.gate_off", "ja") + "\n" + t("demo.gate_off", "en"), flush=True)
    listeners = {"internet": f"http://127.0.0.1:{internet_port}", "lgwan": f"http://127.0.0.1:{lgwan_port}"}

    nginx: Nginx | None = None
    coturn: Coturn | None = None
    bot_processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, request_stop)
    exit_code = 0
    try:
        say("demo.starting_homeserver", log=homeserver.log_path)
        try:
            homeserver.start()
        except HomeserverError:
            say("demo.homeserver_failed", log=homeserver.log_path)
            return 1
        say("demo.homeserver_ready")
        if use_nginx:
            nginx = Nginx(NginxSpec(prefix=data_dir / "nginx", log_dir=data_dir / "logs",
                                    internet_listen=f"127.0.0.1:{internet_port}",
                                    lgwan_listen=f"127.0.0.1:{lgwan_port}",
                                    synapse_internet=f"127.0.0.1:{homeserver.spec.internet_port}",
                                    synapse_lgwan=f"127.0.0.1:{homeserver.spec.lgwan_port}",
                                    upload_page=upload_listen(data_dir, internet_port)))
            say("demo.starting_nginx", log=nginx.error_log)
            try:
                nginx.start()
            except NginxError as e:
                say("demo.nginx_failed", problem=e)
                return 1
        coturn = start_coturn(data_dir, homeserver)
        credentials, bot_sessions = ensure_accounts(homeserver, data_dir, organisation, listeners)
        provision(data_dir, homeserver, credentials)
        bot_processes = start_bots(data_dir, homeserver, credentials, upload_listen(data_dir, internet_port),
                                   bot_sessions)
        print(t("demo.howto", "ja", **howto_params(credentials, data_dir)), flush=True)
        print(t("demo.howto", "en", **howto_params(credentials, data_dir)), flush=True)
        reported: set[str] = set()
        while not stopping:
            time.sleep(0.2)
            code = homeserver.exit_code()
            if code is not None:
                say("demo.homeserver_exited", code=code, log=homeserver.log_path)
                exit_code = 1
                break
            if nginx is not None and (code := nginx.exit_code()) is not None:
                say("demo.nginx_exited", code=code, log=nginx.error_log)
                exit_code = 1
                break
            if coturn is not None and (code := coturn.exit_code()) is not None and "coturn" not in reported:
                reported.add("coturn")  # calls lose their relay; chat goes on
                say("coturn.exited", code=code, log=coturn.log_path)
            for name, process in bot_processes.items():
                if process.poll() is not None and name not in reported:
                    reported.add(name)
                    say("demo.bot_exited", name=name, code=process.returncode,
                        log=data_dir / "logs" / f"{name}.log")
    finally:
        # Printing can fail (a closed terminal or pipe) and must never leave a homeserver running.
        _quietly(say, "demo.stopping")
        for process in bot_processes.values():
            _terminate(process)
        if nginx is not None:
            nginx.stop()
        if coturn is not None:
            coturn.stop()
        homeserver.stop()
        _quietly(say, "demo.stopped")
    return exit_code


def start_coturn(data_dir: Path, homeserver: Homeserver) -> Coturn | None:
    """The TURN server for calls, on loopback like everything of the demo (homeserver.yaml's
    turn_uris say where). Without coturn the demo goes on: chat works, calls have no relay."""
    if homeserver.turn_address is None:
        return None
    if turnserver_binary() is None:
        say("coturn.missing")
        return None
    host, port = homeserver.turn_address
    coturn = None
    try:
        coturn = Coturn(CoturnSpec(prefix=data_dir / "coturn", listening_ip=host, port=port,
                                   secret_file=turn_secret_path(data_dir), realm=homeserver.server_name,
                                   allow_loopback_peers=True, log_dir=data_dir / "logs"))
        say("coturn.starting", log=coturn.log_path)
        coturn.start()
    except (CoturnError, OSError) as e:
        say("coturn.failed", problem=e)
        if coturn is not None:
            coturn.stop()
        return None
    return coturn


def make_private(data_dir: Path) -> None:
    """Take group and other permissions away from the data directory and everything in it."""
    for path in [data_dir, *data_dir.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            if mode & 0o077:
                path.chmod(mode & 0o700)


def ensure_accounts(homeserver: Homeserver, data_dir: Path, organisation: org.Organisation,
                    listeners: dict[str, str]) -> tuple[dict, dict[str, dict]]:
    """Register what credentials.json lists, creating it first on the first run.

    Passwords are written before registering, so a run interrupted halfway
    resumes with the same passwords (an account that already exists is kept).
    Registration (shared-secret admin API) is not a login: it spends nothing of the login
    limits staff share behind one address. Returns the credentials and, for each bot registered
    now, the session (access token, device) its registration created.
    """
    path = data_dir / "credentials.json"
    if path.exists():
        credentials = json.loads(path.read_text(encoding="utf-8"))
        missing = [name for name in bots.AVAILABLE if name not in credentials.get("bots", {})]
        if missing:  # a deployment made before these bots existed
            server = credentials["server_name"]
            credentials.setdefault("bots", {}).update({n: f"@{n}-bot:{server}" for n in missing})
            credentials.setdefault("bot_passwords", {}).update({n: _password() for n in missing})
            path.write_text(json.dumps(credentials, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        server = homeserver.server_name
        credentials = {
            "server_name": server,
            "listeners": listeners,
            "registration_shared_secret": homeserver.registration_shared_secret,
            "admin": {"user_id": f"@admin:{server}", "password": _password()},
            "users": [{"user_id": f"@{m.localpart}:{server}", "password": _password(),
                       "department": m.department, "display_name": m.display_name}
                      for m in organisation.staff],
            "bots": {name: f"@{name}-bot:{server}" for name in bots.AVAILABLE},
            "bot_passwords": {name: _password() for name in bots.AVAILABLE},
        }
        path.touch(mode=0o600)
        path.write_text(json.dumps(credentials, ensure_ascii=False, indent=2), encoding="utf-8")
        say("demo.credentials_written", path=path)
    say("demo.registering")
    device_names = bot_device_names(data_dir)
    # (bot name or None, user id, password, admin, display name)
    accounts: list[tuple[str | None, str, str, bool, str | None]] = [
        (None, credentials["admin"]["user_id"], credentials["admin"]["password"], True, "管理者 (Admin)")]
    accounts += [(None, u["user_id"], u["password"], False, u.get("display_name")) for u in credentials["users"]]
    accounts += [(name, uid, credentials["bot_passwords"][name], False, None)
                 for name, uid in credentials["bots"].items()]
    bot_sessions: dict[str, dict] = {}
    admin_token = None
    for bot, user_id, password, admin, display_name in accounts:
        localpart = user_id[1:].split(":", 1)[0]
        try:
            registered = homeserver.register(localpart, password, admin=admin, displayname=display_name,
                                             device_name=device_names.get(bot) if bot else None)
        except HttpError as e:
            if not (isinstance(e.body, dict) and e.body.get("errcode") == "M_USER_IN_USE"):
                raise
        else:
            if bot:
                bot_sessions[bot] = registered
            elif admin:
                admin_token = registered["access_token"]
    if bot_sessions:
        # A bot that has answered a few commands must not wait out Synapse's message limit
        # (a safety check started 9 s late): bots are exempt, once, when they are registered.
        if admin_token is None:  # the admin exists from an earlier run: one login, only now
            admin_token = homeserver.login(credentials["admin"]["user_id"], credentials["admin"]["password"])
        for session in bot_sessions.values():
            exempt_from_rate_limits(homeserver.url("lgwan"), admin_token, session["user_id"])
    return credentials, bot_sessions


def bot_device_names(data_dir: Path) -> dict[str, str]:
    """Each bot's device name, as bots.yaml says (the template's until the demo has written it)."""
    path = data_dir / "bots.yaml"
    if not path.exists():
        path = config_dir() / "bots.template.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return {name: str(bot["device_name"]) for name, bot in (doc.get("bots") or {}).items()
                if isinstance(bot, dict) and bot.get("device_name")}
    except (OSError, AttributeError, yaml.YAMLError):
        return {}  # a broken bots.yaml is reported when the bots start


def hand_over_sessions(bots_yaml: Path, sessions: dict[str, dict]) -> None:
    """Give each bot registered in this run the session its registration created, so it starts
    without a password login (a bot that already keeps a session keeps it)."""
    doc = yaml.safe_load(bots_yaml.read_text(encoding="utf-8")) or {}
    for name, session in sessions.items():
        where = doc["bots"][name]["storage"]
        storage = Storage(Path(where["sqlite"]) if "sqlite" in where else None, where.get("postgres"))
        try:
            storage.migrate("runtime", RUNTIME_MIGRATIONS)
            if not storage.get("access_token"):
                storage.put("access_token", session["access_token"])
                storage.put("device_id", session["device_id"])
        finally:
            storage.close()


def provision(data_dir: Path, homeserver: Homeserver, credentials: dict) -> None:
    """The organisation's rooms and spaces (lgwan-chat provision), brought up to date at every start.
    A failure is reported and the demo goes on: chat works without the department rooms."""
    secrets_dir = data_dir / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    secret = secrets_dir / "registration_shared_secret"
    secret.touch(mode=0o600)
    secret.write_text(credentials["registration_shared_secret"], encoding="utf-8")
    log = data_dir / "logs" / "provision.log"
    with open(log, "w", encoding="utf-8") as out:
        code = subprocess.call(
            [sys.executable, "-m", "lgwan_chat.cli", "provision", str(data_dir / "organisation.yaml"),
             "--homeserver", homeserver.url("lgwan"), "--token-file", str(secrets_dir / "provisioner.token"),
             "--shared-secret-file", str(secret)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    say("demo.provisioned" if code == 0 else "demo.provision_failed", log=log)


def write_bot_config(data_dir: Path, credentials: dict, upload_page: str) -> list:
    """bots.yaml (first run only: then it is the admin's) and each bot's password file (0600).
    Returns the problems check-config finds in bots.yaml."""
    secrets_dir = data_dir / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    for name in credentials["bots"]:
        secret = secrets_dir / f"{name}-bot.password"
        secret.touch(mode=0o600)
        secret.write_text(credentials["bot_passwords"][name], encoding="utf-8")
    target = data_dir / "bots.yaml"
    values = {"internet_url": credentials["listeners"]["internet"], "lgwan_url": credentials["listeners"]["lgwan"],
              "server_name": credentials["server_name"], "data_dir": data_dir, "upload_listen": upload_page}
    if not target.exists():
        render("bots.template.yaml", target, values)
    else:
        add_missing_bots(target, values)
    return check_file(target)


def add_missing_bots(target: Path, values: dict) -> None:
    """A bots.yaml made before some bots existed gets their blocks from the template appended
    (what the admin edited stays as it is)."""
    have = (yaml.safe_load(target.read_text(encoding="utf-8")) or {}).get("bots") or {}
    missing = [name for name in bots.AVAILABLE if name not in have]
    if not missing:
        return
    rendered = target.with_suffix(".template-rendered")
    render("bots.template.yaml", rendered, values)
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    pending: list[str] = []
    for line in rendered.read_text(encoding="utf-8").splitlines(keepends=True)[1:]:  # after "bots:"
        top = line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":") \
            and not line.lstrip().startswith("#")
        if top:
            current = line.strip()[:-1]
            blocks[current] = pending + [line]
            pending = []
        elif (line.lstrip().startswith("#") and line.startswith("  #")) or not line.strip():
            pending.append(line)  # comments above the next bot belong to it
        elif current is not None:
            blocks[current] += pending + [line]
            pending = []
    rendered.unlink()
    with open(target, "a", encoding="utf-8") as f:
        for name in missing:
            f.write("\n" + "".join(blocks[name]))
    say("demo.bots_added", names=", ".join(missing), path=target)


def upload_listen(data_dir: Path, internet_port: int) -> str:
    """Where the sanitizer bot's upload page listens: as bots.yaml says once it exists (the admin may
    have changed it), else next to the demo's ports (8030 for the default 8008)."""
    try:
        doc = yaml.safe_load((data_dir / "bots.yaml").read_text(encoding="utf-8")) or {}
        return str(doc["bots"]["sanitizer"]["upload"]["listen"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return f"127.0.0.1:{internet_port + 22}"


def start_bots(data_dir: Path, homeserver: Homeserver, credentials: dict,
               upload_page: str, sessions: dict[str, dict]) -> dict[str, subprocess.Popen]:
    if not bots.AVAILABLE:
        say("demo.no_bots")
    issues = write_bot_config(data_dir, credentials, upload_page)
    if issues:
        for issue in issues:
            print(issue.format(), file=sys.stderr)
        say("demo.bots_not_started", path=data_dir / "bots.yaml")
        return {}
    hand_over_sessions(data_dir / "bots.yaml", sessions)
    processes = {}
    for name, module in bots.AVAILABLE.items():
        log = data_dir / "logs" / f"{name}.log"
        say("demo.starting_bot", name=name, log=log)
        with open(log, "ab") as out:
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", module, "--config", str(data_dir / "bots.yaml")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=data_dir, start_new_session=True, env=dict(os.environ))
    return processes


def howto_params(credentials: dict, data_dir: Path) -> dict:
    return {"internet": credentials["listeners"]["internet"], "lgwan": credentials["listeners"]["lgwan"],
            "server_name": credentials["server_name"], "admin_user": credentials["admin"]["user_id"],
            "admin_password": credentials["admin"]["password"], "credentials": data_dir / "credentials.json"}


def _quietly(func: Any, *args: Any, **kwargs: Any) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        func(*args, **kwargs)


def _password() -> str:
    return secrets.token_urlsafe(12)


def _terminate(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

