"""Monitoring: Synapse's and the suite's Prometheus metrics, and the alert rules shipped with them.

What an admin checks: the homeserver's metrics listener answers on loopback only (never through an
nginx entrance), the suite's counters move when the thing they count happens (an LGWAN device
refused a call, a photo held at the LGWAN gate, a read-status request, a bot command), a bot serves
its own metrics on the port its configuration names, and every alert rule in
config/prometheus/lgwan-chat.rules.yml asks about metrics the suite really exports.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from urllib.parse import quote

import yaml
from bots_harness import ask, send_text
from harness import http_get
from nio import RoomCreateResponse
from prometheus_client.parser import text_string_to_metric_families
from test_bot_runtime import ECHO, room_with, started
from test_zone_media_gate import png, upload

from lgwan_chat.ports import free_port
from lgwan_chat.templates import config_dir

RULES = config_dir() / "prometheus" / "lgwan-chat.rules.yml"
DASHBOARD = config_dir() / "grafana" / "lgwan-chat.json"
SUITE_METRIC = re.compile(r"\blgwan_chat_[a-z0-9_]+")
#: Metrics the rules and the dashboard read from outside the suite, each with who exports it.
EXTERNAL_METRICS = {
    # prometheus-blackbox-exporter (Debian package) probing both entrances (admin guide "Monitoring")
    "probe_ssl_earliest_cert_expiry": "blackbox_exporter",
}


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text page: (name, labels) -> value."""
    status, _, body = http_get(url)
    assert status == 200, body[:500]
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body.decode("utf-8")) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0 for a labelled counter not incremented yet (Prometheus' own reading)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def synapse_metrics(homeserver) -> dict:
    return scrape(homeserver.hs.metrics_url())


# --- Synapse's metrics listener ------------------------------------------------------------------

def test_metrics_answer_on_loopback_and_never_through_an_entrance(homeserver, nginx_front):
    samples = synapse_metrics(homeserver)
    names = {name for name, _ in samples}
    assert "synapse_build_info" in names, sorted(names)[:20]
    status, _, body = http_get(homeserver.hs.metrics_url())
    assert b"# TYPE lgwan_chat_refusals_total counter" in body  # the suite's, registered in Synapse's
    for zone in ("internet", "lgwan"):
        for base in (nginx_front.url(zone), homeserver.url(zone)):  # the entrance, and Synapse's own listener
            for path in ("/_synapse/metrics", "/metrics", "/_synapse/metrics/"):
                status, _, body = http_get(base + path)
                assert status == 404 and b"lgwan_chat_" not in body and b"synapse_" not in body, (base, path)


# --- the suite's counters in Synapse -------------------------------------------------------------

async def test_a_call_refused_to_an_lgwan_device_is_counted_by_reason_and_zone(homeserver, login):
    user = homeserver.new_user("metrics-call")
    pc = await login(user, "lgwan")
    phone = await login(user, "internet")
    turn = "/_matrix/client/v3/voip/turnServer"
    before = synapse_metrics(homeserver)
    status, _, body = http_get(homeserver.url("lgwan") + turn, pc.access_token)
    assert status == 403 and json.loads(body)["jp.lgwan.reason"] == "call_from_lgwan"
    status, _, _ = http_get(homeserver.url("lgwan") + turn, pc.access_token)
    assert status == 403
    assert http_get(homeserver.url("internet") + turn, phone.access_token)[0] == 200  # allowed: not counted
    after = synapse_metrics(homeserver)
    name = "lgwan_chat_refusals_total"
    assert value(after, name, reason="call_from_lgwan", zone="lgwan") == \
        value(before, name, reason="call_from_lgwan", zone="lgwan") + 2
    assert value(after, name, reason="call_from_lgwan", zone="internet") == \
        value(before, name, reason="call_from_lgwan", zone="internet")


def test_refusals_are_counted_by_the_zone_the_rules_decide_not_by_the_listener(monkeypatch):
    """With ``zone_source: ip`` one listener serves both zones: a refusal is counted under the zone
    the client's address places it in, ``unmatched`` when no rule does, ``none`` outside a request."""
    from prometheus_client import REGISTRY
    from synapse.logging.context import ContextRequest, LoggingContext, PreserveLoggingContext

    from synapse_modules import _metrics
    from synapse_modules._errors import refusal_fields
    from synapse_modules.zones.config import parse
    from synapse_modules.zones.zone import zone_of

    config = parse({"zone_source": "ip", "ip_zones": {"lgwan": ["10.20.0.0/16"], "internet": ["198.51.100.0/24"]}})
    monkeypatch.setattr(_metrics, "_zone_of_request", None)
    _metrics.set_zone_of_request(lambda origin: zone_of(origin, config))

    def refuse(address: str | None) -> None:
        request = ContextRequest(request_id="POST-1", ip_address=address or "", site_tag="frontdoor", requester=None,
                                 authenticated_entity=None, method="POST", url="/x", protocol="1.1", user_agent="t")
        with PreserveLoggingContext(LoggingContext(name="t", server_name="t", request=request if address else None)):
            refusal_fields("metrics_test", "zones.unknown_zone")

    def counted() -> dict[str, float]:
        return {zone: REGISTRY.get_sample_value("lgwan_chat_refusals_total", {"reason": "metrics_test", "zone": zone})
                or 0.0 for zone in ("lgwan", "internet", "unmatched", "none", "frontdoor")}

    before = counted()
    for address in ("10.20.1.2", "10.20.3.4", "198.51.100.7", "192.0.2.9", None):
        refuse(address)
    after = counted()
    assert {zone: after[zone] - before[zone] for zone in after} == \
        {"lgwan": 2, "internet": 1, "unmatched": 1, "none": 1, "frontdoor": 0}


async def test_media_gate_verdicts_are_counted(homeserver, nginx_front, login):
    user = homeserver.new_user("metrics-media")
    phone = await login(user, "internet", via=nginx_front)
    pc = await login(user, "lgwan", via=nginx_front)
    server, media_id = await upload(phone, png())
    path = f"/_matrix/client/v1/media/download/{server}/{media_id}"
    before = synapse_metrics(homeserver)
    assert http_get(nginx_front.url("lgwan") + path, pc.access_token)[0] == 403  # a phone's photo: held
    server, own = await upload(pc, png((10, 120, 10)))
    assert http_get(nginx_front.url("lgwan") + f"/_matrix/client/v1/media/download/{server}/{own}",
                    pc.access_token)[0] == 200
    after = synapse_metrics(homeserver)
    name = "lgwan_chat_media_gate_verdicts_total"
    held_before = value(before, name, verdict="media_pending_sanitization")
    held = value(after, name, verdict="media_pending_sanitization") - held_before
    allowed = value(after, name, verdict="allowed") - value(before, name, verdict="allowed")
    # nginx may keep a final verdict a while: at least the first ask of each reached the gate.
    assert held >= 1 and allowed >= 1, (held, allowed)
    assert value(after, "lgwan_chat_refusals_total", reason="media_pending_sanitization", zone="lgwan") > \
        value(before, "lgwan_chat_refusals_total", reason="media_pending_sanitization", zone="lgwan")


async def test_read_status_requests_are_timed(homeserver, login):
    pc = await login(homeserver.new_user("metrics-read"), "lgwan")
    room = await pc.room_create(name="計測")
    assert isinstance(room, RoomCreateResponse), room
    sent = await send_text(pc, room.room_id, "確認してください")
    before = synapse_metrics(homeserver)
    path = f"/_synapse/client/lgwan/v1/rooms/{quote(room.room_id)}/read_status/{quote(sent)}"
    status, _, body = http_get(homeserver.url("lgwan") + path, pc.access_token)
    assert status == 200, body
    after = synapse_metrics(homeserver)
    name = "lgwan_chat_read_status_request_seconds_count"
    assert value(after, name, request="one") == value(before, name, request="one") + 1
    assert value(after, "lgwan_chat_read_status_request_seconds_sum", request="one") > \
        value(before, "lgwan_chat_read_status_request_seconds_sum", request="one")


async def test_a_bookmark_is_counted_once_with_how_late_it_was_stored(homeserver, login):
    """The bookmarks feed reads 🔖 reactions after the fact: its lag histogram gets one sample per
    bookmark (not one per re-read: the feed reads recent rows again for 5 s, and a bookmarks request
    catches up too), and the background loop's last catch-up time moves."""
    pc = await login(homeserver.new_user("metrics-bookmark"), "lgwan")
    room = await pc.room_create(name="しおり")
    assert isinstance(room, RoomCreateResponse), room
    sent = await send_text(pc, room.room_id, "後で読む資料")
    before = synapse_metrics(homeserver)
    started = time.time()
    reacted = await pc.room_send(room.room_id, "m.reaction", {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": sent, "key": "🔖"}})
    assert not hasattr(reacted, "status_code"), reacted
    count, total = "lgwan_chat_bookmarks_feed_lag_seconds_count", "lgwan_chat_bookmarks_feed_lag_seconds_sum"
    caught_up = "lgwan_chat_bookmarks_feed_last_catch_up_timestamp_seconds"
    deadline = time.monotonic() + 30
    while value(synapse_metrics(homeserver), count) == value(before, count):
        assert time.monotonic() < deadline, "the bookmark was never counted"
        await asyncio.sleep(0.2)
    status, _, body = http_get(homeserver.url("lgwan") + "/_synapse/client/lgwan/v1/bookmarks", pc.access_token)
    assert status == 200 and sent in body.decode(), body  # stored, and this request caught up once more
    await asyncio.sleep(6)  # past the feed's re-read window (synapse_modules/_streams.py SETTLE_SECONDS)
    after = synapse_metrics(homeserver)
    assert value(after, count) == value(before, count) + 1
    lag = value(after, total) - value(before, total)
    assert 0 <= lag <= time.time() - started + 1, lag  # seconds, from the reaction being sent
    assert started - 1 <= value(after, caught_up) <= time.time() + 1


# --- a bot's metrics port ------------------------------------------------------------------------

async def test_a_bot_counts_what_it_handles_on_its_metrics_port(homeserver, login, bot_process):
    port = free_port()
    bot = started(bot_process("echo", ECHO, options={"metrics_port": port}))
    url = f"http://127.0.0.1:{port}/metrics"
    samples = scrape(url)
    synced = value(samples, "lgwan_chat_bot_last_sync_timestamp_seconds", bot="echo")
    assert time.time() - 120 < synced <= time.time() + 1
    client = await login(homeserver.new_user("metrics-bot"), "lgwan")
    room_id = await room_with(client, bot)
    before = scrape(url)
    assert await ask(client, room_id, "!こだま 計測", sender=bot.user_id) == "計測"
    assert await ask(client, room_id, "!失敗", sender=bot.user_id)  # the apology
    after = scrape(url)
    handled = "lgwan_chat_bot_events_handled_total"
    assert value(after, handled, bot="echo", outcome="command:echo") == \
        value(before, handled, bot="echo", outcome="command:echo") + 1
    assert value(after, handled, bot="echo", outcome="error") == value(before, handled, bot="echo", outcome="error") + 1
    errors = "lgwan_chat_bot_handler_errors_total"
    assert value(after, errors, bot="echo", handler="event") == value(before, errors, bot="echo", handler="event") + 1
    assert value(after, "lgwan_chat_bot_last_sync_timestamp_seconds", bot="echo") >= synced


def test_a_bot_metrics_port_in_use_is_a_clear_error(homeserver, bot_process):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bot = bot_process("echo", ECHO, options={"metrics_port": taken.getsockname()[1]})
        bot.start()
        assert bot.process.wait(30) == 2
    log = bot.log_path.read_text(encoding="utf-8")
    assert "メトリクスのポート" in log and "cannot listen on metrics port" in log, log


# --- the alert rules -----------------------------------------------------------------------------

def exported_metric_names() -> set[str]:
    """The sample names the suite exports (Synapse side and bots), as Prometheus sees them."""
    return set(suite_metric_labels())


def test_alert_rules_ask_about_metrics_that_exist():
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    exported = exported_metric_names()
    assert {"lgwan_chat_refusals_total", "lgwan_chat_bot_last_sync_timestamp_seconds"} <= exported, exported
    alerts = {rule["alert"] for rule in rules}
    assert {"LgwanChatBotNotSyncing", "LgwanChatSanitizerRefusalsRising", "LgwanChatMediaGateErrors"} <= alerts
    for rule in rules:
        used = set(SUITE_METRIC.findall(rule["expr"]))
        external = {name for name in EXTERNAL_METRICS if name in rule["expr"]}
        assert (used or external) and used <= exported, (rule["alert"], used - exported)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_alert_rules_pass_promtool():
    result = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def promtool_test(tmp_path, series: list[tuple[str, str]], at: str, firing: list[dict]) -> None:
    """The rules evaluated by Prometheus' own engine (``promtool test rules``) on made-up series:
    exactly the alerts ``firing`` (labels besides alertname/alertstate) fire at time ``at``."""
    samples = [{"labels": "ALERTS" + "{" + ", ".join(f'{k}="{v}"' for k, v in
                                                     {**alert, "alertstate": "firing"}.items()) + "}",
                "value": 1} for alert in firing]
    test = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
                       "promql_expr_test": [{"expr": 'ALERTS{alertstate="firing"}', "eval_time": at,
                                             "exp_samples": samples}]}]}
    path = tmp_path / "alerts.test.yml"
    path.write_text(yaml.safe_dump(test, allow_unicode=True))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_certificate_alerts_fire_three_weeks_and_one_week_before_expiry(tmp_path):
    """promtool's clock starts at 0: a certificate "expiring" at 10 days, one at 3 days, one at 30 days."""
    day = 86400
    probe = 'probe_ssl_earliest_cert_expiry{job="lgwan-chat-entrances", instance="https://%s.example"}'
    series = [(probe % "lgwan", f"{10 * day}x180"), (probe % "internet", f"{3 * day}x180"),
              (probe % "renewed", f"{30 * day}x180")]
    entrance = {"job": "lgwan-chat-entrances"}
    promtool_test(tmp_path, series, "2h", [
        {"alertname": "LgwanChatCertificateExpiresSoon", "severity": "warning", **entrance,
         "instance": "https://lgwan.example"},
        {"alertname": "LgwanChatCertificateExpiresSoon", "severity": "warning", **entrance,
         "instance": "https://internet.example"},
        {"alertname": "LgwanChatCertificateExpiresVerySoon", "severity": "critical", **entrance,
         "instance": "https://internet.example"}])


def test_a_stalled_bookmarks_feed_alerts_but_a_process_without_the_feed_does_not(tmp_path):
    # The background worker caught up until minute 10 (its clock then: 600 s), then stopped;
    # a client worker never runs the feed's loop (0).
    stuck = "600+60x10 600x60"
    series = [('lgwan_chat_bookmarks_feed_last_catch_up_timestamp_seconds{instance="background_worker"}', stuck),
              ('lgwan_chat_bookmarks_feed_last_catch_up_timestamp_seconds{instance="client_lgwan_1"}', "0x70")]
    promtool_test(tmp_path, series, "15m", [])  # 5 minutes behind: not yet
    promtool_test(tmp_path, series, "40m", [{"alertname": "LgwanChatBookmarksFeedStalled", "severity": "warning",
                                             "instance": "background_worker"}])


def test_a_hold_retention_or_zone_marker_put_back_alerts_for_an_hour(tmp_path):
    # The zones module put back one LGWAN-only marker at minute 10 (a counter of the background-tasks process).
    series = [('lgwan_chat_protected_state_restored_total{instance="main",state="zone_marker",outcome="restored"}',
               "0x10 1x80")]
    promtool_test(tmp_path, series, "5m", [])
    promtool_test(tmp_path, series, "30m", [{"alertname": "LgwanChatProtectedStateReplaced", "severity": "critical",
                                             "state": "zone_marker", "outcome": "restored"}])
    promtool_test(tmp_path, series, "80m", [])  # an hour later, without another change


# --- the Grafana dashboard -----------------------------------------------------------------------

#: What is not a metric name in a PromQL expression: functions (followed by "("), keywords,
#: label names in by/without/on/ignoring lists and in {matchers}, durations, strings, numbers.
PROMQL_NOT_NAMES = re.compile(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(by|without|on|ignoring|group_left|group_right)\s*'
                              r"\([^)]*\)")
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "le", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    stripped = PROMQL_NOT_NAMES.sub(" ", expr)
    return {m.group(1) for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", stripped)
            if m.group(1).lower() not in PROMQL_KEYWORDS}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard, rows' nested panels included."""
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [*doc["panels"], *(p for row in doc["panels"] for p in row.get("panels", []))]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel.get("targets", [])]


def scraped_names(url: str) -> set[str]:
    """The sample names a live metrics page exports, including those of labelled metrics that have
    no sample yet (a counter nobody incremented: only its TYPE line is there)."""
    status, _, body = http_get(url)
    assert status == 200, body[:500]
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("", "_count", "_sum"),
                "gauge": ("",), "unknown": ("",), "info": ("_info",), "stateset": ("",), "gaugehistogram": ("_bucket",)}
    names = set()
    for family in text_string_to_metric_families(body.decode("utf-8")):
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


async def test_every_dashboard_query_reads_metrics_that_are_exported(homeserver, bot_process):
    port = free_port()
    started(bot_process("echo", ECHO, options={"metrics_port": port}))
    exported = (scraped_names(homeserver.hs.metrics_url()) | scraped_names(f"http://127.0.0.1:{port}/metrics")
                | exported_metric_names())  # + the sanitizer's, a bot this test does not start
    assert {"synapse_http_server_requests_received_total", "lgwan_chat_bot_events_handled_total",
            "lgwan_chat_bookmarks_feed_lag_seconds_bucket", "process_cpu_seconds_total"} <= exported
    queries = dashboard_queries()
    assert len(queries) > 20
    for title, expr in queries:
        used = metric_names(expr)
        assert used, (title, expr)
        assert used <= exported | set(EXTERNAL_METRICS), (title, sorted(used - exported - set(EXTERNAL_METRICS)))


def test_the_dashboard_shows_every_suite_metric_and_every_alert():
    queries = dashboard_queries()
    used = set().union(*(metric_names(expr) for _, expr in queries))
    families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in exported_metric_names()}
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in used}
    assert families <= shown, sorted(families - shown)
    rules = [rule for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]
    by_title = dict(queries)
    for rule in rules:  # one panel per alert, named after it, showing exactly its condition
        assert " ".join(by_title.get(rule["alert"], "").split()) == " ".join(rule["expr"].split()), rule["alert"]


def suite_metric_labels() -> dict[str, set[str]]:
    """Sample name -> its label names, for every metric the suite exports."""
    from prometheus_client.metrics import MetricWrapperBase

    import bots.runtime.metrics as bot_metrics
    import bots.sanitizer.engine.metrics as sanitizer_metrics
    import bots.sanitizer.metrics as sanitizer_queue_metrics
    import synapse_modules._metrics as module_metrics

    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    labels: dict[str, set[str]] = {}
    for module in (module_metrics, bot_metrics, sanitizer_metrics, sanitizer_queue_metrics):
        for metric in vars(module).values():
            if isinstance(metric, MetricWrapperBase):
                for family in metric.describe():
                    for suffix in suffixes[family.type]:
                        bucket = {"le"} if suffix == "_bucket" else set()
                        labels[family.name + suffix] = set(metric._labelnames) | bucket
    return labels


def labels_used(expr: str) -> set[str]:
    """Label names a PromQL expression groups by or matches on."""
    used = set()
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        used |= {name.strip() for name in grouping.split(",") if name.strip()}
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        used |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
    return used


def test_the_dashboard_and_alerts_use_only_labels_the_suite_metrics_have():
    """A label renamed in the code (the refusals' ``entrance`` became ``zone``) must be renamed in
    every panel's grouping and legend and every alert, or they would show one empty series."""
    labels = suite_metric_labels()
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [*doc["panels"], *(p for row in doc["panels"] for p in row.get("panels", []))]
    rules = [rule for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"] for rule in group["rules"]]
    alerts = {rule["alert"] for rule in rules}
    # a panel showing an alert's condition has one legend for all of them ({{bot}}{{instance}}): not read
    uses = [(panel["title"], target["expr"], "" if panel["title"] in alerts else target.get("legendFormat", ""))
            for panel in panels for target in panel.get("targets", [])]
    uses += [(rule["alert"], rule["expr"], " ".join(rule["annotations"].values())) for rule in rules]
    checked = 0
    for title, expr, text in uses:
        used = metric_names(expr)
        if not used or not used <= labels.keys():  # Synapse's or an exporter's metrics: not the suite's to know
            continue
        allowed = set().union(*(labels[name] for name in used)) | {"instance", "job"}
        # grouping and matchers, the legend's {{label}}, an alert text's {{ $labels.label }}
        wanted = labels_used(expr) | set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text)) \
            | set(re.findall(r"\$labels\.(\w+)", text))
        assert wanted <= allowed, (title, sorted(wanted - allowed))
        checked += 1
    assert checked > 10
    refusals = [(expr, text) for _, expr, text in uses if "lgwan_chat_refusals_total" in expr]
    assert refusals and all("zone" in labels_used(expr) and "{{zone}}" in text for expr, text in refusals)


def test_every_dashboard_query_parses(tmp_path):
    """Each query as a recording rule of a throwaway rules file: promtool parses it as Prometheus would."""
    queries = dashboard_queries()
    rules = [{"record": f"lgwan_chat_dashboard_query_{n}", "expr": expr} for n, (_, expr) in enumerate(queries)]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, allow_unicode=True))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_the_documented_scrape_job_for_the_certificate_alerts_is_valid(tmp_path):
    """The admin guide's prometheus.yml snippet (ja and en, the same), with the suite's rules, as
    Prometheus would load it; its job name is the one the certificate alerts select."""
    from lgwan_chat.core import SOURCE_ROOT

    assert SOURCE_ROOT is not None
    snippets = []
    for guide in ("admin-guide.ja.md", "admin-guide.en.md"):
        text = (SOURCE_ROOT / "docs" / guide).read_text(encoding="utf-8")
        block = text.split("<!-- prometheus-entrances -->\n```yaml\n", 1)[1].split("```", 1)[0]
        snippets.append(block)
    assert snippets[0] == snippets[1]
    config = yaml.safe_load(snippets[0])
    job = config["scrape_configs"][0]["job_name"]
    assert all(f'job="{job}"' in rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"]
               for rule in group["rules"] if "probe_ssl" in rule["expr"])
    config["rule_files"] = [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_the_sanitizer_queue_shows_waiting_and_running_files_and_the_oldest_wait():
    """The queue as Prometheus scrapes it from the bot's metrics port (the same registry)."""
    from prometheus_client import REGISTRY, generate_latest

    from bots.runtime.storage import RUNTIME_MIGRATIONS, Storage
    from bots.sanitizer.app import SanitizerBot
    from bots.sanitizer.queue import FileQueue

    def scraped() -> dict[str, float]:
        text = generate_latest(REGISTRY).decode()
        return {(s.name + ("." + s.labels["state"] if "state" in s.labels else "")): s.value
                for f in text_string_to_metric_families(text) if f.name.startswith("lgwan_chat_sanitizer_queue")
                for s in f.samples}

    storage = Storage()
    storage.migrate("runtime", RUNTIME_MIGRATIONS)
    storage.migrate("sanitizer", SanitizerBot.migrations)
    release = asyncio.Event()

    async def run(job) -> None:
        await release.wait()

    queue = FileQueue(storage, concurrency=1, small_bytes=1000, run=run)
    assert scraped() == {"lgwan_chat_sanitizer_queue_files.waiting": 0, "lgwan_chat_sanitizer_queue_files.running": 0,
                         "lgwan_chat_sanitizer_queue_oldest_waiting_seconds": 0}
    for n in range(3):
        queue.add("!room:x", {"event_id": f"$file{n}", "sender": "@a:x", "content": {}}, 5000)
    await asyncio.sleep(1.1)
    now = scraped()
    assert now["lgwan_chat_sanitizer_queue_files.waiting"] == 2 and now["lgwan_chat_sanitizer_queue_files.running"] == 1
    assert now["lgwan_chat_sanitizer_queue_oldest_waiting_seconds"] >= 1
    release.set()
    for _ in range(50):
        if scraped()["lgwan_chat_sanitizer_queue_files.running"] == 0:
            break
        await asyncio.sleep(0.05)
    assert scraped() == {"lgwan_chat_sanitizer_queue_files.waiting": 0, "lgwan_chat_sanitizer_queue_files.running": 0,
                         "lgwan_chat_sanitizer_queue_oldest_waiting_seconds": 0}
    await queue.stop()


def test_a_file_waiting_ten_minutes_for_the_sanitizer_alerts(tmp_path):
    # the oldest file's wait grows by 60 s a minute from minute 0; another bot's queue keeps moving
    series = [('lgwan_chat_sanitizer_queue_oldest_waiting_seconds{instance="stuck"}', "0+60x30"),
              ('lgwan_chat_sanitizer_queue_oldest_waiting_seconds{instance="moving"}', "30x30")]
    promtool_test(tmp_path, series, "12m", [])  # over 600 s only since minute 11: "for: 5m" not yet
    promtool_test(tmp_path, series, "17m", [{"alertname": "LgwanChatSanitizerQueueStuck", "severity": "warning",
                                             "instance": "stuck"}])
