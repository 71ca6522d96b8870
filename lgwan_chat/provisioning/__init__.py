"""Organisation provisioning: rooms and spaces made from ``organisation.yaml``.

``plan`` (pure: what the YAML asks for, the plan of changes), ``apply`` (reading
a homeserver and applying a plan over the Matrix APIs), ``cli``
(``lgwan-chat provision``). Staff who register later are joined by the Synapse
module ``synapse_modules.provisioning.ProvisioningModule``.
"""
