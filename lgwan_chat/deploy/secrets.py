"""The deployment's secrets: generated on the first run, read back on every later run.

Each is a file in ``OUTDIR/secrets/`` (directory 0700, files 0600): re-running ``deploy init``
never changes a secret (sessions, the federation key and bot passwords stay valid), and a
secret an admin replaced by hand is used as it is.
"""

from __future__ import annotations

import io
import os
import secrets as random
from pathlib import Path

import attrs

from lgwan_chat.operations.deployment import BACKUP_KEY
from lgwan_chat.templates import write_private

SYNAPSE_SECRETS = ("registration_shared_secret", "macaroon_secret_key", "form_secret", "worker_replication_secret",
                   "turn_shared_secret")
#: The key backups' manifests are signed with (lgwan_chat.operations): made now so that the admin can
#: keep a copy off the machine from day one (a backup never holds it).
OPERATIONS_SECRETS = (Path(BACKUP_KEY).name,)


@attrs.frozen
class Secrets:
    values: dict[str, str]
    directory: Path

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def signing_key(self) -> Path:
        return self.directory / "signing.key"


def private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def ensure(outdir: Path, bots: tuple[str, ...], dry_run: bool = False) -> tuple[Secrets, list[Path]]:
    """The secrets (made where missing unless ``dry_run``) and the files made now."""
    directory = outdir / "secrets"
    if not dry_run:
        private_dir(directory)
    made: list[Path] = []
    values: dict[str, str] = {}
    for name in (*SYNAPSE_SECRETS, *OPERATIONS_SECRETS, *(f"{bot}-bot.password" for bot in bots)):
        path = directory / name
        if path.is_file():
            values[name] = path.read_text(encoding="utf-8").strip()
            continue
        values[name] = random.token_urlsafe(32 if "password" not in name else 18)
        made.append(path)
        if not dry_run:
            write_private(path, values[name] + "\n")
    key = directory / "signing.key"
    if not key.is_file():
        made.append(key)
        if not dry_run:
            from signedjson.key import generate_signing_key, write_signing_keys

            text = io.StringIO()
            write_signing_keys(text, [generate_signing_key("a_" + random.token_hex(2))])
            write_private(key, text.getvalue())
    return Secrets(values, directory), made
