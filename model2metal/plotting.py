"""One look for every figure of the course."""

from __future__ import annotations

__all__ = ["use_course_style", "COLORS", "image_axes"]

# Colour-blind-safe (Okabe–Ito) palette; a tool keeps its colour across the book.
COLORS = {
    "numpy": "#0072B2",
    "numba": "#E69F00",
    "torch": "#D55E00",
    "tvm": "#009E73",
    "cuda": "#CC79A7",
    "onnx": "#56B4E9",
    "other": "#999999",
}


def use_course_style() -> None:
    """Readable defaults: size, grid, no top/right spines, the palette above."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": "medium",
            "legend.frameon": False,
            "axes.prop_cycle": cycler(color=list(COLORS.values())),
        }
    )


def image_axes(ax) -> None:
    """No ticks, grid or frame: for a panel that shows an image."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
