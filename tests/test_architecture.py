"""The layers of ARCHITECTURE.md hold: the import contract of pyproject.toml is kept, no
module imports another of the project from inside a function, no package's modules import
each other in a circle, and the rooms stay small enough to read."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "domain",
    "evidence",
    "casetrail",
    "projections",
    "workers",
    "web",
    "demo",
    "cli",
    "bench",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The application proper (service, stores, audit trail) stays readable in one sitting.
CASETRAIL_MAX_LINES = 4_500
MODULE_MAX_LINES = 600


def sources(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_the_layer_and_cycle_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_breaks_the_layer_contract(tmp_path: Path) -> None:
    """The contract can fail: the domain importing the web layer is reported."""
    for name in (*PACKAGES, "pyproject.toml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    clock = tmp_path / "domain" / "clock.py"
    clock.write_text(clock.read_text(encoding="utf8") + "\nimport web.app  # upward\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "domain.clock -> web.app" in result.stdout


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's algorithm over the modules: every set of two or more is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_another_in_a_circle() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    finally:
        sys.path.remove(str(ROOT))
    assert strongly_connected(graph) == []


def imports_inside_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf8"))
    lines = path.read_text(encoding="utf8").splitlines()
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            own = [name for name in names if name.split(".")[0] in PACKAGES]
            # An optional heavy dependency may be imported late; its line says so.
            if own and "optional:" not in lines[node.lineno - 1]:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {', '.join(own)}")
    return found


def test_no_project_import_inside_a_function_body() -> None:
    found = [hit for path in sources(*PACKAGES) for hit in imports_inside_functions(path)]
    assert found == []


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf8").splitlines())


def test_the_application_package_stays_small() -> None:
    assert sum(line_count(path) for path in sources("casetrail")) < CASETRAIL_MAX_LINES


def test_no_module_outside_the_domain_is_too_long_to_read() -> None:
    packages = [name for name in PACKAGES if name != "domain"]
    too_long = {
        str(path.relative_to(ROOT)): line_count(path)
        for path in sources(*packages)
        if line_count(path) > MODULE_MAX_LINES
    }
    assert too_long == {}
