"""Publication style and deterministic saving."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sphereviz import style  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]

# A figure with text (fonts are embedded), a filled area, an image and clip paths: the
# parts of a file that are most often nondeterministic.
RENDER_SCRIPT = textwrap.dedent(
    """
    import sys
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sphereviz.style import publication_style, save_figure

    with publication_style(column="single"):
        fig, ax = plt.subplots()
        theta = np.linspace(0, np.pi, 200)
        ax.plot(theta, np.cos(4 * theta), label=r"$\\cos(4\\theta)$")
        ax.fill_between(theta, -1, np.cos(theta), alpha=0.3, label="θ region")
        ax.imshow(np.arange(16.0).reshape(4, 4), extent=(0, 1, 0, 1))
        ax.set_title("ψ(θ) for m = 4")
        ax.legend()
        for path in save_figure(fig, sys.argv[1]):
            print(path)
    """
)


def render_in_fresh_processes(*path_stems: Path) -> list[list[Path]]:
    """Run RENDER_SCRIPT once per stem, each in its own (concurrent) Python process."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RENDER_SCRIPT, str(stem)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for stem in path_stems
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0] * len(processes)
    return [[Path(line) for line in output.split()] for output in outputs]


def test_save_figure_is_byte_identical_across_processes(tmp_path):
    first, second = render_in_fresh_processes(tmp_path / "a" / "figure", tmp_path / "b" / "figure")
    assert [p.suffix for p in first] == [".pdf", ".svg", ".png"]
    for path_a, path_b in zip(first, second, strict=True):
        assert path_a.read_bytes() == path_b.read_bytes(), f"{path_a.name} differs between runs"


def test_saved_files_carry_no_date_or_version(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    pdf, svg, png = style.save_figure(fig, tmp_path / "plain")
    plt.close(fig)
    assert b"CreationDate" not in pdf.read_bytes()
    assert b"Producer" not in pdf.read_bytes()
    assert b"<dc:date>" not in svg.read_bytes()
    assert b"Matplotlib" not in png.read_bytes()
    assert png.read_bytes().startswith(b"\x89PNG")


def test_save_figure_writes_only_requested_formats(tmp_path):
    fig = plt.figure()
    written = style.save_figure(fig, tmp_path / "only", formats=("svg",))
    plt.close(fig)
    assert written == [tmp_path / "only.svg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["only.svg"]


def test_save_figure_rejects_unknown_format(tmp_path):
    fig = plt.figure()
    with pytest.raises(ValueError, match="formats must be"):
        style.save_figure(fig, tmp_path / "x", formats=("jpg",))
    plt.close(fig)


def test_figure_size_matches_column_widths():
    assert style.figure_size("single", 0.5) == (3.5, 1.75)
    assert style.figure_size("double", 1.0) == (7.16, 7.16)
    with pytest.raises(ValueError, match="column must be"):
        style.figure_size("triple")
    with pytest.raises(ValueError, match="aspect"):
        style.figure_size("single", 0)


def test_publication_style_is_scoped():
    before = matplotlib.rcParams["pdf.fonttype"], tuple(matplotlib.rcParams["figure.figsize"])
    with style.publication_style(column="double", aspect=0.5):
        assert matplotlib.rcParams["pdf.fonttype"] == 42
        assert matplotlib.rcParams["svg.hashsalt"] == style.SVG_HASH_SALT
        assert tuple(matplotlib.rcParams["figure.figsize"]) == (7.16, 3.58)
        cycle = [entry["color"] for entry in matplotlib.rcParams["axes.prop_cycle"]]
        assert cycle == list(style.OKABE_ITO)
    after = matplotlib.rcParams["pdf.fonttype"], tuple(matplotlib.rcParams["figure.figsize"])
    assert after == before


def test_class_colors_are_okabe_ito_then_distinct_hues():
    assert style.class_colors(3) == ["#0072B2", "#E69F00", "#009E73"]
    many = style.class_colors(20)
    assert len(set(many)) == 20
    assert all(c.startswith("#") and len(c) == 7 for c in many)
    for bad, error in ((0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="n must be an integer >= 1"):
            style.class_colors(bad)
    assert style.class_colors(np.int64(2)) == ["#0072B2", "#E69F00"]
