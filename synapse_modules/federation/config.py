"""Configuration of the federation allow-list module (``config:`` of its ``modules:`` entry).

    - module: synapse_modules.federation.FederationAllowListModule
      config:
        allowlist: /etc/lgwan-chat/federation.yaml   # the list (config/federation.yaml)
        signing_public_key: "<base64>"                # the prefecture's public key: list must be signed
        whitelist_check: refuse                       # federation_domain_whitelist must match (or: warn)
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue, format_path, raise_config_error
from lgwan_chat.core.i18n import Msg
from lgwan_chat.core.configcheck.schema import mapping, string, validate

from .allowlist import AllowList, AllowListError, load_allowlist, verify_key_from_base64, whitelist

SCHEMA = mapping(
    {
        # path of the allow-list YAML (absolute, or relative to Synapse's working directory)
        "allowlist": string(),
        # the prefecture's ed25519 public key (base64, as `lgwan-chat federation generate-key`
        # prints it); when set, the list must carry a valid signature by it
        "signing_public_key": string(),
        # homeserver.yaml's federation_domain_whitelist must equal the list (plus this server):
        # refuse to start when not (default), or only warn in the log
        "whitelist_check": {"enum": ["refuse", "warn"]},
    },
    required=("allowlist",),
)

DEFAULTS: dict[str, Any] = {"signing_public_key": None, "whitelist_check": "refuse"}


@attrs.frozen
class FederationConfig:
    allowlist: AllowList
    signing_public_key: str | None
    whitelist_check: str


def _load(raw: dict) -> tuple[AllowList | None, list[ConfigIssue]]:
    issues = validate(raw, SCHEMA)
    if issues:
        return None, issues
    key = raw.get("signing_public_key")
    if key:
        try:
            verify_key_from_base64(key)
        except Exception as e:  # bad base64 or wrong length
            return None, [ConfigIssue(("signing_public_key",), "federation.bad_public_key", {"problem": e})]
    try:
        return load_allowlist(raw["allowlist"], key), []
    except AllowListError as e:
        return None, [ConfigIssue(("allowlist",), "federation.allowlist_problem",
                                  {"file": f"{i.file}:{i.line}" if i.line else i.file, "key": format_path(i.path),
                                   "problem": Msg(i.key, **i.params)})
                      for i in e.issues]


def check(raw: Any) -> list[ConfigIssue]:
    return _load(raw)[1]


def whitelist_problem(allowlist: AllowList, configured: Any, own_server: str | None) -> ConfigIssue | None:
    """Why homeserver.yaml's ``federation_domain_whitelist`` does not match the list, if it does not."""
    expected = set(whitelist(allowlist, own_server))
    if configured is None:
        return ConfigIssue(("federation_domain_whitelist",), "federation.whitelist_missing",
                           {"file": allowlist.file})
    configured = set(configured)
    if own_server:
        configured.add(own_server)  # this server's own name may be left out: never a federation peer
    if configured == expected:
        return None
    return ConfigIssue(("federation_domain_whitelist",), "federation.whitelist_mismatch",
                       {"file": allowlist.file, "missing": ", ".join(sorted(expected - configured)) or "-",
                        "extra": ", ".join(sorted(configured - expected)) or "-"})


def check_with_homeserver(raw: dict, homeserver: dict) -> list[ConfigIssue]:
    """In a full homeserver.yaml: the whitelist must match the list."""
    allowlist, issues = _load(raw)
    if allowlist is None or {**DEFAULTS, **raw}["whitelist_check"] != "refuse":
        return []
    problem = whitelist_problem(allowlist, homeserver.get("federation_domain_whitelist"),
                                homeserver.get("server_name"))
    # reported at the module entry (the caller prefixes modules[i].config)
    return [attrs.evolve(problem, path=("whitelist_check",))] if problem else []


def parse(raw: Any) -> FederationConfig:
    raw = raw or {}
    allowlist, issues = _load(raw)
    raise_config_error(issues)
    merged = {**DEFAULTS, **raw}
    assert allowlist is not None
    return FederationConfig(allowlist=allowlist, signing_public_key=merged["signing_public_key"],
                            whitelist_check=merged["whitelist_check"])
