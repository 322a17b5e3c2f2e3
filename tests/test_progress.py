"""python -m model2metal.progress: per lab, which checks pass, on any notebook.

The fast tests feed the grading step hand-made executed cells. The slow ones (marked
``notebooks``) run lab 01_01 as solution (13/13), as generated lab (0/13, every check
"not implemented" or not reached), and as a broken notebook made from the solution
here: an answer that loops forever, one that raises, a renamed function and a deleted
check cell; plus a notebook whose kernel dies, and files that are not labs.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from model2metal import progress

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions/01_ml_foundations/lab01_01_backprop_numpy.ipynb"
LAB = ROOT / "labs/01_ml_foundations/lab01_01_backprop_numpy.ipynb"


def executed(source, *outputs):
    cell = new_code_cell(source, execution_count=1)
    cell.outputs = list(outputs)
    return cell


def stream(text):
    return new_output("stream", name="stdout", text=text)


def error(ename, evalue):
    return new_output("error", ename=ename, evalue=evalue, traceback=[])


def statuses(cells, expected):
    return {r.check: (r.status, r.detail) for r in progress._merge(expected, cells)}


def test_pass_lines_count_once_per_call():
    cells = [executed("checks.check_a(f)\nchecks.check_a(g)", stream("✔ check_a passed\n"))]
    assert statuses(cells, ["check_a"])["check_a"][0] == "fail"  # the second call printed nothing
    cells[0].outputs = [stream("✔ check_a passed (3 cases)\n✔ check_a passed\n")]
    assert statuses(cells, ["check_a"])["check_a"] == ("pass", "")


def test_a_failure_names_the_case_and_stops_the_cell():
    message = "check_b failed on case 'empty':\n  expected shape (0,), got (1,)\n  Hint: ..."
    cells = [executed("checks.check_a(f)\nchecks.check_b(f)\nchecks.check_c(f)",
                      stream("✔ check_a passed\n"), error("CheckFailed", message))]
    result = statuses(cells, ["check_a", "check_b", "check_c"])
    assert result["check_a"][0] == "pass"
    assert result["check_b"] == ("fail", "failed on case 'empty': expected shape (0,), got (1,)")
    assert result["check_c"] == ("not run", "not run (an earlier check in its cell failed)")


def test_stubs_renames_timeouts_and_deleted_cells():
    cells = [
        executed("checks.check_a(f)", error("NotImplementedError", "lab01_01: implement f()")),
        executed("checks.check_b(g)", error("NameError", "name 'g' is not defined")),
        executed("checks.check_c(h)", error("CellTimeoutError", "the cell ran longer than 5 s")),
        new_code_cell("checks.check_e(k)"),  # never executed: the kernel died before it
        new_markdown_cell("checks.check_a(f) in prose is not a call"),
    ]
    result = statuses(cells, ["check_a", "check_b", "check_c", "check_d", "check_e"])
    assert result["check_a"] == ("not implemented",
                                 "not implemented yet (lab01_01: implement f())")
    assert result["check_b"] == ("fail", "NameError: name 'g' is not defined")
    assert result["check_c"] == ("fail", "the cell ran longer than 5 s")
    assert result["check_d"][0] == "not run" and "deleted" in result["check_d"][1]
    assert result["check_e"][0] == "not run" and "kernel" in result["check_e"][1]


def test_a_check_shown_failing_inside_try_is_not_graded():
    cell = executed("dot_strict = dot\ntry:\n    checks.check_dot(dot_strict)\n"
                    "except checks.CheckFailed as failed:\n    print(failed)",
                    stream("check_dot failed on case 'the assembly':\n  no packed ops\n"))
    assert progress.check_calls(cell.source) == []
    assert statuses([executed("checks.check_dot(dot)", stream("✔ check_dot passed\n")),
                     cell], ["check_dot"])["check_dot"] == ("pass", "")
    assert progress.check_calls("%time checks.check_a(f)\nchecks.check_b(g)") == [
        "check_a", "check_b"]
    assert progress.check_calls("checks.check_a(f) +") == ["check_a"]  # does not parse


def test_the_worst_outcome_of_repeated_calls_wins():
    cells = [executed("checks.check_a(f)", stream("✔ check_a passed\n")),
             executed("checks.check_a(g)", error("CheckFailed", "check_a failed:\n  no"))]
    assert statuses(cells, ["check_a"])["check_a"] == ("fail", "failed: no")


def test_long_messages_are_cut_and_colours_removed():
    text = progress._first_lines("\x1b[31m" + "x" * 300)
    assert len(text) == 110 and text.endswith("...") and "\x1b" not in text


@pytest.mark.parametrize("solution", sorted(ROOT.glob("solutions/*/lab*.ipynb")),
                         ids=lambda p: p.stem)
def test_the_report_lists_exactly_the_checks_the_solution_calls(solution):
    nb = nbformat.read(solution, as_version=4)
    lab_id = progress._lab_id(solution, nb)
    called = {name for cell in nb.cells if cell.cell_type == "code"
              for name in progress.CHECK_CALL.findall(cell.source)}
    assert set(progress.lab_checks(lab_id)) == called


def test_files_that_are_not_labs_are_named_and_skipped(tmp_path, capsys):
    (tmp_path / "lab_notes.ipynb").write_text("{not json")
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1")]), tmp_path / "lab_mine.ipynb")
    assert progress.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "not a readable notebook" in out and "not a course lab" in out
    assert progress.main([str(tmp_path / "missing")]) == 2


def test_a_renamed_lab_file_is_recognised_by_its_checks_import():
    nb = new_notebook(cells=[new_code_cell("from model2metal.checks import lab02_03 as checks")])
    assert progress._lab_id(Path("my copy.ipynb"), nb) == "lab02_03"


# --- whole notebooks -----------------------------------------------------------------


def _report(path, timeout=120):
    report = progress.run_lab(path, timeout)
    return report, {r.check: r for r in report.results}


@pytest.mark.notebooks
def test_full_marks_on_the_solution_and_zero_on_the_lab():
    report, _ = _report(SOLUTION)
    assert report.passed == len(report.results) == 13, report.text()
    report, results = _report(LAB)
    assert report.passed == 0, report.text()
    assert all(r.status in ("not implemented", "not run") for r in report.results)
    assert results["check_unbroadcast"].detail == (
        "not implemented yet (lab01_01: implement unbroadcast())")
    assert report.cell_errors == []  # the stubs' errors are the checks' business


def _cell_defining(nb, function):
    (cell,) = [c for c in nb.cells if c.cell_type == "code"
               and re.search(rf"^def {function}\(", c.source, re.MULTILINE)]
    return cell


@pytest.mark.notebooks
def test_a_broken_notebook_gets_partial_results(tmp_path):
    nb = nbformat.read(SOLUTION, as_version=4)
    _cell_defining(nb, "unbroadcast").source = (
        "def unbroadcast(grad, shape):\n    return grad\n\n"
        "while True:  # a learner's endless loop\n    pass")
    relu = _cell_defining(nb, "relu_forward")
    relu.source = relu.source.replace("def relu_forward(", "def my_relu(")  # renamed
    _cell_defining(nb, "sgd_step").source = (
        "def sgd_step(params, lr):\n    raise ValueError('learning rate too high')")
    nb.cells = [c for c in nb.cells if "checks.check_sum_backward" not in c.source]  # deleted
    path = tmp_path / SOLUTION.name
    nbformat.write(nb, path)
    report, results = _report(path, timeout=5)
    assert results["check_unbroadcast"].status == "fail"  # it returns grad unchanged
    assert any("limit of 5 s" in line for line in report.cell_errors), report.text()
    assert results["check_relu"].status == "fail"
    assert "relu_forward" in results["check_relu"].detail
    assert results["check_sgd_step"].status == "fail"
    assert "learning rate too high" in results["check_sgd_step"].detail
    assert results["check_sum_backward"].status == "not run"
    assert "deleted" in results["check_sum_backward"].detail
    for name in ("check_matmul_backward", "check_softmax_cross_entropy",
                 "check_numerical_gradient"):
        assert results[name].status == "pass", report.text()
    assert 3 <= report.passed < 13


@pytest.mark.notebooks
def test_a_dying_kernel_is_reported_not_raised(tmp_path):
    nb = new_notebook(cells=[
        new_code_cell("from model2metal.checks import lab01_01 as checks"),
        new_code_cell("import os\nos._exit(3)"),
        new_code_cell("checks.check_unbroadcast(lambda g, s: g)"),
    ])
    path = tmp_path / "lab01_01_died.ipynb"
    nbformat.write(nb, path)
    report, results = _report(path)
    assert results["check_unbroadcast"].status == "not run"
    assert "kernel" in results["check_unbroadcast"].detail
    assert json.loads(path.read_text())["cells"][2]["outputs"] == []  # the file is untouched
