"""House rule: imports point config → provider → synology → accounts → hub-wide.

Checked on the source (every import statement, also inside functions): the hub-wide core
(`identityhub/*.py`) imports no synology code, and synology imports neither the provider
(`identityhub.oidc`) nor the config layer (`identityhub.config`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module `path` imports (relative imports resolved against `package`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in files:
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        for module in sorted(imported_modules(path, package)):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


def test_the_hub_wide_core_imports_no_synology_code():
    assert offenders(sorted((ROOT / "identityhub").glob("*.py")), ("synology",)) == []


def test_synology_imports_neither_the_provider_nor_the_config():
    files = [p for p in sorted((ROOT / "synology").rglob("*.py")) if "migrations" not in p.parts]
    assert offenders(files, ("identityhub.oidc", "identityhub.config")) == []


@pytest.mark.parametrize(
    ("source", "package"),
    [("from synology.models import NAS", "identityhub"), ("import synology.sync", "identityhub"),
     ("from ..oidc import keys", "identityhub.config"), ("from . import models", "synology")],
)
def test_the_check_sees_imports_inside_functions(tmp_path, source, package):
    probe = tmp_path / "probe.py"
    probe.write_text(f"def f():\n    {source}\n")
    modules = imported_modules(probe, package)
    assert {"synology.models", "synology.sync", "identityhub.oidc", "synology.models"} & modules, modules


def test_no_app_imports_the_console():
    """The console sits above every app: accounts, synology, the provider and the hub-wide core
    reach it only through the scope registry."""
    files = [p for app in ("accounts", "synology", "identityhub") for p in sorted((ROOT / app).rglob("*.py"))
             if "migrations" not in p.parts]
    assert offenders(files, ("console",)) == []
