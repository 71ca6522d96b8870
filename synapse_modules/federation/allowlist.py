"""The federation allow-list file: trusted government homeservers, optionally signed.

The file (sample with every key explained: ``config/federation.yaml``)::

    federation:
      servers:
        - {name: pref.example.lg.jp, label: {ja: 〇〇県, en: X Prefecture}, role: prefecture}
      groups:
        - {alias: "#bousai:pref.example.lg.jp", label: {ja: 防災担当}, servers: [...]}
    signatures:            # written by `lgwan-chat federation sign`
      pref.example.lg.jp:
        ed25519:pref2026: <base64>

The signature is Matrix's own JSON signing (``signedjson``, as for events and
server keys): ed25519 over the canonical JSON of the whole document without its
``signatures`` key. Comments and layout are not signed; any change of a value is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue
from lgwan_chat.core.configcheck.schema import SERVER_NAME, bilingual_name, mapping, string, validate
from lgwan_chat.core.configcheck.yamlfile import load

ROLES = ("prefecture", "municipality", "other")
ROOM_ALIAS = string(pattern=r"^#[^:\s]+:[A-Za-z0-9.-]+(:[0-9]+)?$", **{"x-hint": "federation.hint_alias"})

SCHEMA = mapping(
    {
        # who maintains the list (shown by `lgwan-chat federation verify`)
        "issuer": bilingual_name(),
        "servers": {"type": "array", "minItems": 1, "items": mapping(
            {"name": SERVER_NAME, "label": bilingual_name(), "role": {"enum": list(ROLES)}},
            required=("name", "label", "role"))},
        "groups": {"type": "array", "items": mapping(
            {"alias": ROOM_ALIAS, "label": bilingual_name(),
             "servers": {"type": "array", "items": SERVER_NAME, "minItems": 1}},
            required=("alias", "label"))},
    },
    required=("servers",),
)

SIGNATURES_SCHEMA = {"type": "object", "additionalProperties": {
    "type": "object", "minProperties": 1,
    "additionalProperties": {"type": "string", "minLength": 1}}}


@attrs.frozen
class Server:
    name: str
    label: dict[str, str]
    role: str


@attrs.frozen
class Group:
    alias: str
    label: dict[str, str]
    #: servers whose staff may be members (all listed servers when the file does not say)
    servers: frozenset[str]


@attrs.frozen
class AllowList:
    file: str
    servers: tuple[Server, ...]
    groups: tuple[Group, ...]
    #: (signer, key id) of the signature that verified, None when not checked / not signed
    signed_by: tuple[str, str] | None = None

    @property
    def server_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.servers)

    def group(self, alias: str | None) -> Group | None:
        return next((g for g in self.groups if g.alias == alias), None)


class AllowListError(Exception):
    """The file cannot be used; ``issues`` say why (file and line included)."""

    def __init__(self, issues: list[ConfigIssue]):
        super().__init__("; ".join(i.format() for i in issues))
        self.issues = issues


def check_document(doc: Any) -> list[ConfigIssue]:
    """Problems of the ``federation:`` section (paths from the document's top level)."""
    section = doc.get("federation") if isinstance(doc, dict) else None
    if section is None:
        return [ConfigIssue(("federation",), "config.required", {"key": "federation"})]
    issues = [i.with_location(None, ("federation",)) for i in validate(section, SCHEMA)]
    if "signatures" in doc:
        issues += [i.with_location(None, ("signatures",)) for i in validate(doc["signatures"], SIGNATURES_SCHEMA)]
    if issues:
        return issues
    seen: dict[str, int] = {}
    for index, server in enumerate(section["servers"]):
        if server["name"] in seen:
            issues.append(ConfigIssue(("federation", "servers", index, "name"), "federation.duplicate_server",
                                      {"value": server["name"],
                                       "first": f"federation.servers[{seen[server['name']]}]"}))
        seen.setdefault(server["name"], index)
    aliases: set[str] = set()
    for index, group in enumerate(section.get("groups") or []):
        where = ("federation", "groups", index)
        if group["alias"] in aliases:
            issues.append(ConfigIssue(where + ("alias",), "federation.duplicate_group", {"value": group["alias"]}))
        aliases.add(group["alias"])
        home = group["alias"].split(":", 1)[1]
        if home not in seen:
            issues.append(ConfigIssue(where + ("alias",), "federation.group_server_unlisted", {"value": home}))
        for i, name in enumerate(group.get("servers") or []):
            if name not in seen:
                issues.append(ConfigIssue(where + ("servers", i), "federation.group_server_unlisted", {"value": name}))
    return issues


def _unsigned(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("signatures", "unsigned")}


def verify_key_from_base64(text: str) -> Any:
    from signedjson.key import decode_verify_key_base64

    return decode_verify_key_base64("ed25519", "configured", text.strip())


def check_signature(doc: dict, public_key_b64: str) -> tuple[list[ConfigIssue], tuple[str, str] | None]:
    """(issues, (signer, key id)): does one of the file's signatures verify with the key?"""
    from signedjson.sign import SignatureVerifyException, verify_signed_json

    signatures = doc.get("signatures") or {}
    if not signatures:
        return [ConfigIssue((), "federation.unsigned")], None
    verify_key = verify_key_from_base64(public_key_b64)
    for signer, keys in signatures.items():
        for key_id in keys:
            if not key_id.startswith("ed25519:"):
                continue
            verify_key.version = key_id.split(":", 1)[1]
            try:
                verify_signed_json({**_unsigned(doc), "signatures": {signer: {key_id: keys[key_id]}}},
                                   signer, verify_key)
            except SignatureVerifyException:
                continue
            return [], (signer, key_id)
    return [ConfigIssue(("signatures",), "federation.bad_signature")], None


def load_allowlist(path: str | Path, public_key_b64: str | None = None) -> AllowList:
    """The list in ``path``, its signature verified when a key is given; AllowListError if unusable."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AllowListError([ConfigIssue((), "config.file_unreadable", {"problem": e}, file=name)]) from e
    doc, lines, issues = load(text)
    if not issues:
        issues = check_document(doc)
    signed_by = None
    if not issues and public_key_b64:
        issues, signed_by = check_signature(doc, public_key_b64)
    if issues:
        raise AllowListError([i.with_location(name, lines=lines) for i in issues])
    section = doc["federation"]
    servers = tuple(Server(s["name"], dict(s["label"]), s["role"]) for s in section["servers"])
    everyone = frozenset(s.name for s in servers)
    groups = tuple(Group(g["alias"], dict(g["label"]), frozenset(g.get("servers") or everyone))
                   for g in section.get("groups") or [])
    return AllowList(file=name, servers=servers, groups=groups, signed_by=signed_by)


_SIGNATURES_BLOCK = re.compile(r"^signatures:.*(?:\n(?:[ \t#].*|))*", re.MULTILINE)


def sign_text(text: str, signing_key: Any, signer: str) -> str:
    """``text`` with its ``signatures:`` block replaced by a fresh signature (comments kept)."""
    import yaml
    from signedjson.sign import sign_json

    doc, _, issues = load(text)
    issues = issues or check_document(doc)
    if issues:
        raise AllowListError(issues)
    signed = sign_json(_unsigned(doc), signer, signing_key)
    body = _SIGNATURES_BLOCK.sub("", text).rstrip("\n")
    block = yaml.safe_dump({"signatures": signed["signatures"]}, allow_unicode=True, default_flow_style=False)
    head, rest = block.split("\n", 1)
    note = ("  # lgwan-chat federation sign が書き込む署名です。上の一覧を変えると無効になります。\n"
            "  # Written by `lgwan-chat federation sign`: any change to the list above invalidates it.\n")
    return f"{body}\n\n{head}\n{note}{rest}"


def whitelist(allowlist: AllowList, own_server: str | None) -> list[str]:
    """Synapse's ``federation_domain_whitelist`` for this list (own server included)."""
    names = list(dict.fromkeys(s.name for s in allowlist.servers))
    if own_server and own_server not in names:
        names.append(own_server)
    return names
