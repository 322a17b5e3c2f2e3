"""The notebook policy, checked over the repository's solutions/ and labs/.

Solutions are the source of the labs and carry clean outputs; labs are generated, carry
none, and open with a header cell. Every test is parametrized by notebook, so that a
failure names the file.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from clean_notebooks import clean_notebook  # noqa: E402
from make_labs import find_drift  # noqa: E402

SOLUTIONS, LABS = ROOT / "solutions", ROOT / "labs"
SLUG = r"[a-z0-9]+(?:_[a-z0-9]+)*"
FOLDER_NAME = re.compile(rf"(?P<chapter>\d{{2}})_{SLUG}")
FILE_NAME = re.compile(rf"lab(?P<chapter>\d{{2}})_(?P<number>\d{{2}})_{SLUG}\.ipynb")
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
CHECK_CALL = re.compile(r"\bcheck_\w+\(")
HEADER_WORDS = ("Objectives", "Estimated time", "Prerequisites", "GPU")


def relative_paths(folder: Path) -> list[str]:
    """Notebooks under ``folder`` as sorted POSIX paths relative to it."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


SOLUTION_PATHS, LAB_PATHS = relative_paths(SOLUTIONS), relative_paths(LABS)


@cache
def read(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` (read once per session)."""
    return nbformat.read(path, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    """(index, cell) of every code cell."""
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


def test_there_are_solutions():
    assert SOLUTION_PATHS, f"no solution notebooks under {SOLUTIONS}"


@pytest.mark.parametrize("relative", sorted(set(SOLUTION_PATHS) | set(LAB_PATHS)))
def test_solution_and_lab_come_in_pairs(relative):
    assert (SOLUTIONS / relative).exists(), f"labs/{relative} has no solution"
    assert (LABS / relative).exists(), f"solutions/{relative} has no lab: run make labs"


@pytest.mark.parametrize("relative", sorted(set(SOLUTION_PATHS) | set(LAB_PATHS)))
def test_names(relative):
    folder, _, name = relative.rpartition("/")
    folder_match, file_match = FOLDER_NAME.fullmatch(folder), FILE_NAME.fullmatch(name)
    assert folder_match, f"{relative}: the folder must be NN_slug (e.g. 05_hardware)"
    assert file_match, f"{relative}: the file must be labNN_MM_slug.ipynb"
    assert folder_match["chapter"] == file_match["chapter"], (
        f"{relative}: the lab's chapter number differs from its folder's"
    )


@pytest.mark.parametrize("relative", LAB_PATHS)
def test_lab_has_no_outputs_counts_or_markers(relative):
    for index, cell in enumerate(read(LABS / relative).cells):
        assert not cell.get("outputs"), f"cell {index} has outputs"
        assert cell.get("execution_count") is None, f"cell {index} has a count"
        for marker in MARKERS:
            assert marker not in cell.source, f"cell {index} contains {marker!r}"


@pytest.mark.parametrize("relative", LAB_PATHS)
def test_lab_header(relative):
    numbers = FILE_NAME.fullmatch(relative.rpartition("/")[2])
    first = read(LABS / relative).cells[0]
    assert first.cell_type == "markdown", "the first cell must be the Markdown header"
    title = f"# Lab {numbers['chapter']}.{numbers['number']}" if numbers else "# Lab"
    assert re.match(rf"{re.escape(title)}\b", first.source), (
        f"the header must start with {title!r}"
    )
    missing = [word for word in HEADER_WORDS if word not in first.source]
    assert not missing, f"the header lacks {missing}"


@pytest.mark.parametrize("relative", SOLUTION_PATHS)
def test_solution_has_outputs_and_is_clean(relative):
    nb = read(SOLUTIONS / relative)
    assert any(cell.outputs for _, cell in code_cells(nb)), (
        "a solution is committed with its outputs: run make solutions"
    )
    assert clean_notebook(nb) == nb, (
        "not clean: run python tools/clean_notebooks.py (or make solutions)"
    )


@pytest.mark.parametrize("relative", SOLUTION_PATHS)
def test_every_exercise_is_followed_by_a_check(relative):
    cells = code_cells(read(SOLUTIONS / relative))
    for position, (index, cell) in enumerate(cells):
        if MARKERS[0] not in cell.source:
            continue
        following = cells[position + 1][1].source if position + 1 < len(cells) else ""
        assert CHECK_CALL.search(following), (
            f"the exercise in cell {index} must be followed by a check_...() cell"
        )


def test_labs_are_in_sync():
    drift = find_drift(ROOT)
    assert not drift, (
        "labs/ is out of sync with solutions/ (run make labs):\n" + "\n".join(drift)
    )
