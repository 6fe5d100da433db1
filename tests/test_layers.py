"""The package's shape: no import circles, layers one way, no web framework off the server."""

from __future__ import annotations

import subprocess
import sys


def test_batch_prediction_drift_and_watch_import_no_web_framework():
    code = (
        "import sys, gitml.predict, gitml.monitoring.drift, gitml.watch\n"
        "import gitml.serving.loading, gitml.serving.signature\n"
        "import gitml.check.core, gitml.registry.versions, gitml.serving.models\n"
        "import gitml.monitoring.monitor\n"
        "web = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'starlette', 'uvicorn'))\n"
        "print(','.join(web))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"imported: {done.stdout}"


# import-linter's own command (`lint-imports`), run with this interpreter.
LINT = "import sys, importlinter.cli as c; sys.exit(c.lint_imports_command())"


def _lint_imports(root, src):
    import os

    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_layer_contract_holds_and_an_upward_import_breaks_it(tmp_path):
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    kept = _lint_imports(root, root / "src")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "1 kept, 0 broken" in kept.stdout

    copy = tmp_path / "repo"
    shutil.copytree(root / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(root / "pyproject.toml", copy / "pyproject.toml")
    store = copy / "src" / "gitml" / "store.py"
    upward = "\n\ndef _upward():\n    from gitml.registry import versions\n"
    store.write_text(store.read_text() + upward)
    broken = _lint_imports(copy, copy / "src")
    assert broken.returncode != 0
    assert "gitml.store is not allowed to import gitml.registry" in broken.stdout


def test_the_package_has_no_import_circles():
    import grimp
    import networkx as nx

    graph = grimp.build_graph("gitml", exclude_type_checking_imports=True)
    edges = nx.DiGraph(
        (m, d) for m in graph.modules for d in graph.find_modules_directly_imported_by(m)
    )
    assert edges.number_of_edges() > 300
    circles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert circles == []


def test_test_folders_mirror_the_package_layout():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    folders = [p.name for p in (root / "tests").iterdir() if p.is_dir() and p.name[0] not in "._"]
    assert len(folders) >= 10, folders
    for name in folders:
        assert (root / "src" / "gitml" / name / "__init__.py").is_file(), f"tests/{name}/"


def test_every_top_level_module_has_a_layer():
    """A new module outside the contract would not be checked at all: it must be placed."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    placed = {m.strip() for layer in contract["layers"] for m in layer.replace("|", ":").split(":")}
    package = root / "src" / "gitml"
    tops = {f"gitml.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    tops |= {f"gitml.{p.name}" for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert len(tops) > 30
    assert sorted(tops - placed) == []
