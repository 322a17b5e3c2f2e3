"""make nbgrader: the course tree it writes, and nbgrader's own tools grading with it.

The fast tests read the source notebooks of every lab. The slow one (marked
``notebooks``) runs ``nbgrader generate_assignment``, ``autograde`` and
``generate_feedback`` on lab 01_01 for three submissions: the solution typed into the
release (full automatic marks), the untouched release (0), and a partial one with a wrong
answer that also tries to switch the checks off (only its two finished exercises score).
It also checks that the release's exercise cells are the labs' own, stubs included, and
that nbgrader loaded the course's config (it logs a config that raises and goes on).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import make_nbgrader  # noqa: E402
from clean_notebooks import REPO_ROOT, solution_paths  # noqa: E402
from make_labs import lab_id_from_path  # noqa: E402
from model2metal.progress import check_calls  # noqa: E402

LAB = "lab01_01"


def _grader(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    out = tmp_path_factory.mktemp("course")
    summary = make_nbgrader.write_course(REPO_ROOT, out)
    return out, summary


def _source(out: Path, lab_id: str):
    (path,) = (out / "source" / lab_id).glob("*.ipynb")
    return nbformat.read(path, as_version=4)


def test_every_lab_becomes_an_assignment(course):
    out, summary = course
    assert set(summary) == {lab_id_from_path(p) for p in solution_paths(REPO_ROOT)}
    assert (out / "nbgrader_config.py").exists()
    for lab_id, points in summary.items():
        assert points["checks"] >= 3 and points["answers"] >= 3 and points["manual"] >= 1


@pytest.mark.parametrize("solution", solution_paths(REPO_ROOT), ids=lambda p: p.stem)
def test_source_cells_carry_nbgrader_metadata(course, solution):
    out, _ = course
    nb = _source(out, lab_id_from_path(solution))
    ids = [_grader(c)["grade_id"] for c in nb.cells if _grader(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    for cell in nb.cells:
        meta, tags = _grader(cell), cell.metadata.get("tags", [])
        assert "solution" not in tags and "remove-in-lab" not in tags
        assert not (cell.cell_type == "code" and cell.outputs), "outputs stay out"
        if "### BEGIN SOLUTION" in cell.source:
            assert meta["solution"] and not meta["grade"], cell.source[:80]
            assert meta["grade_id"].startswith("answer_")
            lab_source = cell.metadata["model2metal"]["lab_source"]
            assert "### BEGIN SOLUTION" not in lab_source
            assert f'raise NotImplementedError("{lab_id_from_path(solution)}: ' in lab_source
        elif cell.cell_type == "code" and check_calls(cell.source):
            assert meta["grade"] and meta["locked"] and meta["points"] >= 1
            assert cell.source.split("\n")[1].startswith("checks = importlib.reload(")
            assert meta["grade_id"].startswith("check_")
        elif meta:
            assert cell.cell_type == "markdown" and meta["solution"] and meta["grade"]
        if meta:
            assert meta["schema_version"] == 3


def test_a_check_shown_failing_inside_try_earns_no_points(course):
    out, summary = course
    demo = [c for c in _source(out, "lab05_01").cells if "checks.check_dot(dot_strict)" in c.source]
    assert len(demo) == 1 and not _grader(demo[0])  # shown, not graded
    assert summary["lab05_01"]["checks"] == 4


def test_grade_ids_do_not_depend_on_cell_positions():
    nb = nbformat.read(next(p for p in solution_paths(REPO_ROOT) if LAB in p.name), 4)
    first, _ = make_nbgrader.nbgrader_notebook(nb, LAB)
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("A note an instructor added."))
    second, _ = make_nbgrader.nbgrader_notebook(nb, LAB)
    ids = [[_grader(c).get("grade_id") for c in n.cells if _grader(c)] for n in (first, second)]
    assert ids[0] == ids[1]


def test_repeated_names_get_numbered():
    taken = set()
    assert [make_nbgrader._unique("reflection", taken) for _ in range(3)] == [
        "reflection", "reflection_2", "reflection_3"]


def test_the_timeout_follows_the_recorded_slowest_cell(tmp_path):
    assert make_nbgrader.cell_timeout(tmp_path)[0] == 600  # no run recorded
    times = tmp_path / make_nbgrader.TIMES_FILE
    times.parent.mkdir(parents=True)
    times.write_text(json.dumps({"date": "d", "notebooks": {
        "a.ipynb": {"slowest_cell_s": 28.2}, "b.ipynb": {"slowest_cell_s": 3.0}}}))
    assert make_nbgrader.cell_timeout(tmp_path)[0] == 120  # 4 x 28.2 = 113 -> floor 120
    times.write_text(json.dumps({"date": "d", "notebooks": {"a": {"slowest_cell_s": 50}}}))
    assert make_nbgrader.cell_timeout(tmp_path)[0] == 210  # 200 rounded up to 30 s
    times.write_text("{not json")
    assert make_nbgrader.cell_timeout(tmp_path)[0] == 600


def test_unknown_labs_are_refused(tmp_path):
    assert make_nbgrader.main(["lab99_99", "--out", str(tmp_path)]) == 1


def test_solutions_are_left_alone(course):
    for path in solution_paths(REPO_ROOT):
        assert '"nbgrader"' not in path.read_text(encoding="utf-8")


# --- nbgrader itself -----------------------------------------------------------------


def _nbgrader(course_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course_dir, capture_output=True, text=True, timeout=600,
        # nbgrader runs the `alembic` command: the venv's bin must be on PATH
        env=dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}"
                 f"{os.environ.get('PATH', '')}"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # nbgrader logs a config file that raises and goes on with its defaults
    assert "Exception while loading config file" not in result.stderr, result.stderr[-3000:]
    return result.stdout + result.stderr


def _submit(course_dir: Path, student: str, nb) -> None:
    (release,) = (course_dir / "release" / LAB).glob("*.ipynb")
    target = course_dir / "submitted" / student / LAB / release.name
    target.parent.mkdir(parents=True)
    nbformat.write(nb, target)


@pytest.mark.notebooks
def test_nbgrader_grades_the_lab(tmp_path):
    make_nbgrader.write_course(REPO_ROOT, tmp_path, [LAB])
    _nbgrader(tmp_path, "generate_assignment", LAB, "--force")
    (release_path,) = (tmp_path / "release" / LAB).glob("*.ipynb")
    release = nbformat.read(release_path, as_version=4)
    answers = {
        _grader(c)["grade_id"]: c.source
        for c in _source(tmp_path, LAB).cells
        if _grader(c).get("solution") and c.cell_type == "code"
    }
    checks = {_grader(c)["grade_id"]: _grader(c)["points"]
              for c in release.cells if _grader(c).get("grade")
              and c.cell_type == "code"}
    lab = nbformat.read(next((REPO_ROOT / "labs").rglob(release_path.name)), as_version=4)
    exercises = [c for c in release.cells if _grader(c).get("solution")
                 and c.cell_type == "code"]
    assert len(exercises) == len(answers) >= 4
    for cell in exercises:  # solutions gone; each stub is the lab's own, word for word
        assert "### BEGIN SOLUTION" not in cell.source and "model2metal" not in cell.metadata
        assert cell.source in [c.source for c in lab.cells], cell.source
    assert 'raise NotImplementedError("lab01_01: implement unbroadcast()")' in "\n".join(
        c.source for c in exercises)

    def filled(grade_ids):
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        for cell in nb.cells:
            if _grader(cell).get("grade_id") in grade_ids:
                cell.source = answers[_grader(cell)["grade_id"]]
        return nb

    _submit(tmp_path, "complete", filled(set(answers)))
    _submit(tmp_path, "untouched", release)
    partial = filled({"answer_unbroadcast", "answer_add_backward__mul_backward"})
    matmul = next(c for c in partial.cells
                  if _grader(c).get("grade_id") == "answer_matmul_backward")
    matmul.source = (  # a wrong answer (the gradients swapped) that switches the checks off
        "def matmul_backward(grad_out, a, b):\n    return a.T @ grad_out, grad_out @ b.T"
        "\n\nfor name in dir(checks):\n    if name.startswith('check_'):\n"
        "        setattr(checks, name, lambda *args, **kwargs: None)\n"
    )
    _submit(tmp_path, "partial", partial)
    _nbgrader(tmp_path, "autograde", LAB, "--create", "--force")

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        def scores(student):
            return {grade_id: gradebook.find_grade(grade_id, release_path.stem, LAB,
                                                   student).score for grade_id in checks}

        assert scores("complete") == checks
        assert sum(scores("untouched").values()) == 0
        partial_expected = {grade_id: 0 for grade_id in checks} | {
            "check_unbroadcast": 1, "check_add_backward__check_mul_backward": 2}
        assert scores("partial") == partial_expected
        submission = gradebook.find_submission_notebook(release_path.stem, LAB, "complete")
        assert submission.max_score == sum(checks.values()) + 5  # + the reflection

    _nbgrader(tmp_path, "generate_feedback", LAB, "--force")
    (feedback,) = (tmp_path / "feedback" / "partial" / LAB).glob("*.html")
    text = feedback.read_text(encoding="utf-8")
    assert "check_matmul_backward failed" in text  # the course's own message
    assert "lab01_01: implement relu_forward()" in text  # and the lab's own stub
