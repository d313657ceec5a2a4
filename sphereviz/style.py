"""Publication style and deterministic saving, shared by every matplotlib and plotly figure.

- ``publication_style(column="single")``: a context manager with paper rcParams (IEEE: 3.5 in or
  7.16 in wide, Okabe–Ito colours, TrueType fonts in PDF, a fixed SVG hash salt).
- ``class_colors(n)``: one colour per class, the same hex strings for matplotlib and plotly.
- ``save_figure(fig, "out/fig1")``: writes fig1.pdf, fig1.svg, fig1.png whose bytes are the
  same from run to run on the same machine (no dates, no software versions, fixed dpi).
"""

from __future__ import annotations

import colorsys
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

from sphereviz.fileio import atomic_path
from sphereviz.validation import check_int

__all__ = [
    "COLUMN_WIDTHS_INCH",
    "OKABE_ITO",
    "SAVE_DPI",
    "class_colors",
    "figure_size",
    "publication_rc",
    "publication_style",
    "save_figure",
]

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision
# deficiencies. Black is last so that the first seven are used for classes before it.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)

# Widths of a single and a double column in IEEE's two-column templates (CVPR's are 3.25 in and
# 6.875 in: pass those as a figure size).
COLUMN_WIDTHS_INCH: dict[str, float] = {"single": 3.5, "double": 7.16}

SAVE_DPI = 300
SVG_HASH_SALT = "sphereviz"
SUPPORTED_FORMATS = ("pdf", "svg", "png")

# Per-format metadata that would otherwise carry a date or the matplotlib version.
_NO_METADATA: dict[str, dict[str, None]] = {
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None},
    "svg": {"Date": None, "Creator": None},
    "png": {"Software": None},
}


def figure_size(column: str = "single", aspect: float = 0.75) -> tuple[float, float]:
    """(width, height) in inches for a figure one or two columns wide; height = aspect·width."""
    if column not in COLUMN_WIDTHS_INCH:
        raise ValueError(
            f"column must be one of {sorted(COLUMN_WIDTHS_INCH)}, got {column!r}; "
            "use 'single' for a one-column figure and 'double' for a full-width one"
        )
    if not aspect > 0:
        raise ValueError(f"aspect must be a positive height/width ratio, got {aspect!r}")
    width = COLUMN_WIDTHS_INCH[column]
    return (width, width * aspect)


def publication_rc(column: str = "single", aspect: float = 0.75) -> dict[str, Any]:
    """The rcParams of the publication style, as a dict for ``matplotlib.rc_context``."""
    return {
        "figure.figsize": figure_size(column, aspect),
        "figure.dpi": 100,
        "savefig.dpi": SAVE_DPI,
        "savefig.bbox": "standard",
        "font.size": 8,
        "axes.titlesize": 8,
        "axes.labelsize": 8,
        "legend.fontsize": 7,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "lines.linewidth": 1.2,
        "lines.markersize": 3,
        "axes.linewidth": 0.6,
        "axes.prop_cycle": mpl.cycler(color=list(OKABE_ITO)),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.fonttype": "path",
        "svg.hashsalt": SVG_HASH_SALT,
        "image.cmap": "viridis",
    }


@contextmanager
def publication_style(column: str = "single", aspect: float = 0.75) -> Iterator[None]:
    """Context manager: ``with publication_style("double"): fig = plots.plot_psi()``."""
    with mpl.rc_context(publication_rc(column, aspect)):
        yield


def class_colors(n: int) -> list[str]:
    """``n`` distinct hex colours: Okabe–Ito for n ≤ 8, evenly spaced hues beyond that."""
    n = check_int("n", n, min=1, hint="the number of classes")
    if n <= len(OKABE_ITO):
        return list(OKABE_ITO[:n])
    colors = []
    for i in range(n):
        red, green, blue = colorsys.hls_to_rgb(i / n, 0.45, 0.75)
        colors.append(f"#{round(red * 255):02X}{round(green * 255):02X}{round(blue * 255):02X}")
    return colors


def save_figure(
    fig: Figure,
    path_stem: str | os.PathLike,
    formats: Sequence[str] = SUPPORTED_FORMATS,
    dpi: int = SAVE_DPI,
) -> list[Path]:
    """Write ``fig`` as ``<path_stem>.<format>`` for each format; return the written paths.

    The output is byte-identical from run to run on the same machine: no creation date,
    producer or software version in the metadata, a fixed SVG hash salt (clip-path ids),
    a fixed dpi, TrueType fonts in PDF. Each file is written atomically.
    """
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    formats = [formats] if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in SUPPORTED_FORMATS]
    if not formats or unknown:
        raise ValueError(
            f"formats must be a non-empty subset of {SUPPORTED_FORMATS}, got {formats!r}"
        )
    stem = Path(path_stem)
    written = []
    with mpl.rc_context({"svg.hashsalt": SVG_HASH_SALT, "pdf.fonttype": 42}):
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_NO_METADATA[fmt])
            path.chmod(0o644)
            written.append(path)
    return written
