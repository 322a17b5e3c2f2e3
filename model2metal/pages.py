"""Small helpers for the book's chapter pages (not used by labs)."""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` for numbers in the text: NumPy scalars become Python numbers,
    so that ``{glue:text}`name:.2f``` can format them."""
    from myst_nb import glue as myst_glue

    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    myst_glue(name, value, display=display)
