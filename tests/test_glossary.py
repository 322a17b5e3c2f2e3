"""The glossary: every entry names where the term is explained, and that page uses it.

Each row of chapters/glossary.md is English / 中文 / meaning / where; "where" is one
{doc} link. The build (-W -n) proves the link resolves; this test proves it points
at a page that really uses the term: one of the row's English alternatives (split
on " / ", parentheses dropped) occurs in the linked page, case-insensitively, as a
whole word with an optional plural ending.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "chapters" / "glossary.md"
LINK = re.compile(r"^\{doc\}`[^`<]+<(/[^>]+)>`$")


def rows(text: str) -> list[list[str]]:
    """The cells of every list-table body row (header rows dropped)."""
    result = []
    for table in re.findall(r"```\{list-table\}\n(.*?)\n```", text, re.S):
        current: list[str] | None = None
        body = []
        for line in table.splitlines():
            if line.startswith("* - "):
                current = [line[4:].strip()]
                body.append(current)
            elif line.startswith("  - ") and current is not None:
                current.append(line[4:].strip())
            elif line.startswith("    ") and current:   # a wrapped cell
                current[-1] += " " + line.strip()
        result += body[1:]                            # :header-rows: 1
    return result


def alternatives(english: str) -> list[str]:
    plain = re.sub(r"\s+", " ", re.sub(r"\([^)]*\)", "", english))
    return [a.strip().strip("`*").lower() for a in plain.split(" / ") if a.strip()]


def page_text(target: str) -> str | None:
    path = ROOT / target.lstrip("/")
    if path.with_suffix(".md").exists():
        return path.with_suffix(".md").read_text(encoding="utf-8")
    if path.with_suffix(".ipynb").exists():
        cells = json.loads(path.with_suffix(".ipynb").read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells)
    return None


def uses(page: str, term: str) -> bool:
    page = re.sub(r"\s+", " ", page)
    pattern = r"(?<![a-z0-9])" + re.escape(term) + r"(?:s|es)?(?![a-z0-9])"
    return re.search(pattern, page, re.I) is not None


ROWS = rows(GLOSSARY.read_text(encoding="utf-8"))


def test_the_glossary_has_every_chapter():
    assert len(ROWS) >= 250
    targets = {LINK.match(r[3]).group(1).split("/")[2] for r in ROWS
               if len(r) == 4 and LINK.match(r[3])}
    chapters = {p.name for p in (ROOT / "chapters").iterdir() if p.is_dir()}
    assert chapters <= targets, f"no glossary entry explained in {chapters - targets}"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r[0][:40])
def test_each_entry_links_to_a_page_that_uses_it(row):
    assert len(row) == 4, f"{row[0]}: {len(row)} cells, expected 4"
    english, chinese, meaning, where = row
    assert chinese and meaning, f"{english}: empty cell"
    match = LINK.match(where)
    assert match, f"{english}: 'where' is not one {{doc}} link: {where!r}"
    page = page_text(match.group(1))
    assert page is not None, f"{english}: {match.group(1)} does not exist"
    assert any(uses(page, alt) for alt in alternatives(english)), (
        f"{english!r} does not occur in {match.group(1)}")


def test_the_row_parser_and_the_rule_can_fail(tmp_path):
    table = ("```{list-table}\n:header-rows: 1\n\n* - English\n  - 中文\n"
             "  - meaning\n  - where\n* - warp (GPU)\n  - 线程束\n  - 32 threads\n"
             "  - {doc}`ch 5 · simt </chapters/05_hardware/simt>`\n```\n")
    (row,) = rows(table)
    assert alternatives(row[0]) == ["warp"]
    assert uses(page_text("/chapters/05_hardware/simt"), "warp")
    assert not uses(page_text("/chapters/05_hardware/simt"), "tokenizer")
    assert not uses("warped", "warp") and uses("two warps", "warp")
    assert page_text("/chapters/05_hardware/no_such_page") is None
