"""Chat as administrative records (行政文書): retention, legal hold, export.

- ``config``: the ``records:`` section of the organisation YAML (periods per room kind,
  the export signing key, the audit log), checked by ``lgwan-chat check-config``;
- ``retention``: Synapse's own retention support: the homeserver's ``retention:`` block
  (default policy for DMs and other rooms, purge job) and ``m.room.retention`` on the rooms
  the provisioning manages;
- ``holds``: legal hold (an admin exempts a room from purging), recorded in the room;
- ``export``: a readable, signed archive of a room's history (HTML, PDF, CSV), ``verify``;
- ``audit``: the append-only audit log of holds and exports.
"""
