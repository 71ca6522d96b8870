"""Operations on a running deployment: backup and restore (``lgwan-chat backup`` / ``restore``).

A deployment is the folder ``lgwan-chat deploy init`` writes (``synapse/homeserver.yaml``,
``deploy.yaml``, ``modules.yaml``, ``bots.yaml``, ``secrets/``) or the demo's ``var/demo``
(``homeserver.yaml``, ``overrides.yaml``, ``bots.yaml``): ``deployment.find`` reads where each
piece of data lives from those files, never from a list kept here.
"""
