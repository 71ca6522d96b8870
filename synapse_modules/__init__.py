"""Synapse modules of the lgwan-chat suite, loaded through homeserver.yaml's ``modules:`` block."""
