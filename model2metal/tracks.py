"""Routes through the book and the hours they take, from the pages' own headers.

Two pages plan a reader's time: chapter 0's "Learning tracks" (four career
directions) and chapter 6's "Tracks through the book" (four audiences: a
self-learner, a semester course, a bootcamp week, onboarding a deployment
engineer). Both call this module, which adds up the estimates that every page and
lab states in its header (:func:`model2metal.pages.chapter_time`), so neither page
holds a number of its own.

How a level counts: a **core** chapter is its pages read in full; an **optional**
chapter is its pages skimmed, a third of their time; **skip** is nothing. Labs are
counted one by one, as a route lists them: the career tracks take every lab of a
core chapter and the shortest to longest single lab of an optional one; the
audiences name their core and optional labs.
"""

from __future__ import annotations

from dataclasses import dataclass
from .pages import ROOT, chapter_time, toc_files

CORE, OPTIONAL, SKIP = "core", "optional", "skip"

#: the chapters in book order: folder and short name
CHAPTERS = {
    "00_start_here": "0 Start here",
    "01_ml_foundations": "1 ML basics",
    "02_cv_models": "2 CV models",
    "03_deployment": "3 Deployment",
    "04_compilers": "4 AI compilers",
    "05_hardware": "5 Hardware",
    "06_careers": "6 Careers",
}

#: chapter 0's four career directions: one level per chapter, 0 to 6
CAREER_TRACKS = {
    "Algorithms": [CORE, CORE, CORE, CORE, OPTIONAL, SKIP, CORE],
    "Deployment / SDK": [CORE, OPTIONAL, CORE, CORE, CORE, OPTIONAL, CORE],
    "Operators / hardware": [CORE, OPTIONAL, CORE, OPTIONAL, CORE, CORE, CORE],
    "Model compression": [CORE, CORE, CORE, CORE, OPTIONAL, OPTIONAL, CORE],
}


@dataclass(frozen=True)
class Audience:
    """A route for one kind of reader: chapter levels (for the pages) and the
    labs it makes core or optional, by their number (``"lab03_01"``)."""

    name: str
    who: str
    levels: tuple[str, ...]          # one per chapter of CHAPTERS
    core_labs: tuple[str, ...]
    optional_labs: tuple[str, ...] = ()
    budget_hours: float | None = None  # the time the format gives, if fixed
    weeks: int | None = None           # a plan split into this many weeks


#: every lab of the book, by number (a test checks it against _toc.yml)
ALL_LABS = (
    "lab00_01", "lab01_01", "lab01_02", "lab02_01", "lab02_02", "lab02_03",
    "lab03_01", "lab03_02", "lab03_03", "lab04_01", "lab04_02", "lab04_03",
    "lab04_04", "lab05_01", "lab05_02", "lab05_03", "lab06_01",
)
_SEMESTER_OPTIONAL = ("lab04_04", "lab05_03")


AUDIENCES = (
    Audience(
        "Self-learner",
        "works alone, in the browser or on a laptop, a few hours a week",
        (CORE,) * 7, ALL_LABS),
    Audience(
        "Semester course",
        "a university course on ML systems: 14 weeks, lectures from the pages, "
        "labs as weekly assignments",
        (CORE,) * 7,
        tuple(lab for lab in ALL_LABS if lab not in _SEMESTER_OPTIONAL),
        _SEMESTER_OPTIONAL, weeks=14),
    Audience(
        "Bootcamp week",
        "five days of eight hours for engineers who can already train a model: "
        "from export to compiled kernels",
        (CORE, SKIP, OPTIONAL, CORE, CORE, OPTIONAL, OPTIONAL),
        ("lab00_01", "lab03_01", "lab03_02", "lab03_03", "lab04_01",
         "lab04_03", "lab05_01"),
        ("lab02_02", "lab04_02"), budget_hours=40),
    Audience(
        "Onboarding a deployment engineer",
        "a new member of a deployment team, two weeks next to the daily work",
        (CORE, OPTIONAL, CORE, CORE, CORE, OPTIONAL, CORE),
        ("lab00_01", "lab02_02", "lab02_03", "lab03_01", "lab03_02",
         "lab03_03", "lab04_01", "lab04_03", "lab05_01", "lab06_01"),
        ("lab01_02", "lab04_02", "lab04_04", "lab05_02"), budget_hours=80),
)


def _chapter_times():
    return {folder: chapter_time(folder) for folder in CHAPTERS}


def lab_minutes(times=None) -> dict[str, tuple[int, int]]:
    """Every lab's (low, high) minutes from its header, by number (``times``:
    the chapters' times when already read)."""
    return {name[:8]: span for t in (times or _chapter_times()).values()
            for name, span in t.labs.items()}


def _pages_minutes(levels, times) -> tuple[float, float]:
    low = high = 0.0
    for (folder, t), level in zip(times.items(), levels):
        share = {CORE: 1.0, OPTIONAL: 1 / 3, SKIP: 0.0}[level]
        low += share * sum(lo for lo, _ in t.pages.values())
        high += share * sum(hi for _, hi in t.pages.values())
    return low, high


@dataclass
class Hours:
    """Hours of a route: pages, core labs and optional labs, each (low, high)."""

    pages: tuple[float, float]
    core_labs: tuple[float, float]
    optional_labs: tuple[float, float] = (0.0, 0.0)

    @property
    def core(self) -> tuple[float, float]:
        return (self.pages[0] + self.core_labs[0],
                self.pages[1] + self.core_labs[1])


def _sum_labs(names, minutes) -> tuple[float, float]:
    return (sum(minutes[n][0] for n in names) / 60,
            sum(minutes[n][1] for n in names) / 60)


def audience_hours(audience: Audience) -> Hours:
    """The hours an audience's route takes, from the headers."""
    times = _chapter_times()
    minutes = lab_minutes(times)
    unknown = [n for n in audience.core_labs + audience.optional_labs
               if n not in minutes]
    if unknown:
        raise ValueError(f"{audience.name}: no such lab {unknown}")
    low, high = _pages_minutes(audience.levels, times)
    return Hours((low / 60, high / 60),
                 _sum_labs(audience.core_labs, minutes),
                 _sum_labs(audience.optional_labs, minutes))


def chapter_hours() -> dict[str, dict[str, tuple[float, float]]]:
    """Per chapter (short name): hours as a core and as an optional chapter.

    Core: every page and lab. Optional: a third of the pages and one lab (the
    shortest for the low end, the longest for the high end)."""
    result = {}
    for folder, t in _chapter_times().items():
        pages = (sum(lo for lo, _ in t.pages.values()),
                 sum(hi for _, hi in t.pages.values()))
        labs = list(t.labs.values()) or [(0, 0)]
        result[CHAPTERS[folder]] = {
            CORE: t.hours,
            OPTIONAL: ((pages[0] / 3 + min(labs)[0]) / 60,
                       (pages[1] / 3 + max(labs)[1]) / 60),
        }
    return result


def career_hours(levels) -> tuple[float, float]:
    """(low, high) hours of a career track: a level per chapter."""
    per_chapter = chapter_hours()
    low = high = 0.0
    for chapter, level in zip(CHAPTERS.values(), levels):
        if level == SKIP:
            continue
        lo, hi = per_chapter[chapter][level]
        low, high = low + lo, high + hi
    return low, high


def week_plan(audience: Audience, parts: int | None = None
              ) -> list[list[tuple[str, float]]]:
    """The route's pages and core labs in book order, cut into ``parts`` (default
    ``audience.weeks``) spans of about equal time by the high estimates: a list
    per span of ``(toc entry, minutes)``."""
    parts = parts or audience.weeks
    if not parts:
        raise ValueError(f"{audience.name}: how many parts? (no weeks set)")
    times = _chapter_times()
    level = dict(zip(CHAPTERS, audience.levels))
    items = []
    for entry in toc_files(ROOT):
        kind, folder, name = (entry.split("/") + ["", ""])[:3]
        if folder not in CHAPTERS or name in ("", "index"):
            continue
        t = times[folder]
        if kind == "chapters" and level[folder] != SKIP:
            share = 1.0 if level[folder] == CORE else 1 / 3
            items.append((entry, share * t.pages[name][1]))
        elif kind == "labs" and name[:8] in audience.core_labs:
            items.append((entry, float(t.labs[name][1])))
    total = sum(minutes for _, minutes in items)
    plan: list[list[tuple[str, float]]] = [[] for _ in range(parts)]
    done = 0.0
    for entry, minutes in items:  # an item goes where its middle falls
        plan[min(int((done + minutes / 2) / total * parts), parts - 1)].append(
            (entry, minutes))
        done += minutes
    return plan


def span(low: float, high: float, digits: int = 0) -> str:
    """'7' or '7–8': hours rounded to ``digits`` decimals."""
    low, high = round(low, digits), round(high, digits)
    if digits == 0:
        low, high = int(low), int(high)
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


def label(entry: str) -> str:
    """A short name for a toc entry: 'lab 03_01' or '3 exporting'."""
    kind, folder, name = entry.split("/")
    if kind == "labs":
        return f"lab {name[3:8]}"
    return f"{int(folder[:2])} {name.replace('_', ' ')}"
