"""The shape of the house (docs/architecture.md), checked by walking the source with `ast`.

- Imports run one way: `ivr/`, `ami_handlers/` and `linkage/` may import from `gateway/` only its ground floor
  (`gateway.basics`) and the contract (`gateway.contract`); those two import nothing else of the project.
- The service never imports the sandbox tooling or the CLI.
- Every `from M import name` names the module that defines `name` (no re-export shims) and no module imports
  another module's private (`_name`) names.
- No folder holds more than about 2,500 lines of Python directly; no module is over about 450 lines.
- The dialplan templates use only the channel variables and contexts that `gateway.contract` names.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from gateway import contract
from gateway.asterisk_render import render_all
from gateway.config import load_config

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gateway", "ivr", "ami_handlers", "linkage", "recordings")
GROUND = ("gateway.basics", "gateway.contract")
MAX_MODULE_LINES = 460
MAX_FOLDER_LINES = 2500


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {_module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _project_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) for every import of a project module anywhere in the file (also inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in PACKAGES:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] in PACKAGES]
    return found


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _defined_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def test_the_lower_packages_import_from_gateway_only_its_ground_floor_and_the_contract():
    wrong = [f"{SOURCES[m].relative_to(ROOT)}:{line}: {target}"
             for m in SOURCES if _within(m, ("ivr", "ami_handlers", "linkage", "recordings"))
             for line, target, _ in _project_imports(SOURCES[m])
             if _within(target, ("gateway",)) and not _within(target, GROUND)]
    assert wrong == []


def test_the_ground_floor_and_the_contract_import_nothing_else_of_the_project():
    wrong = [f"{SOURCES[m].relative_to(ROOT)}:{line}: {target}" for m in SOURCES if _within(m, GROUND)
             for line, target, _ in _project_imports(SOURCES[m]) if not _within(target, GROUND)]
    assert wrong == []


def test_the_service_does_not_import_the_sandbox_or_the_cli():
    apart = ("gateway.sandbox", "gateway.cli")
    wrong = [f"{SOURCES[m].relative_to(ROOT)}:{line}: {target}" for m in SOURCES if not _within(m, apart)
             for line, target, _ in _project_imports(SOURCES[m]) if _within(target, apart)]
    assert wrong == []


def test_every_import_names_the_defining_module_and_no_private_name():
    wrong = []
    importers = [*SOURCES.values(), *sorted((ROOT / "bench").rglob("*.py")), *sorted((ROOT / "scripts").rglob("*.py"))]
    for path in importers:
        for line, target, names in _project_imports(path):
            if target not in SOURCES:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: no module {target}")
                continue
            defined = _defined_names(SOURCES[target])
            for name in names:
                if f"{target}.{name}" in SOURCES:
                    continue  # a submodule
                if name not in defined:
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: {target} does not define {name}")
                elif name.startswith("_"):
                    wrong.append(f"{path.relative_to(ROOT)}:{line}: private {target}.{name}")
    assert wrong == []


def test_no_module_is_too_long_and_no_folder_holds_too_much_directly():
    long_modules = {str(p.relative_to(ROOT)): n for p in SOURCES.values()
                    if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    folders: dict[Path, int] = {}
    for p in SOURCES.values():
        folders[p.parent] = folders.get(p.parent, 0) + len(p.read_text(encoding="utf-8").splitlines())
    full = {str(d.relative_to(ROOT)): n for d, n in folders.items() if n > MAX_FOLDER_LINES}
    assert long_modules == {} and full == {}


def _templates() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "asterisk_conf").glob("*.conf"))}


def test_the_dialplan_uses_only_the_contracts_channel_variables():
    # HOTLINE_LINKAGE_I/_T/_DIAL/HOTLINE_CONFIRM are the dialplan's own loop and Read() variables, never set or
    # read by the gateway.
    local = {"HOTLINE_LINKAGE_I", "HOTLINE_LINKAGE_T", "HOTLINE_LINKAGE_DIAL", "HOTLINE_CONFIRM", "HOTLINE_FALLBACK"}
    rendered = render_all(load_config(), "secret")
    used = {name for text in rendered.values()
            for name in re.findall(r"(?<![A-Z])HOTLINE_[A-Z_]+\b", re.sub(r"^\s*;.*$", "", text, flags=re.M))}
    assert used - local - contract.DIALPLAN_VARS == set()
    # every variable of the contract is one the dialplan or the AMI events carry, but the menu's emergency,
    # which the gateway sets for the agent leg only
    assert contract.DIALPLAN_VARS - used == {contract.EMERGENCY_VAR}


def test_the_dialplan_contexts_are_the_contracts():
    text = _templates()["extensions.conf"]
    declared = set(re.findall(r"^\[(hotline-[a-z-]+)\]", text, flags=re.M))
    assert declared == contract.DIALPLAN_CONTEXTS


@pytest.mark.parametrize("action", [contract.ACTION_HANGUP, contract.ACTION_QUEUE, contract.ACTION_LINKAGE])
def test_the_dialplan_acts_on_each_action_value(action):
    assert f'"${{{contract.ACTION_VAR}}}" = "{action}"' in _templates()["extensions.conf"]


def test_the_ami_user_receives_the_contracts_channel_variables():
    rendered = render_all(load_config(), "secret")["manager.conf"]
    assert f"\nchannelvars = {','.join(contract.AMI_CHANNEL_VARS)}\n" in rendered
