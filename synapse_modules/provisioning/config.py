"""Configuration of the provisioning module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide.
"""

from __future__ import annotations

from typing import Any

import attrs

from lgwan_chat.core.configcheck.issues import ConfigIssue, raise_config_error
from lgwan_chat.core.configcheck.schema import USER_ID, mapping, string, validate

SCHEMA = mapping(
    {
        # the organisation YAML that `lgwan-chat provision` applies (read again when it changes)
        "organisation_file": string(),
        # the provisioning account that made the rooms: it invites staff before they join
        "provisioner": USER_ID,
        # also join staff at each login (catches people the YAML moved since the last provision run)
        "join_on_login": {"type": "boolean"},
    },
    required=("organisation_file", "provisioner"),
)


@attrs.frozen
class ProvisioningConfig:
    organisation_file: str
    provisioner: str
    join_on_login: bool = True


def check(raw: Any) -> list[ConfigIssue]:
    return validate(raw, SCHEMA)


def parse(raw: Any) -> ProvisioningConfig:
    raw = raw or {}
    raise_config_error(check(raw))
    return ProvisioningConfig(organisation_file=raw["organisation_file"], provisioner=raw["provisioner"],
                              join_on_login=raw.get("join_on_login", True))
