"""The package's layer rule (docs/ARCHITECTURE.md), checked on the source with ``ast``.

Applications (``cli``, ``demo``) on top; ``engine -> deploy -> pfa -> methods -> models``; ``data`` beside
``models`` (they never import each other); every layer may import the root modules ``scribbleseg.errors``,
``atomic_files`` and ``yaml_reading``. Inside the engine, :data:`ENGINE_ROOMS` says which room may import
which (training sits on top; inference imports no config or runs; evaluation and prediction never import
each other). No command module imports another; no folder holds more than 15 modules; no import circle (module-level
imports, ``if TYPE_CHECKING:`` ones included), and every module imports first in a fresh interpreter.
A violation names the file and the import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scribbleseg"

ALLOWED = {
    "errors": set(),
    "atomic_files": set(),
    "yaml_reading": set(),
    "models": {"models"},
    "data": {"data"},
    "methods": {"methods", "models"},
    "pfa": {"pfa", "methods", "models"},
    "deploy": {"deploy", "methods", "models", "data"},
    "engine": {"engine", "deploy", "pfa", "methods", "models", "data"},
    "demo": {"demo", "engine", "deploy", "pfa", "methods", "models", "data"},
    "cli": {"cli", "demo", "engine", "deploy", "pfa", "methods", "models", "data"},
}
# Inside the engine: the rooms each room may import ("" = the engine package itself).
ENGINE_ROOMS = {
    "config": {"config"},
    "runtime": {"runtime", "config"},
    "build": {"build", "config", "runtime"},
    "runs": {"runs", "config", "runtime", "build"},
    "inference": {"inference"},
    "evaluation": {"evaluation", "inference", "runtime"},
    "prediction": {"prediction", "inference", "runtime"},
    "figures": {"figures", "inference", "prediction", "runs", "build", "config"},
    "training": {"training", "config", "runtime", "build", "runs", "inference", "evaluation", "figures"},
}
MAX_MODULES_PER_FOLDER = 15
ALWAYS = {"errors", "atomic_files", "yaml_reading", ""}  # "" = the top-level package itself (e.g. ``scribbleseg.__version__``)
FORBIDDEN_THIRD_PARTY = {"torchvision", "timm"}


def _layer_of(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """Absolute module names imported by ``path`` (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package_parts = ["scribbleseg", *path.relative_to(package).parts[:-1]]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


SOURCES = sorted(p for p in PACKAGE.rglob("*.py"))


def layer_violations(path: Path, package: Path = PACKAGE) -> list[str]:
    """The imports of ``path`` (a file of the package rooted at ``package``) that break the layer rule."""
    layer = _layer_of(path, package)
    if layer in ("__init__", "__main__"):
        allowed = set(ALLOWED) if layer == "__main__" else set()
    else:
        allowed = ALLOWED.get(layer, set())
    bad = []
    for lineno, module in _imports(path, package):
        top = module.split(".")[0]
        if top in FORBIDDEN_THIRD_PARTY:
            bad.append(f"line {lineno}: {module} (broken on CPU images of this kind; not a dependency)")
        if top != "scribbleseg":
            continue
        target = module.split(".")[1] if "." in module else ""
        if target not in allowed and target not in ALWAYS:
            bad.append(f"line {lineno}: {module} (layer '{layer}' may import {sorted(allowed | ALWAYS - {''})})")
    return bad + room_violations(path, package)


def _room_of(path: Path, package: Path = PACKAGE) -> str | None:
    """The engine room of ``path`` (``None`` outside the engine or for the engine's own ``__init__``)."""
    rel = path.relative_to(package).parts
    return rel[1] if len(rel) > 2 and rel[0] == "engine" else None


def room_violations(path: Path, package: Path = PACKAGE) -> list[str]:
    """Imports of ``path`` that break the engine's room table, or import one command module from another."""
    bad = []
    rel = path.relative_to(package).parts
    room = _room_of(path, package)
    for lineno, module in _imports(path, package):
        parts = module.split(".")
        if room is not None and parts[:2] == ["scribbleseg", "engine"]:
            target = parts[2] if len(parts) > 2 else ""
            if target and target not in ENGINE_ROOMS.get(room, set()):
                bad.append(f"line {lineno}: {module} (engine room '{room}' may import "
                           f"{sorted(ENGINE_ROOMS.get(room, set()))})")
        own_folder = ["scribbleseg", *rel[:-1]]
        if (rel[0] == "cli" and rel[-1].endswith(("_command.py", "_commands.py")) and parts[:2] == ["scribbleseg", "cli"]
                and parts[-1].endswith(("_command", "_commands"))
                and (parts[:-1] != own_folder or own_folder == ["scribbleseg", "cli"])):
            bad.append(f"line {lineno}: {module} (a command module imports another command's module; only the "
                       f"modules of one command group share a folder and may import each other)")
    return bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_respect_layers(path: Path) -> None:
    bad = layer_violations(path)
    assert not bad, f"{path.relative_to(PACKAGE)} breaks the layer rule:\n" + "\n".join(bad)


def test_layer_checker_detects_an_upward_import(tmp_path: Path) -> None:
    """The checker itself must be able to fail: a models file importing the engine (and, relatively, a
    method module) is caught. The probe lives in a copy of the layout under tmp_path: the source tree is
    never written to."""
    package = tmp_path / "scribbleseg"
    (package / "models").mkdir(parents=True)
    fake = package / "models" / "_layering_probe.py"
    fake.write_text("from scribbleseg.engine import trainer\nfrom ..pfa import pfa_method\nfrom . import resnet\n")
    assert [m for _, m in _imports(fake, package)] == ["scribbleseg.engine", "scribbleseg.pfa", "scribbleseg.models"]
    bad = layer_violations(fake, package)
    assert len(bad) == 2 and "scribbleseg.engine" in bad[0] and "scribbleseg.pfa" in bad[1]


def test_room_checker_detects_a_forbidden_room_import(tmp_path: Path) -> None:
    """The room table can fail: inference importing the config and prediction importing evaluation are
    caught, while inference importing itself is not."""
    package = tmp_path / "scribbleseg"
    for room in ("inference", "prediction"):
        (package / "engine" / room).mkdir(parents=True)
    probe = package / "engine" / "inference" / "probe.py"
    probe.write_text("from scribbleseg.engine.config.schema import ExperimentConfig\nfrom . import views\n")
    bad = layer_violations(probe, package)
    assert len(bad) == 1 and "engine room 'inference'" in bad[0]
    probe2 = package / "engine" / "prediction" / "probe.py"
    probe2.write_text("from scribbleseg.engine.evaluation import evaluate\n")
    assert len(layer_violations(probe2, package)) == 1
    (package / "cli").mkdir()
    command = package / "cli" / "a_command.py"
    command.write_text("from scribbleseg.cli.b_command import thing\n")
    assert any("command module" in line for line in layer_violations(command, package))


def test_every_room_has_a_docstring_and_at_most_15_modules() -> None:
    folders = {path.parent for path in SOURCES}
    crowded = {str(f.relative_to(PACKAGE)): n for f in folders
               if (n := sum(1 for p in f.glob("*.py"))) > MAX_MODULES_PER_FOLDER}
    assert not crowded, f"folders over {MAX_MODULES_PER_FOLDER} modules: {crowded}"
    undocumented = [str(f.relative_to(PACKAGE)) for f in folders
                    if ast.get_docstring(ast.parse((f / "__init__.py").read_text(encoding="utf-8"))) is None]
    assert not undocumented, f"packages without a docstring saying what they own: {undocumented}"


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import that runs or is read at module level: inside ``if`` (``if TYPE_CHECKING:`` included: a
    type checker follows it, and a circle there is a circle of the design), ``try``, ``with`` and class
    bodies too; imports inside functions are lazy by design and not counted."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file for every module of the package rooted at ``package``."""
    return {".".join((package.name, *p.relative_to(package).with_suffix("").parts)).removesuffix(".__init__"): p
            for p in sorted(package.rglob("*.py"))}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at module level (see :func:`_module_level_imports`)."""
    names = module_names(package)
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        package_parts = [package.name, *path.relative_to(package).parts[:-1]]
        targets = set()
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                base = (".".join(package_parts[: len(package_parts) - node.level + 1] + ([node.module] if node.module else []))
                        if node.level else (node.module or ""))
                modules = [base] + [f"{base}.{alias.name}" for alias in node.names]
            targets |= {m for m in modules if m in names and m != name}
        graph[name] = targets
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (``[a, b, a]``), or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_circle_between_modules() -> None:
    """Module-level imports between the package's modules (``if TYPE_CHECKING:`` ones included) form no cycle."""
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_circle_checker_detects_a_two_module_circle(tmp_path: Path) -> None:
    """The circle check can fail: ``a`` imports ``b`` and ``b`` imports ``a`` only for type checking, in a
    copy of the layout under tmp_path; an import inside a function is no edge."""
    package = tmp_path / "scribbleseg"
    (package / "methods").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "methods" / "__init__.py").write_text("")
    (package / "methods" / "a.py").write_text("from scribbleseg.methods.b import B\n")
    (package / "methods" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from scribbleseg.methods import a\n")
    (package / "methods" / "c.py").write_text("def lazy():\n    from scribbleseg.methods import d\n")
    (package / "methods" / "d.py").write_text("from . import c\n")
    graph = import_graph(package)
    assert graph["scribbleseg.methods.c"] == set() and "scribbleseg.methods.c" in graph["scribbleseg.methods.d"]
    assert find_circle(graph) == ["scribbleseg.methods.a", "scribbleseg.methods.b", "scribbleseg.methods.a"]
    (package / "methods" / "b.py").write_text("B = 1\n")
    assert find_circle(import_graph(package)) is None


IMPORT_EVERY_MODULE = """
import importlib, sys
failures = []
package = sys.argv[1]
for name in sys.argv[2:]:
    for loaded in [key for key in sys.modules if key == package or key.startswith(package + ".")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as err:
        failures.append(f"{name}: {type(err).__name__}: {err}")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def modules_failing_first_import(package: Path = PACKAGE) -> str:
    """The ImportErrors of importing each module of ``package`` first, one fresh interpreter for all
    (the package is dropped from ``sys.modules`` between imports; torch & co. stay loaded: fast)."""
    done = subprocess.run([sys.executable, "-c", IMPORT_EVERY_MODULE, package.name, *sorted(module_names(package))],
                          capture_output=True, text=True, timeout=120, cwd=package.parent)
    return "" if done.returncode == 0 else done.stdout + done.stderr[-2000:]


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each module imported *first* (no module of the package loaded before it, so a circle that a lucky
    import order hides shows as an ImportError)."""
    failures = modules_failing_first_import()
    assert not failures, f"modules that fail to import first:\n{failures}"


def test_first_import_check_detects_a_runtime_circle(tmp_path: Path) -> None:
    """The fresh-interpreter check can fail: two modules of a probe package that import names from each other."""
    package = tmp_path / "circleprobe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from circleprobe.b import B\nA = 1\n")
    (package / "b.py").write_text("from circleprobe.a import A\nB = 2\n")
    failures = modules_failing_first_import(package)
    assert "circleprobe.a: ImportError" in failures and "circleprobe.b: ImportError" in failures


def test_every_torch_load_is_weights_only() -> None:
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load" and getattr(node.func.value, "id", None) == "torch"):
                kw = {k.arg: k.value for k in node.keywords}
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, "torch.load without weights_only=True: " + ", ".join(offenders)
