"""``lgwan-chat deploy``: one answers file to a complete production deployment.

- ``answers``: the answers file (typed, validated with Japanese / English messages);
- ``routing``: which Synapse process serves which request (one table, from Synapse's
  documentation of its workers);
- ``topology``: the processes of a ``single`` or ``workers`` deployment and their ports;
- ``secrets``: generated once, kept on every re-run (0600 files in a 0700 directory);
- ``render``: every file of the deployment, as text;
- ``apply``: writes them (keeping secrets and what the admin owns), shows a diff;
- ``check``: validates a deployment directory with check-config's rules and messages;
- ``accounts``: once Synapse runs, the admin's and the bots' accounts (``deploy accounts``);
- ``move_to_postgres``: growing from SQLite to PostgreSQL, the suite's module tables included
  (``deploy move-to-postgres``).
"""
