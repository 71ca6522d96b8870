"""Packages import downward only (docs/architecture.md, "Layers").

Every ``import`` in the suite's packages (at the top of a file, inside a function, under
``TYPE_CHECKING``: ast sees them all) is checked against the layer table below. A forbidden
import is a failure naming the file, the line, the importer's layer and the imported one.
The libraries each layer imports must come with the setup.cfg extra that installs that layer.
"""

from __future__ import annotations

import ast
import configparser
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lgwan_chat", "bots", "synapse_modules")

CORE = "core"                      # lgwan_chat.core: i18n, configcheck, organisation, routes, ...
MODULES = "synapse_modules"        # the Synapse modules
RUNTIME = "bots.runtime"           # the bots' shared runtime
FEATURE = "bot feature"            # one bot: bots.memo, bots.polls, bots.sanitizer
BOTS_INDEX = "bots"                # bots/__init__.py: the list of bots, imports nothing
PACKAGE_ROOT = "lgwan_chat"        # lgwan_chat/__init__.py: runs whenever core is imported
OPERATIONS = "operations"          # the rest of lgwan_chat: CLI, demo, check-config's registry, ...

#: importer's layer -> the layers it may import (its own included where listed)
ALLOWED: dict[str, frozenset[str]] = {
    CORE: frozenset({CORE}),
    MODULES: frozenset({CORE, MODULES}),
    RUNTIME: frozenset({CORE, RUNTIME}),
    FEATURE: frozenset({CORE, RUNTIME, FEATURE}),  # FEATURE: its own feature only, see below
    BOTS_INDEX: frozenset(),
    PACKAGE_ROOT: frozenset(),
    OPERATIONS: frozenset({CORE, MODULES, RUNTIME, FEATURE, BOTS_INDEX, PACKAGE_ROOT, OPERATIONS}),
}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name; None for what is not the suite's (stdlib, libraries)."""
    parts = module.split(".")
    if parts[0] == "lgwan_chat":
        if len(parts) == 1:
            return PACKAGE_ROOT
        return CORE if parts[1] == "core" else OPERATIONS
    if parts[0] == "synapse_modules":
        return MODULES
    if parts[0] == "bots":
        if len(parts) == 1:
            return BOTS_INDEX
        return RUNTIME if parts[1] == "runtime" else FEATURE
    return None


def feature_of(module: str) -> str:
    """``bots.polls.app`` -> ``bots.polls``."""
    return ".".join(module.split(".")[:2])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of everything ``source`` imports, relative imports resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from pkg import sub``: the submodule is what is imported when it is one
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every import of ``source`` (the text of ``module``) that the layer table forbids."""
    importer = layer_of(module)
    assert importer is not None, module
    problems = []
    for line, target in imported_modules(source, module, is_package):
        imported = layer_of(target)
        if imported is None:
            continue
        if imported not in ALLOWED[importer]:
            problems.append(f"{module}:{line}: {importer} imports {target} ({imported})")
        elif importer == FEATURE and imported == FEATURE and feature_of(target) != feature_of(module):
            problems.append(f"{module}:{line}: bot feature {feature_of(module)} imports another bot's {target}")
    return problems


def suite_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_package_imports_downward_only():
    files = suite_files()
    assert len(files) > 100  # the walk found the suite, not an empty folder
    problems = [problem for path in files
                for problem in violations(path.read_text(encoding="utf-8"), module_name(path),
                                          path.name == "__init__.py")]
    assert problems == [], "\n".join(problems)


def test_every_layer_of_the_table_is_present():
    # the table describes the code as it is: each layer has files (a renamed package would
    # otherwise leave a layer that checks nothing)
    layers = {layer_of(module_name(p)) for p in suite_files()}
    assert layers == set(ALLOWED)


# The checker itself: each rule of the table, broken on purpose, is caught.

def test_core_importing_a_module_or_the_operations_is_caught():
    assert violations("from synapse_modules.zones import config\n", "lgwan_chat.core.routes") == [
        "lgwan_chat.core.routes:1: core imports synapse_modules.zones.config (synapse_modules)"]
    assert violations("def f():\n    from lgwan_chat import checkconfig\n", "lgwan_chat.core.organisation") == [
        "lgwan_chat.core.organisation:2: core imports lgwan_chat.checkconfig (operations)"]
    assert violations("import bots.runtime.clock\n", "lgwan_chat.core.i18n", is_package=True) != []


def test_a_bot_importing_another_bot_or_the_cli_is_caught():
    assert violations("from bots.polls.dates import parse_deadline\n", "bots.sanitizer.app") == [
        "bots.sanitizer.app:1: bot feature bots.sanitizer imports another bot's bots.polls.dates.parse_deadline"]
    assert violations("from lgwan_chat.guests_cli import date_of\n", "bots.sanitizer.app") == [
        "bots.sanitizer.app:1: bot feature imports lgwan_chat.guests_cli.date_of (operations)"]
    # its own modules, relative or absolute, and the layers below are fine
    assert violations("from .store import Poll\nfrom bots.polls import events\nfrom bots.runtime import Bot\n"
                      "from lgwan_chat.core.i18n import t\n", "bots.polls.app") == []


def test_the_runtime_and_the_modules_importing_upward_are_caught():
    assert violations("from bots.polls import events\n", "bots.runtime.bot") != []
    assert violations("from lgwan_chat.homeserver import http_json\n", "bots.runtime.accounts") != []
    assert violations("from bots.runtime import clock\n", "synapse_modules.zones.config") != []
    assert violations("from ..rules import with_suffix\n", "synapse_modules.guests.rest.guests") == []
    assert violations("from lgwan_chat.core.routes import ROOMS\n", "synapse_modules._rest") == []


# --- each layer's libraries come with its extra (setup.cfg) ---

#: imports no pip package provides: LibreOffice's Python bridge (a system package, see
#: scripts/install-system-deps.sh), loaded by the office worker inside its sandbox
NOT_FROM_PIP = {"uno", "com"}
#: raise_config_error is called only by the modules' parse_config, inside Synapse
DEFERRED_FOR_MODULES = {("lgwan_chat.core.configcheck.issues", "synapse")}


def setup_cfg() -> tuple[list[str], dict[str, list[str]]]:
    """``(install_requires, {extra: requirements})`` as setup.cfg declares them."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")

    def lines(text: str) -> list[str]:
        return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]

    return (lines(cfg["options"]["install_requires"]),
            {extra: lines(text) for extra, text in cfg["options.extras_require"].items()})


def installed_closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements install, their dependencies included (as installed here)."""
    names: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    stack = [Requirement(r) for r in requirements]
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        names.add(name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            depends = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in depends:
            dep = Requirement(text)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in {"", *req.extras}):
                stack.append(dep)
    return names


def extras_of(module: str) -> list[str]:
    """The extras that install ``module``'s layer (``postgres``: the optional database driver)."""
    layer = layer_of(module)
    if layer == CORE:
        return ["postgres"]
    if layer == MODULES:
        return ["modules", "postgres"]
    if module == "bots.sanitizer" or module.startswith("bots.sanitizer."):
        return ["sanitizer", "postgres"]
    if layer in (RUNTIME, FEATURE, BOTS_INDEX):
        return ["bots", "postgres"]
    return ["all", "postgres"]


def libraries(path: Path) -> set[str]:
    """Top-level names of what ``path`` imports that are neither stdlib nor the suite's own."""
    found = set()
    for _, target in imported_modules(path.read_text(encoding="utf-8"), module_name(path),
                                      path.name == "__init__.py"):
        top = target.split(".")[0]
        if top in sys.stdlib_module_names or top in PACKAGES or top == "__future__" or top in NOT_FROM_PIP:
            continue
        if (path.parent / f"{top}.py").is_file():  # a sibling script module (the sandboxed workers)
            continue
        found.add(top)
    return found


def test_each_layer_imports_only_what_its_extra_installs():
    base, extras = setup_cfg()
    provides = metadata.packages_distributions()
    closures: dict[tuple[str, ...], set[str]] = {}
    problems = []
    for path in suite_files():
        module = module_name(path)
        wanted = tuple(extras_of(module))
        if wanted not in closures:
            closures[wanted] = installed_closure(base + [r for e in wanted for r in extras[e]])
        for top in sorted(libraries(path)):
            if (module, top) in DEFERRED_FOR_MODULES:
                continue
            dists = {canonicalize_name(d) for d in provides.get(top, [])}
            if not dists & closures[wanted]:
                problems.append(f"{module}: imports {top} ({', '.join(sorted(dists)) or 'not installed'}), "
                                f"which {' + '.join(['install_requires', *wanted])} does not install")
    assert problems == [], "\n".join(problems)


def test_the_test_and_all_extras_hold_every_part():
    base, extras = setup_cfg()
    names = {e: {canonicalize_name(Requirement(r).name) for r in reqs} for e, reqs in extras.items()}
    assert names["modules"] | names["bots"] | names["sanitizer"] <= names["all"]
    assert names["all"] <= names["test"]  # make installs .[test]: everything
    assert {canonicalize_name(Requirement(r).name) for r in base} == {"attrs", "jsonschema", "pyyaml"}
