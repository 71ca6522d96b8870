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
from lgwan_chat.core.configcheck import ConfigIssue

from .render import Layout

#: The suite's YAML of a deployment, checked one by one (file and line in each message).
SUITE_FILES = ("synapse/modules.yaml", "bots.yaml", "organisation.yaml")


def check(outdir: Path) -> list[ConfigIssue]:
    layout = Layout(outdir.resolve())
    issues: list[ConfigIssue] = []
    configs = layout.synapse_configs()
    for path in [*configs, *(outdir / name for name in SUITE_FILES)]:
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
    for path in [outdir, *outdir.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            issues.append(ConfigIssue((), "deploy.too_open", {"mode": oct(mode)}, file=str(path)))
    return issues
