"""Configuration of the provisioning module (``config:`` of its ``modules:`` entry).

Every key is documented in ``config/modules.yaml`` and the admin guide.
"""

from __future__ import annotations

import attrs

from lgwan_chat.core.configcheck import typed
from lgwan_chat.core.configcheck.schema import USER_ID, string
from lgwan_chat.core.configcheck.typed import key


@attrs.frozen
class ProvisioningConfig:
    #: the organisation YAML that `lgwan-chat provision` applies (read again when it changes)
    organisation_file: str = key(schema=string())
    #: the provisioning account that made the rooms: it invites staff before they join
    provisioner: str = key(schema=USER_ID)
    #: also join staff at each login (catches people the YAML moved since the last provision run)
    join_on_login: bool = key(True, {"type": "boolean"})


check, parse = typed.module_functions(ProvisioningConfig)
