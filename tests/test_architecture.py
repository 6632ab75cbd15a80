"""The shape of the house (docs/architecture.md): wings whose imports run one way, tasks at the
edge, and rooms small enough to hold in one's head."""

import ast
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
APPS = ("config", "digest", "subscriptions")
# Lowest first: a wing may import the wings before it, never one after it.
WINGS = ("ingest", "matching", "feedback", "delivery", "web", "desk")
# Where work gets scheduled: thin callers of the wings' functions, and the tasks themselves.
EDGES = ("views.py", "admin.py", "management", "tasks.py", "templatetags", "urls.py")
MAX_LINES = 400


def python_modules(*roots: str) -> list[Path]:
    return sorted(
        path
        for root in roots
        for path in (PROJECT_DIR / root).rglob("*.py")
        if "migrations" not in path.parts
    )


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function, spelled in full."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def wing_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "digest" and parts[1] in WINGS else None


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts)


def test_every_wing_is_a_folder():
    for wing in WINGS:
        assert (PROJECT_DIR / "digest" / wing / "__init__.py").is_file(), wing


def test_imports_between_wings_run_one_way():
    backwards = []
    for path in python_modules("digest"):
        own = wing_of(module_name(path))
        if own is None:
            continue
        for target in imported_modules(path):
            other = wing_of(target)
            if other and other != own and WINGS.index(other) > WINGS.index(own):
                backwards.append(f"{module_name(path)} -> {target}")
    assert backwards == []


def test_only_the_edges_import_tasks():
    """Feature modules never schedule work: views, commands and the admin's receivers
    do, after commit (the desk's admin asks through digest.desk.signals)."""
    offenders = [
        module_name(path)
        for path in python_modules(*APPS)
        if {"digest.tasks", "subscriptions.tasks"} & imported_modules(path)
        and not any(edge in path.relative_to(PROJECT_DIR).parts for edge in EDGES)
    ]
    assert offenders == []


def test_subscriptions_never_imports_digest():
    offenders = [
        f"{module_name(path)} -> {target}"
        for path in python_modules("subscriptions")
        for target in imported_modules(path)
        if target == "digest" or target.startswith("digest.")
    ]
    assert offenders == []


@pytest.mark.parametrize("root", [*APPS, "tests", "bench"])
def test_no_module_is_over_400_lines(root):
    too_long = {
        module_name(path): lines
        for path in python_modules(root)
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}


def test_no_grab_bag_modules():
    names = {path.stem for path in python_modules(*APPS)}
    assert names.isdisjoint({"utils", "helpers", "manager", "misc", "common"})
