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

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.issues import ConfigIssue, format_path
from lgwan_chat.core.configcheck.schema import string
from lgwan_chat.core.configcheck.typed import ConfigInvalid, derived, key
from lgwan_chat.core.i18n import Msg

from .allowlist import AllowList, AllowListError, load_allowlist, verify_key_from_base64, whitelist


def _load(config: FederationConfig) -> AllowList:
    key = config.signing_public_key
    if key:
        try:
            verify_key_from_base64(key)
        except Exception as e:  # bad base64 or wrong length
            raise ConfigInvalid([ConfigIssue(("signing_public_key",), "federation.bad_public_key",
                                             {"problem": e})]) from e
    try:
        return load_allowlist(config.allowlist_file, key)
    except AllowListError as e:
        raise ConfigInvalid([ConfigIssue(("allowlist",), "federation.allowlist_problem",
                                         {"file": f"{i.file}:{i.line}" if i.line else i.file,
                                          "key": format_path(i.path), "problem": Msg(i.key, **i.params)})
                             for i in e.issues]) from e


@attrs.frozen
class FederationConfig:
    #: path of the allow-list YAML (absolute, or relative to Synapse's working directory)
    allowlist_file: str = key(schema=string(), name="allowlist")
    #: the prefecture's ed25519 public key (base64, as `lgwan-chat federation generate-key`
    #: prints it); when set, the list must carry a valid signature by it
    signing_public_key: str | None = key(None, string())
    #: homeserver.yaml's federation_domain_whitelist must equal the list (plus this server):
    #: refuse to start when not (default), or only warn in the log
    whitelist_check: str = key("refuse", {"enum": ["refuse", "warn"]})
    #: the list itself, loaded (and its signature checked) from ``allowlist_file``
    allowlist: AllowList = derived(_load)


check, parse = typed.module_functions(FederationConfig)


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
    config, _ = typed.checked(FederationConfig, raw)
    if config is None or config.whitelist_check != "refuse":
        return []
    problem = whitelist_problem(config.allowlist, homeserver.get("federation_domain_whitelist"),
                                homeserver.get("server_name"))
    # reported at the module entry (the caller prefixes modules[i].config)
    return [attrs.evolve(problem, path=("whitelist_check",))] if problem else []
