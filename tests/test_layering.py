"""The package's layer rule (docs/ARCHITECTURE.md), checked on the source with ``ast``.

``cli -> engine -> pfa -> methods -> models``; ``engine -> data``; ``data`` and ``models`` never import each other;
every layer may import the root modules ``scribbleseg.errors``, ``atomic_files`` and ``yaml_reading``.
A violation names the file and the import.
"""

from __future__ import annotations

import ast
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
    "engine": {"engine", "pfa", "methods", "models", "data"},
    "cli": {"cli", "engine", "pfa", "methods", "models", "data"},
}
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
