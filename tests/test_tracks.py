"""Routes through the book (model2metal.tracks): the labs they name exist, their
hours are the headers' sums, and the week plans keep book order and lose nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from model2metal import tracks
from model2metal.pages import toc_files

ROOT = Path(__file__).resolve().parent.parent
STATED = re.compile(r"\*\*Estimated time:\*\*\s*(\d+)(?:\s*[–-]\s*(\d+))?\s*minutes")


def stated_minutes(entry: str) -> tuple[int, int]:
    """Read a header again, independently of model2metal.pages."""
    kind, folder, name = entry.split("/")
    path = (ROOT / "solutions" / folder / f"{name}.ipynb" if kind == "labs"
            else ROOT / f"{entry}.md")
    low, high = STATED.search(path.read_text(encoding="utf-8")).groups()
    return int(low), int(high or low)


ENTRIES = [e for e in toc_files(ROOT) if e.count("/") == 2
           and e.split("/")[0] in ("chapters", "labs")
           and not e.endswith("/index")]


def test_all_labs_is_the_toc():
    assert tracks.ALL_LABS == tuple(e.split("/")[2][:8] for e in ENTRIES
                                    if e.startswith("labs/"))


@pytest.mark.parametrize("audience", tracks.AUDIENCES, ids=lambda a: a.name)
def test_an_audiences_hours_are_the_headers_sum(audience):
    level = dict(zip(tracks.CHAPTERS, audience.levels))
    share = {tracks.CORE: 1.0, tracks.OPTIONAL: 1 / 3, tracks.SKIP: 0.0}
    pages = core_labs = optional_labs = 0.0
    for entry in ENTRIES:
        _, folder, name = entry.split("/")
        high = stated_minutes(entry)[1]
        if entry.startswith("chapters/"):
            pages += share[level[folder]] * high
        elif name[:8] in audience.core_labs:
            core_labs += high
        elif name[:8] in audience.optional_labs:
            optional_labs += high
    h = tracks.audience_hours(audience)
    assert h.pages[1] == pytest.approx(pages / 60)
    assert h.core_labs[1] == pytest.approx(core_labs / 60)
    assert h.optional_labs[1] == pytest.approx(optional_labs / 60)
    assert not set(audience.core_labs) & set(audience.optional_labs)
    assert len(audience.levels) == len(tracks.CHAPTERS)
    if audience.budget_hours:
        assert h.core[1] + h.optional_labs[1] <= audience.budget_hours


def test_a_route_naming_a_missing_lab_fails():
    ghost = tracks.Audience("ghost", "", (tracks.CORE,) * 7, ("lab09_09",))
    with pytest.raises(ValueError, match="lab09_09"):
        tracks.audience_hours(ghost)


def test_the_whole_book_is_the_sum_of_every_header():
    low = sum(stated_minutes(e)[0] for e in ENTRIES) / 60
    high = sum(stated_minutes(e)[1] for e in ENTRIES) / 60
    assert tracks.career_hours([tracks.CORE] * 7) == pytest.approx((low, high))
    assert tracks.audience_hours(tracks.AUDIENCES[0]).core == pytest.approx(
        (low, high))


@pytest.mark.parametrize("parts", [2, 5, 14])
def test_a_week_plan_keeps_book_order_and_every_item(parts):
    semester = next(a for a in tracks.AUDIENCES if a.weeks)
    plan = tracks.week_plan(semester, parts)
    assert len(plan) == parts and all(plan)
    flat = [entry for week in plan for entry, _ in week]
    expected = [e for e in ENTRIES if e.startswith("chapters/")
                or e.split("/")[2][:8] in semester.core_labs]
    assert flat == expected
    loads = [sum(m for _, m in week) for week in plan]
    assert max(loads) <= 2 * sum(loads) / parts   # about equal, never doubled


def test_career_tracks_cover_every_chapter():
    for name, levels in tracks.CAREER_TRACKS.items():
        assert len(levels) == len(tracks.CHAPTERS), name
        assert levels[0] == levels[2] == levels[6] == tracks.CORE, name


@pytest.mark.parametrize("low, high, digits, text", [
    (7.2, 7.4, 0, "7"), (7.2, 8.6, 0, "7–9"), (1.92, 2.17, 1, "1.9–2.2"),
    (2.5, 2.5, 1, "2.5")])
def test_span(low, high, digits, text):
    assert tracks.span(low, high, digits) == text
