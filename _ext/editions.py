"""Sphinx extension: one source, two editions of the book (full, and student).

The student edition (``tools/build_book.py --student``, which sets
``M2M_EDITION=student``) has no solutions. In a page's MyST source:

* lines from ``% full-edition`` to ``% end full-edition`` are dropped from it (the
  markers may be indented, to sit inside a list item);
* a line ``% student: <text>`` becomes ``<text>`` in it (a comment in the full edition).

Both markers are MyST comments, so the full edition shows the page as written. The
change happens when Sphinx reads the page, before myst-nb parses it (code cells are not
touched, so the execution cache still matches).
"""

from __future__ import annotations

import os
import re

BEGIN = re.compile(r"^\s*%\s*full-edition\s*$")
END = re.compile(r"^\s*%\s*end full-edition\s*$")
STUDENT = re.compile(r"^(?P<indent>\s*)%\s*student:\s?(?P<text>.*)$")


class EditionMarkerError(ValueError):
    """Unbalanced ``% full-edition`` markers."""


def student_text(text: str, docname: str = "?") -> str:
    """``text`` as the student edition shows it."""
    out, inside = [], None
    for number, line in enumerate(text.split("\n"), 1):
        if BEGIN.match(line):
            if inside:
                raise EditionMarkerError(f"{docname}:{number}: full-edition inside line {inside}'s")
            inside = number
        elif END.match(line):
            if not inside:
                raise EditionMarkerError(f"{docname}:{number}: end full-edition without a start")
            inside = None
        elif not inside:
            student = STUDENT.match(line)
            out.append(student["indent"] + student["text"] if student else line)
    if inside:
        raise EditionMarkerError(f"{docname}:{inside}: full-edition is never ended")
    return "\n".join(out)


def edition() -> str:
    return "student" if os.environ.get("M2M_EDITION") == "student" else "full"


def _source_read(app, docname, source):
    if edition() == "student":
        source[0] = student_text(source[0], docname)


def setup(app):
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
