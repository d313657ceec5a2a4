"""sphereviz.losses.registry: one table of names, aliases, titles and margin ranges, read by the
losses, geometry and the widgets alike, and importable without torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from sphereviz import geometry
from sphereviz.losses import registry
from sphereviz.losses.registry import (
    LOSS_ALIASES,
    LOSS_NAMES,
    MARGIN_KINDS,
    canonical_loss_name,
    check_margin,
    loss_spec,
)

# The papers' values, typed in here as the independent truth.
PAPER_DEFAULTS = {
    "a-softmax": (4, None),
    "l-softmax": (4, None),
    "cosface": (0.35, 64.0),
    "arcface": (0.5, 64.0),
    "sphereface-r": (1.5, 30.0),
    "sphereface2": (0.4, 40.0),
    "normface": (None, 30.0),
}
TITLES = {
    "softmax": "softmax",
    "modified-softmax": "modified softmax",
    "normface": "NormFace",
    "a-softmax": "A-Softmax",
    "l-softmax": "L-Softmax",
    "cosface": "CosFace",
    "arcface": "ArcFace",
    "sphereface-r": "SphereFace-R",
    "sphereface2": "SphereFace2",
}


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("asoftmax", "a-softmax"),
        ("sphereface", "a-softmax"),
        ("SphereFace", "a-softmax"),
        ("am-softmax", "cosface"),
        ("AM_Softmax", "cosface"),
        ("lmcl", "cosface"),
        ("LMCL", "cosface"),
        ("largemargin", "l-softmax"),
        ("norm-softmax", "normface"),
        ("sphereface-revived", "sphereface-r"),
        ("  ArcFace ", "arcface"),
    ],
)
def test_aliases_resolve_in_the_registry_geometry_and_make_loss(alias, expected):
    from sphereviz.losses import LOSS_CLASSES, make_loss

    assert canonical_loss_name(alias) == expected
    assert geometry.canonical_loss_name(alias) == expected
    assert type(make_loss(alias, 4, 2)) is LOSS_CLASSES[expected]


def test_unknown_names_and_wrong_types():
    with pytest.raises(ValueError, match="unknown loss 'hinge'; choose one of: softmax.*lmcl"):
        canonical_loss_name("hinge")
    with pytest.raises(ValueError, match="unknown loss 'cosface'; choose one of: a-softmax"):
        canonical_loss_name("cosface", known=("a-softmax",))
    with pytest.raises(TypeError, match="loss name must be a string"):
        canonical_loss_name(4)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("asoftmx", "a-softmax"), ("ArcFac", "arcface"), ("cos_fase", "cosface"),
     ("spherefce2", "sphereface2"), ("lsoftmx", "l-softmax"),
     ("sphereface_revivd", "sphereface-r")],
)  # fmt: skip
def test_a_misspelt_loss_name_suggests_the_close_one(typo, meant):
    with pytest.raises(
        ValueError, match=rf"choose one of: softmax, .*\(did you mean '{meant}'\?\)$"
    ):
        canonical_loss_name(typo)


def test_no_suggestion_when_nothing_is_close_and_the_command_line_gets_it(tmp_path, capsys):
    with pytest.raises(ValueError) as caught:
        canonical_loss_name("triplet")
    assert "did you mean" not in str(caught.value)
    from sphereviz.train import main

    assert main(["--loss", "asoftmx", "--out", str(tmp_path / "run")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith("(did you mean 'a-softmax'?))") and "choose one of: softmax" in line


def test_every_loss_has_a_class_a_title_and_a_known_kind():
    from sphereviz.losses import LOSS_CLASSES

    assert tuple(LOSS_CLASSES) == LOSS_NAMES
    assert {name: loss_spec(name).title for name in LOSS_NAMES} == TITLES
    assert set(LOSS_ALIASES.values()) <= set(LOSS_NAMES)
    assert not set(LOSS_ALIASES) & set(LOSS_NAMES)
    for name in LOSS_NAMES:
        spec = loss_spec(name)
        assert spec.margin_kind in MARGIN_KINDS and spec.label.startswith(spec.title)
        assert spec.has_margin == LOSS_CLASSES[name].has_margin
        assert spec.anneals == (name in ("a-softmax", "l-softmax"))


@pytest.mark.parametrize(("name", "defaults"), PAPER_DEFAULTS.items())
def test_defaults_are_the_papers_and_the_losses_use_them(name, defaults):
    from sphereviz.losses import make_loss

    margin, scale = defaults
    spec = loss_spec(name)
    assert (spec.default_margin, spec.default_scale) == (margin, scale)
    assert check_margin(name, None) == margin
    loss = make_loss(name, 5, 2)
    assert getattr(loss, "margin", None) == margin
    assert getattr(loss, "scale", None) == scale


def test_margin_free_losses_refuse_a_margin():
    assert registry.MARGIN_FREE_LOSSES == ("softmax", "modified-softmax", "normface")
    assert check_margin("softmax", None) is None
    with pytest.raises(ValueError, match="NormFace has no margin, got m=0.5"):
        check_margin("normface", 0.5)


# (loss, m, accepted): each end of each range, just inside and just outside it
BOUNDARIES = [
    ("a-softmax", 1, True),
    ("a-softmax", 0, False),
    ("l-softmax", 10, True),
    ("cosface", 0.0, True),
    ("cosface", 2.0, True),
    ("cosface", np.nextafter(2.0, 3.0), False),
    ("cosface", -1e-12, False),
    ("arcface", 0.0, True),
    ("arcface", np.nextafter(math.pi, 0.0), True),
    ("arcface", math.pi, False),
    ("arcface", -1e-12, False),
    ("sphereface-r", 1.0, True),
    ("sphereface-r", np.nextafter(1.0, 0.0), False),
    ("sphereface-r", 1e6, True),
    ("sphereface-r", math.inf, False),
    ("sphereface2", 0.0, True),
    ("sphereface2", 1.0, True),
    ("sphereface2", np.nextafter(1.0, 2.0), False),
]


@pytest.mark.parametrize(("name", "m", "accepted"), BOUNDARIES)
def test_one_range_for_the_loss_and_for_geometry(name, m, accepted):
    """The loss constructor and geometry accept and refuse the same margins."""
    from sphereviz.losses import make_loss

    def build():
        return make_loss(name, 4, 2, margin=m)

    def regions():
        return geometry.circle_regions([0.0, 2.0], name, m, method="grid", resolution=64)

    if accepted:
        assert check_margin(name, m) == m
        assert build().margin == m
        regions()
    else:
        for call in (lambda: check_margin(name, m), build, regions):
            with pytest.raises(ValueError, match=loss_spec(name).title):
                call()


def test_integer_margins():
    assert check_margin("a-softmax", 4.0) == 4 and type(check_margin("a-softmax", 4.0)) is int
    assert check_margin("l-softmax", np.int64(3)) == 3
    with pytest.raises(ValueError, match="for A-Softmax, got 2.5; use CosFace or ArcFace"):
        check_margin("a-softmax", 2.5)
    assert check_margin("a-softmax", 2.5, fractional=True) == 2.5
    with pytest.raises(ValueError, match=">= 1 for L-Softmax"):
        check_margin("l-softmax", 0.5, fractional=True)
    with pytest.raises(TypeError, match="m must be an integer >= 1 for A-Softmax, got str"):
        check_margin("sphereface", "4")


def test_hints_in_messages():
    with pytest.raises(ValueError, match=r"radians.*math\.radians\(30\)"):
        check_margin("arcface", 30)
    with pytest.raises(ValueError, match=r"margin must be a finite number in \[0, 2\] for CosFace"):
        check_margin("am-softmax", 3.0, argument="margin")
    with pytest.raises(ValueError, match="rule='boundary'"):
        geometry.classify_points([[1.0, 0.0]], np.eye(2), "a-softmax", 2.5)


def test_widget_menu_is_labelled_from_the_registry_in_lecture_order():
    widgets = pytest.importorskip("sphereviz.widgets")
    names = [name for _, name in widgets.LOSS_CHOICES]
    assert names == [
        "a-softmax", "cosface", "arcface", "sphereface-r", "sphereface2", "modified-softmax",
        "softmax",
    ]  # fmt: skip
    assert dict(widgets.LOSS_CHOICES)["A-Softmax (SphereFace)"] == "a-softmax"
    assert all(label == loss_spec(name).label for label, name in widgets.LOSS_CHOICES)


def test_the_losses_package_is_lazy_but_complete():
    import sphereviz.losses as losses

    for name in losses.__all__:
        assert getattr(losses, name) is not None
    assert set(losses.__all__) <= set(dir(losses))
    with pytest.raises(AttributeError, match="has no attribute 'Triplet'"):
        losses.Triplet  # noqa: B018


_NO_TORCH = """
import json, sys
{body}
print(json.dumps([name for name in ("torch", "sphereviz.losses.base") if name in sys.modules]))
"""


@pytest.mark.parametrize(
    "body",
    [
        "import sphereviz.losses.registry",
        "import sphereviz.geometry as g; g.circle_regions([0, 2], 'sphereface-r', 1.5)",
        "import sphereviz.geometry as g; g.margin_target([0.1, 3.0], 'sphereface2')",
        "import sphereviz.margin_cli as c; c.main(['--m', '4', '--json'])",
        "from sphereviz.losses import LOSS_NAMES, canonical_loss_name, check_margin",
        "from sphereviz.cli import main\ntry:\n    main(['bounds', '--json'])\n"
        "except SystemExit:\n    pass",
    ],
)
def test_the_math_layer_runs_without_torch(body):
    """In a fresh interpreter: the registry, geometry, ``sphereviz margin`` and ``sphereviz
    bounds --json`` never import torch."""
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH.format(body=body)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_python_m_sphereviz_bounds_json_leaves_torch_out():
    code = (
        "import runpy, sys\n"
        "sys.argv = ['sphereviz', 'bounds', '--json']\n"
        "try:\n    runpy.run_module('sphereviz', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == "False"
    assert "m_min" in lines[-2] or json.loads(lines[-2])  # the JSON summary came before it


def test_the_lazy_table_and_the_type_checking_imports_agree():
    """Every lazy name is spelled out under TYPE_CHECKING (what the import graph and type
    checkers see) from the submodule ``__getattr__`` imports it from."""
    import ast
    from pathlib import Path

    import sphereviz.losses as losses

    tree = ast.parse(Path(losses.__file__).read_text(encoding="utf-8"))
    spelled = {
        alias.name: node.module.rpartition(".")[2]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module != "sphereviz.losses.registry"
        and node.module.startswith("sphereviz.losses.")
        for alias in node.names
    }  # fmt: skip
    assert spelled == losses._LAZY


def test_the_trainers_annealed_losses_are_the_registrys():
    from sphereviz.config import ANNEALED_LOSSES

    assert set(ANNEALED_LOSSES) == {name for name in LOSS_NAMES if loss_spec(name).anneals}


def test_train_help_lists_every_loss_name_and_alias():
    from sphereviz.train import build_parser

    (loss_option,) = [a for a in build_parser()._actions if "--loss" in a.option_strings]
    help_text = loss_option.help
    for name in (*LOSS_NAMES, *LOSS_ALIASES):
        assert name in help_text, name
