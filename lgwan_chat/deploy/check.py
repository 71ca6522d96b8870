"""``lgwan-chat deploy check OUTDIR``: what deploy wrote, and what the admin edited since.

The suite's YAML files get check-config's rules and messages (the merged Synapse
configuration too, as Synapse reads it: zone listeners against the zone module), and every
file and directory is checked to be for its owner only.
"""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from lgwan_chat.checkconfig import check_document, check_file
from lgwan_chat.core.configcheck import ConfigIssue, load_file, locate

from .render import Layout

#: The suite's YAML of a deployment, checked one by one (file and line in each message).
SUITE_FILES = ("synapse/modules.yaml", "bots.yaml", "organisation.yaml")


def _yaml_mapping(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def overridden(outdir: Path) -> list[ConfigIssue]:
    """Warnings: keys the admin set in homeserver.yaml that deploy.yaml (read after it) overrides."""
    layout = Layout(outdir.resolve())
    homeserver, deploy = layout.synapse_configs()[:2]
    owned = _yaml_mapping(deploy)
    doc, lines, problems = load_file(homeserver)
    if problems or not isinstance(doc, dict):
        return []  # check() reports a homeserver.yaml it cannot read
    return locate([ConfigIssue((key,), "deploy.key_overridden", {"key": key, "owner": deploy.name})
                   for key in doc if key in owned], homeserver, lines)


def _turn_secret(merged: dict) -> str | None:
    """The TURN shared secret as Synapse reads it (inline or from turn_shared_secret_path)."""
    if merged.get("turn_shared_secret"):
        return str(merged["turn_shared_secret"]).strip()
    try:
        return Path(merged["turn_shared_secret_path"]).read_text(encoding="utf-8").strip()
    except (KeyError, TypeError, OSError, UnicodeDecodeError):
        return None


def _coturn_secret(conf: Path) -> str | None:
    for line in conf.read_text(encoding="utf-8").splitlines():
        key, _, value = line.strip().partition("=")
        if key.strip() == "static-auth-secret":
            return value.strip()
    return None


def check(outdir: Path) -> list[ConfigIssue]:
    layout = Layout(outdir.resolve())
    issues: list[ConfigIssue] = []
    configs = layout.synapse_configs()
    for path in [*configs, *(outdir / name for name in SUITE_FILES), layout.coturn_conf]:
        if not path.is_file():
            issues.append(ConfigIssue((), "deploy.file_missing", {"value": path}, file=str(path)))
    if issues:
        return issues
    for name in SUITE_FILES:
        issues += check_file(outdir / name)
    # What Synapse reads: the files merged key by key, later files first.
    merged: dict = {}
    for path in configs:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            issues.append(ConfigIssue((), "config.yaml_syntax", {"line": "?", "problem": e}, file=str(path)))
            continue
        if isinstance(doc, dict):
            merged.update(doc)
    issues += [i.with_location(" + ".join(p.name for p in configs)) for i in check_document(merged)]
    # coturn checks the credentials Synapse hands out with its own copy of the secret.
    if _coturn_secret(layout.coturn_conf) != _turn_secret(merged):
        issues.append(ConfigIssue(("static-auth-secret",), "deploy.turn_secret_mismatch",
                                  file=str(layout.coturn_conf)))
    for path in [outdir, *outdir.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            issues.append(ConfigIssue((), "deploy.too_open", {"mode": oct(mode)}, file=str(path)))
    return issues
