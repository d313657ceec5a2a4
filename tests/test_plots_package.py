"""The plots package: one module per topic, a flat re-export, and imports that stay light.

Truths used: the module sources themselves (every import statement, also inside functions) and
a fresh interpreter's ``sys.modules``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from sphereviz import plots

PACKAGE = Path(plots.__file__).parent


def _runtime_imports(path: Path) -> set[str]:
    """Modules imported by ``path`` at run time: every import, at the top or inside a
    function, except those under ``if TYPE_CHECKING:`` (type hints only)."""
    tree = ast.parse(path.read_text())
    hinted = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", None) == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }
    names = set()
    for node in ast.walk(tree):
        if id(node) in hinted:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_plot_module_imports_the_trainer(path):
    imported = _runtime_imports(path)
    assert not {name for name in imported if name.startswith("sphereviz.train")}, imported


def test_the_helper_finds_imports_inside_functions_and_skips_type_hints(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from sphereviz.train import TrainConfig\n"
        "def f():\n    from sphereviz import train\n"
    )
    assert "sphereviz.train" in _runtime_imports(source)  # the one inside f
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sphereviz.train\n"
    )
    assert "sphereviz.train" not in _runtime_imports(source)


def test_importing_plots_loads_neither_torch_nor_plotly():
    code = (
        "import sys, sphereviz.plots as p\n"
        "print(sorted(m for m in ('torch', 'plotly', 'sphereviz.train') if m in sys.modules))\n"
        "p.interactive3d\n"
        "print('plotly' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split("\n")[:2] == ["[]", "True"]


def test_the_flat_names_are_the_topic_modules_objects():
    from sphereviz import geometry
    from sphereviz.plots import curves, features, regions, verification

    assert plots.draw_psi is curves.draw_psi
    assert plots.draw_regions is regions.draw_regions
    assert plots.plot_features_sphere is features.plot_features_sphere
    assert plots.plot_verification is verification.plot_verification
    assert plots.project_to_sphere is geometry.project_to_sphere
    assert all(hasattr(plots, name) for name in plots.__all__)
    with pytest.raises(AttributeError, match="no attribute 'plots3d'"):
        plots.plots3d  # noqa: B018
