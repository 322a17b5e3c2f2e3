"""Small helpers for the book's pages: glued numbers, text folded to the page width
(the checks fold their messages with it too), and the time estimates."""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["glue", "fold", "PAGE_WIDTH", "estimated_minutes", "ChapterTime",
           "chapter_time", "toc_files"]

#: Characters per line that a book page's output block shows without scrolling.
PAGE_WIDTH = 76


def fold(text: str, width: int = PAGE_WIDTH) -> str:
    """Fold each line of ``text`` to ``width`` characters at spaces, keeping its
    indentation; continuation lines are indented two more. Words are never split,
    so a single word longer than ``width`` stays as it is."""
    out = []
    for line in str(text).splitlines() or [""]:
        indent = line[: len(line) - len(line.lstrip())]
        if len(line) <= width:
            out.append(line)
            continue
        out += textwrap.wrap(line.strip(), width, initial_indent=indent,
                             subsequent_indent=indent + "  ",
                             break_long_words=False, break_on_hyphens=False)
    return "\n".join(out)


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` for numbers in the text: NumPy scalars become Python numbers,
    so that ``{glue:text}`name:.2f``` can format them."""
    from myst_nb import glue as myst_glue

    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    myst_glue(name, value, display=display)


# ---------------------------------------------------------------------------
# Time estimates: each page and lab states its own in its header, as
# "**Estimated time:** 40 minutes" or "**Estimated time:** 45–60 minutes"; the
# chapter indexes and the learning-tracks page add them up from there.

ROOT = Path(__file__).resolve().parent.parent
ESTIMATE = re.compile(
    r"\*\*Estimated time:\*\*\s*(?:about\s+)?(\d+)(?:\s*[–-]\s*(\d+))?\s*minutes")


def estimated_minutes(path: str | Path) -> tuple[int, int]:
    """(low, high) minutes stated in the header of a page (.md) or lab (.ipynb).

    Raises ``ValueError`` when the header states none."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        cells = json.loads(text)["cells"]
        text = "\n".join("".join(c["source"]) for c in cells[:3]
                         if c["cell_type"] == "markdown")
    else:
        text = "\n".join(text.splitlines()[:90])      # the header, not the body
    m = ESTIMATE.search(text)
    if not m:
        raise ValueError(f"{path}: no '**Estimated time:** N minutes' in its header")
    low = int(m.group(1))
    return low, int(m.group(2) or low)


@dataclass
class ChapterTime:
    """The time a chapter takes, summed from its pages' and labs' headers."""

    chapter: str
    pages: dict[str, tuple[int, int]] = field(default_factory=dict)
    labs: dict[str, tuple[int, int]] = field(default_factory=dict)

    @staticmethod
    def _sum(items) -> tuple[int, int]:
        return (sum(lo for lo, _ in items.values()),
                sum(hi for _, hi in items.values()))

    @property
    def hours(self) -> tuple[float, float]:
        lo_p, hi_p = self._sum(self.pages)
        lo_l, hi_l = self._sum(self.labs)
        return (lo_p + lo_l) / 60, (hi_p + hi_l) / 60

    def sentence(self) -> str:
        """'about 7 hours: 4 for the six pages and 3 for the three labs'; each part
        rounded to half hours, the total the sum of the rounded parts."""
        def halves(minutes):  # to the nearest half hour, halves rounded up
            return math.floor(minutes / 30 + 0.5) / 2

        def span(lo, hi):
            return f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"

        def count(n, noun):
            if n == 1:
                return f"the {noun}"
            words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six",
                     7: "seven", 8: "eight", 9: "nine"}
            return f"the {words.get(n, n)} {noun}s"

        pages = tuple(halves(m) for m in self._sum(self.pages))
        labs = tuple(halves(m) for m in self._sum(self.labs))
        parts = [f"{span(*pages)} for {count(len(self.pages), 'page')}"]
        if self.labs:
            parts.append(f"{span(*labs)} for {count(len(self.labs), 'lab')}")
        total = (pages[0] + labs[0], pages[1] + labs[1]) if self.labs else pages
        return f"about {span(*total)} hours: " + " and ".join(parts)


def toc_files(root: str | Path | None = None) -> list[str]:
    """Every file ``_toc.yml`` lists (without suffix), in book order."""
    import yaml

    root = Path(root) if root else ROOT
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return files


def chapter_time(chapter: str, root: str | Path | None = None) -> ChapterTime:
    """Sum the estimates of the pages and labs ``_toc.yml`` lists for ``chapter``
    (a folder name such as ``"01_ml_foundations"``); the index page is not counted."""
    root = Path(root) if root else ROOT
    result = ChapterTime(chapter)
    for entry in toc_files(root):
        parts = entry.split("/")
        if len(parts) != 3 or parts[1] != chapter or parts[2] == "index":
            continue
        if parts[0] == "chapters":
            result.pages[parts[2]] = estimated_minutes(root / f"{entry}.md")
        elif parts[0] == "labs":
            solution = root / "solutions" / chapter / f"{parts[2]}.ipynb"
            result.labs[parts[2]] = estimated_minutes(solution)
    if not result.pages:
        raise ValueError(f"_toc.yml lists no pages for chapter {chapter!r}")
    return result
