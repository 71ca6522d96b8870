"""Every file of a deployment, as text: what ``apply`` writes into OUTDIR.

Two kinds of file:

- owned: the deployment's wiring (listeners, database, workers, nginx routing, units); written
  again on every run from the answers, so an edit there is replaced (the diff shows it);
- seeded: written on the first run only, then the admin's (homeserver.yaml, modules.yaml,
  bots.yaml, organisation.yaml): the suite's settings an admin tunes.

Synapse reads ``homeserver.yaml``, then ``deploy.yaml`` (owned: it overrides the keys it sets),
then ``modules.yaml``; a worker reads its ``workers/NAME.yaml`` after those.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import attrs
import yaml

import bots
from lgwan_chat.coturn import CoturnSpec, turnserver_conf
from lgwan_chat.homeserver import suite_modules_yaml
from lgwan_chat.nginx import POOLS, upstreams_conf
from lgwan_chat.records.config import load as load_records
from lgwan_chat.records.retention import homeserver_block
from lgwan_chat.templates import config_dir, fill

from .answers import ZONES, Answers
from .routing import routes
from .secrets import Secrets
from .topology import LOOPBACK, Process, Topology

UNIT_PREFIX = "lgwan-chat"
#: Debian's coturn package installs it here.
TURNSERVER = "/usr/bin/turnserver"


@attrs.frozen
class GeneratedFile:
    path: str  # relative to OUTDIR
    text: str
    owned: bool = True


@attrs.frozen
class Layout:
    """Where things are once deployed (absolute: units and configs name each other)."""

    root: Path

    @property
    def synapse(self) -> Path:
        return self.root / "synapse"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def coturn_conf(self) -> Path:
        return self.root / "coturn" / "turnserver.conf"

    def synapse_configs(self) -> list[Path]:
        return [self.synapse / "homeserver.yaml", self.synapse / "deploy.yaml", self.synapse / "modules.yaml"]

    def worker_config(self, name: str) -> Path:
        return self.synapse / "workers" / f"{name}.yaml"


def _yaml(comment: str, doc: Any) -> str:
    head = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    return head + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def _listener(port: int, zone: str | None, resources: tuple[str, ...]) -> dict:
    listener: dict[str, Any] = {"port": port, "bind_addresses": [LOOPBACK], "type": "http"}
    if zone is not None:
        # Behind the zone's nginx, which overwrites X-Forwarded-For with the client's address.
        listener.update({"tag": zone, "x_forwarded": True})
    listener["resources"] = [{"names": list(resources), "compress": False}]
    return listener


def _replication_listener(port: int) -> dict:
    return {"port": port, "bind_addresses": [LOOPBACK], "type": "http", "resources": [{"names": ["replication"]}]}


def _metrics_listener(port: int) -> dict:
    return {"port": port, "bind_addresses": [LOOPBACK], "type": "metrics"}


def _database(answers: Answers) -> dict:
    if answers.sqlite is not None:
        return {"name": "sqlite3", "args": {"database": str(answers.sqlite)}}
    pg = answers.postgres
    assert pg is not None  # the answers name one database: SQLite or PostgreSQL (answers.py)
    args: dict[str, Any] = {"user": pg.user, "host": pg.host, "port": pg.port, "database": pg.database,
                            "cp_min": 5, "cp_max": 10}
    if pg.password_file is not None:
        args["password"] = pg.password_file.read_text(encoding="utf-8").strip()
    return {"name": "psycopg2", "allow_unsafe_locale": False, "args": args}


def deploy_yaml(answers: Answers, topology: Topology, secrets: Secrets, layout: Layout) -> str:
    main = topology.main
    doc: dict[str, Any] = {
        "public_baseurl": answers.internet.public_url + "/",
        "signing_key_path": str(secrets.signing_key),
        "turn_shared_secret_path": str(secrets.path("turn_shared_secret")),
        "log_config": str(layout.synapse / "log.config"),
        "media_store_path": str(layout.root / "media_store"),
        "listeners": [_listener(lst.port, lst.zone, lst.resources) for lst in main.listeners]
        + [_metrics_listener(port) for port in (main.metrics_port,) if port is not None],
        "enable_metrics": True,
        "database": _database(answers),
    }
    retention = _retention(answers, layout)
    if retention is not None:
        doc["retention"] = retention
    if topology.workers:
        redis = answers.redis
        assert main.replication_port is not None and redis is not None  # workers: both set (topology.py, answers.py)
        doc["listeners"].append(_replication_listener(main.replication_port))
        doc["redis"] = {"enabled": True, "host": redis.host, "port": redis.port}
        if redis.password_file is not None:
            doc["redis"]["password"] = redis.password_file.read_text(encoding="utf-8").strip()
        doc["worker_replication_secret"] = secrets["worker_replication_secret"]
        doc["instance_map"] = {p.name: {"host": LOOPBACK, "port": p.replication_port}
                               for p in topology.processes if p.replication_port is not None}
        doc["stream_writers"] = {"events": [p.name for p in topology.processes if p.role == "event_persister"]}
        doc["federation_sender_instances"] = [p.name for p in topology.processes if p.role == "federation_sender"]
        doc["pusher_instances"] = [p.name for p in topology.processes if p.role == "pusher"]
        doc["run_background_tasks_on"] = "background_worker"
        # Media only on the media worker: nginx sends every media path there.
        doc["enable_media_repo"] = False
        doc["media_instance_running_background_jobs"] = "media_repository"
    return _yaml("Written by `lgwan-chat deploy init` from the answers file: re-running it rewrites this file.\n"
                 "Owned keys override homeserver.yaml; change them in the answers file, not here.\n"
                 "lgwan-chat deploy init が生成（再実行で上書き）。変更は回答ファイルで行ってください。", doc)


def _retention(answers: Answers, layout: Layout) -> dict[str, Any] | None:
    """Synapse's ``retention:`` from the ``records:`` of the deployment's organisation file (the
    admin's copy once there is one), None without a ``records:`` section (Synapse keeps all)."""
    records = load_records(_organisation(answers, layout))
    return homeserver_block(records.retention) if records is not None else None


def _organisation(answers: Answers, layout: Layout) -> Path:
    """The organisation file: the admin's copy in the deployment once there is one."""
    deployed = layout.root / "organisation.yaml"
    return deployed if deployed.exists() else answers.organisation or config_dir() / "organisation.yaml"


def worker_yaml(process: Process, layout: Layout) -> str:
    listeners = [_listener(lst.port, lst.zone, lst.resources) for lst in process.listeners]
    if process.replication_port is not None:
        listeners.append(_replication_listener(process.replication_port))
    if process.metrics_port is not None:
        listeners.append(_metrics_listener(process.metrics_port))
    doc = {
        "worker_app": "synapse.app.media_repository" if process.role == "media_repository"
        else "synapse.app.generic_worker",
        "worker_name": process.name,
        "worker_listeners": listeners,
        "worker_log_config": str(layout.synapse / "workers" / f"{process.name}.log.config"),
    }
    return _yaml(f"Synapse worker {process.name} ({process.role}): written by `lgwan-chat deploy init`.", doc)


def log_config(log_file: Path) -> str:
    return fill("log.template.yaml", {"log_file": str(log_file), "access_log_level": "INFO"})


def _tls(entrance: Any) -> str:
    return "\n".join(f"    {line}" for line in (
        f"server_name {entrance.host};",
        f"ssl_certificate {entrance.tls_certificate};",
        f"ssl_certificate_key {entrance.tls_key};",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_session_cache shared:lgwan_chat_tls:10m;",
        "ssl_session_timeout 1d;",
        "ssl_session_tickets off;",
    ))


def nginx_sites(answers: Answers, topology: Topology) -> str:
    servers = {zone: {pool: topology.pool(zone, pool) for pool in POOLS} for zone in ZONES}
    return fill("nginx/lgwan-chat-sites.conf.template", {
        "internet_listen": f"{answers.internet.listen} ssl", "lgwan_listen": f"{answers.lgwan.listen} ssl",
        "internet_tls": _tls(answers.internet), "lgwan_tls": _tls(answers.lgwan),
        "upstreams": upstreams_conf(servers, routes() if topology.workers else ()),
        "upload_page": f"{LOOPBACK}:{topology.upload_page_port}",
        "log_dir": str(answers.install.nginx_log_dir), "cache_dir": str(answers.install.nginx_cache_dir),
    })


def coturn_conf(answers: Answers, secrets: Secrets, layout: Layout) -> str:
    """coturn with Synapse's shared secret; relays to private and loopback peers refused (production)."""
    turn = answers.turn
    spec = CoturnSpec(prefix=layout.coturn_conf.parent, listening_ip=answers.turn_listen_ip, port=turn.port,
                      secret_file=secrets.path("turn_shared_secret"), realm=answers.server_name,
                      relay_ip=turn.relay_ip, min_port=turn.min_port, max_port=turn.max_port,
                      external_ip=turn.external_ip, log_dir=layout.logs)
    return turnserver_conf(spec, secrets["turn_shared_secret"], layout.logs / "coturn.log",
                           layout.coturn_conf.parent / "turnserver.pid")


def _command(answers: Answers, args: list[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in [answers.install.python, *args])


def synapse_command(answers: Answers, layout: Layout, worker: str | None = None) -> list[str]:
    """The command line of the main process, or of a worker (``%i`` in the templated unit)."""
    app = "synapse.app.homeserver" if worker is None else "synapse.app.generic_worker"
    args = ["-m", app]
    configs = layout.synapse_configs() + ([layout.worker_config(worker)] if worker else [])
    for path in configs:
        args += ["-c", str(path)]
    return args


def _unit(description: str, exec_start: str, answers: Answers, layout: Layout, after: str = "",
          notify: bool = False, instance_of: str | None = None) -> str:
    after_units = "network-online.target postgresql.service redis-server.service" + (f" {after}" if after else "")
    lines = [
        "# Written by `lgwan-chat deploy init`: re-running it rewrites this file.",
        "[Unit]", f"Description={description}", f"After={after_units}", "Wants=network-online.target",
        f"PartOf={UNIT_PREFIX}.target",
    ]
    if after:
        lines.append(f"Requires={after}")
    lines += [
        "", "[Service]", f"Type={'notify' if notify else 'simple'}",
        *(["NotifyAccess=main"] if notify else []),
        f"User={answers.install.user}", f"WorkingDirectory={layout.root}", f"ExecStart={exec_start}",
        "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "RestartSec=3",
        *_hardening(answers, layout),
        "", "[Install]", f"WantedBy={UNIT_PREFIX}.target", "",
    ]
    return "\n".join(lines)


def _hardening(answers: Answers, layout: Layout) -> list[str]:
    # Everything the suite writes is for its user only (tokens, messages, files).
    return ["UMask=0077", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectSystem=full", "ProtectHome=read-only",
            f"ReadWritePaths={' '.join(str(p) for p in _writable(answers, layout))}"]


#: The daily job that deletes the files of purged messages (``lgwan-chat records purge-media``).
PURGE_MEDIA = f"{UNIT_PREFIX}-records-purge-media"
#: The access token it uses (an admin account of its own, made by ``deploy accounts``).
RECORDS_TOKEN = "secrets/records.token"


def purge_media_command(answers: Answers, topology: Topology, layout: Layout) -> list[str]:
    """``records purge-media`` against the main process's LGWAN listener (loopback: the admin API is
    not behind nginx), with the organisation file's ``records:``; where that names no state file or
    audit log, ones in the deployment folder."""
    args = ["-m", "lgwan_chat.cli", "records", "purge-media",
            "--homeserver", f"http://{LOOPBACK}:{topology.main.port('lgwan')}",
            "--token-file", str(layout.root / RECORDS_TOKEN), "--config", str(layout.root / "organisation.yaml")]
    records = load_records(_organisation(answers, layout))
    if records is None or not records.media_state:
        args += ["--state", str(layout.root / "records" / "media-state.json")]
    if records is None or not records.audit_log:
        args += ["--audit-log", str(layout.root / "records" / "audit.jsonl")]  # not logs/: backed up
    return args


def purge_media_units(answers: Answers, topology: Topology, layout: Layout) -> dict[str, str]:
    """A oneshot service and its daily timer: after Synapse's own retention purge has removed
    messages, their files go too (files of rooms under legal hold stay)."""
    service = "\n".join([
        "# Written by `lgwan-chat deploy init`: re-running it rewrites this file.",
        "[Unit]", "Description=lgwan-chat: delete the files of purged messages (records purge-media)",
        f"After=network-online.target {UNIT_PREFIX}-synapse.service", f"Requisite={UNIT_PREFIX}-synapse.service",
        "", "[Service]", "Type=oneshot",
        f"User={answers.install.user}", f"WorkingDirectory={layout.root}",
        f"ExecStart={_command(answers, purge_media_command(answers, topology, layout))}",
        *_hardening(answers, layout), ""])
    timer = "\n".join([
        "# Written by `lgwan-chat deploy init`: re-running it rewrites this file.",
        "[Unit]", "Description=lgwan-chat: delete the files of purged messages, daily",
        f"PartOf={UNIT_PREFIX}.target",
        "", "[Timer]", "OnCalendar=*-*-* 03:30:00", "RandomizedDelaySec=30min",
        # a day missed while the machine was off is caught up at the next start
        "Persistent=true", f"Unit={PURGE_MEDIA}.service",
        "", "[Install]", f"WantedBy={UNIT_PREFIX}.target", ""])
    return {f"{PURGE_MEDIA}.service": service, f"{PURGE_MEDIA}.timer": timer}


def _writable(answers: Answers, layout: Layout) -> list[Path]:
    """What the processes write: the deployment, and an SQLite database kept elsewhere."""
    paths = [layout.root]
    if answers.sqlite is not None and not answers.sqlite.is_relative_to(layout.root):
        paths.append(answers.sqlite.parent)
    return paths


def units(answers: Answers, topology: Topology, layout: Layout) -> dict[str, str]:
    main_unit = f"{UNIT_PREFIX}-synapse.service"
    out = {main_unit: _unit("lgwan-chat Synapse main process", _command(answers, synapse_command(answers, layout)),
                            answers, layout, notify=True)}
    wants = [main_unit]
    if topology.workers:
        worker_args = synapse_command(answers, layout, "WORKER")
        command = _command(answers, worker_args).replace("WORKER.yaml", "%i.yaml")
        out[f"{UNIT_PREFIX}-synapse-worker@.service"] = _unit(
            "lgwan-chat Synapse worker %i", command, answers, layout, after=main_unit, notify=True)
        wants += [f"{UNIT_PREFIX}-synapse-worker@{p.name}.service" for p in topology.workers]
    # Our own unit, not a drop-in for Debian's coturn.service: that one runs as the turnserver user,
    # who cannot read the 0600 config in the service user's 0700 OUTDIR (it holds Synapse's secret).
    name = f"{UNIT_PREFIX}-coturn.service"
    out[name] = _unit("lgwan-chat TURN server (coturn) for phones' calls",
                      " ".join(shlex.quote(a) for a in (TURNSERVER, "-c", str(layout.coturn_conf))), answers, layout)
    wants.append(name)
    for bot in answers.bots:
        description = f"lgwan-chat {bot} bot" + (" and the upload page for outside contractors"
                                                  if bot == "sanitizer" else "")
        name = f"{UNIT_PREFIX}-bot-{bot}.service"
        out[name] = _unit(description, _command(answers, ["-m", bots.AVAILABLE[bot], "--config",
                                                          str(layout.root / "bots.yaml")]),
                          answers, layout, after=main_unit)
        wants.append(name)
    out.update(purge_media_units(answers, topology, layout))
    wants.append(f"{PURGE_MEDIA}.timer")
    out[f"{UNIT_PREFIX}.target"] = "\n".join([
        "# Written by `lgwan-chat deploy init`: every process of the deployment.",
        "[Unit]", "Description=lgwan-chat (Synapse, its workers, coturn and the bots)", f"Wants={' '.join(wants)}",
        "", "[Install]", "WantedBy=multi-user.target", ""])
    return out


def logrotate(answers: Answers, layout: Layout) -> str:
    nginx_logs = answers.install.nginx_log_dir
    return "\n".join([
        "# Written by `lgwan-chat deploy init`. Synapse rotates its own logs (log.config).",
        f"{nginx_logs}/nginx-access.log {nginx_logs}/nginx-error.log {{",
        "    daily", "    rotate 90", "    compress", "    delaycompress", "    missingok", "    notifempty",
        "    create 0640 root adm", "    sharedscripts",
        "    postrotate", "        [ -s /run/nginx.pid ] && kill -USR1 \"$(cat /run/nginx.pid)\" || true",
        "    endscript", "}",
        "",
        "# The sanitizer's audit log: kept two years (it is the record of what entered LGWAN).",
        f"{layout.logs}/sanitizer-audit.jsonl {{",
        "    monthly", "    rotate 24", "    compress", "    missingok", "    notifempty", "    copytruncate",
        f"    su {answers.install.user} {answers.install.user}", "    create 0600 " +
        f"{answers.install.user} {answers.install.user}", "}",
        "",
        "# coturn's log (simple-log: one file, opened for appending, so copytruncate loses nothing).",
        "# It holds the phones' addresses: kept as long as nginx's access log.",
        f"{layout.logs}/coturn.log {{",
        "    daily", "    rotate 90", "    compress", "    delaycompress", "    missingok", "    notifempty",
        "    copytruncate", f"    su {answers.install.user} {answers.install.user}", "}", ""])


def without_keys(keys: list[str], text: str) -> str:
    """The seeded homeserver.yaml with deploy.yaml's keys commented out: set there, they would be ignored
    (``deploy check`` warns when an admin sets one again)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        top = re.match(r"^([A-Za-z_][\w.]*):", line)
        if top:
            inside = top.group(1) in keys
            if inside:
                out.append("# Set in deploy.yaml (the answers file) / deploy.yaml で設定（回答ファイル）:\n")
        elif not line.startswith((" ", "-", "\t")):
            inside = False
        out.append(f"# {line}" if inside else line)
    return "".join(out)


def render(answers: Answers, topology: Topology, secrets: Secrets, layout: Layout) -> list[GeneratedFile]:
    files = [GeneratedFile("synapse/deploy.yaml", deploy_yaml(answers, topology, secrets, layout)),
             GeneratedFile("synapse/log.config", log_config(layout.logs / "synapse-main.log"))]
    for process in topology.workers:
        files.append(GeneratedFile(f"synapse/workers/{process.name}.yaml", worker_yaml(process, layout)))
        files.append(GeneratedFile(f"synapse/workers/{process.name}.log.config",
                                   log_config(layout.logs / f"synapse-{process.name}.log")))
    files.append(GeneratedFile("nginx/lgwan-chat-sites.conf", nginx_sites(answers, topology)))
    files += [GeneratedFile(f"systemd/{name}", text) for name, text in units(answers, topology, layout).items()]
    files.append(GeneratedFile("logrotate/lgwan-chat", logrotate(answers, layout)))
    files.append(GeneratedFile("coturn/turnserver.conf", coturn_conf(answers, secrets, layout)))
    # Seeded: the admin's from the first run on.
    owned = list(yaml.safe_load(files[0].text))
    files.append(GeneratedFile("synapse/homeserver.yaml", without_keys(owned, fill("homeserver.template.yaml", {
        "server_name": answers.server_name, "public_baseurl": answers.internet.public_url + "/",
        "data_dir": str(layout.synapse), "internet_port": topology.main.port("internet"),
        "lgwan_port": topology.main.port("lgwan"), "metrics_port": topology.main.metrics_port,
        "bind_address": LOOPBACK, "x_forwarded": "true",
        "registration_shared_secret": secrets["registration_shared_secret"],
        "macaroon_secret_key": secrets["macaroon_secret_key"], "form_secret": secrets["form_secret"],
        "turn_host": answers.turn_host, "turn_port": answers.turn_port,
    })), owned=False))
    files.append(GeneratedFile("synapse/modules.yaml", suite_modules_yaml(answers.server_name), owned=False))
    organisation = answers.organisation or config_dir() / "organisation.yaml"
    files.append(GeneratedFile("organisation.yaml", organisation.read_text(encoding="utf-8"), owned=False))
    files.append(GeneratedFile("bots.yaml", fill("bots.template.yaml", {
        "internet_url": answers.internet.public_url, "lgwan_url": answers.lgwan.public_url,
        "server_name": answers.server_name, "data_dir": str(layout.root),
        "upload_listen": f"{LOOPBACK}:{topology.upload_page_port}"}), owned=False))
    return files
