"""Unit tests of the lab generator (tools/make_labs.py) and the cleaner
(tools/clean_notebooks.py), on small synthetic notebooks."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))

import clean_notebooks  # noqa: E402
import make_labs  # noqa: E402
from clean_notebooks import clean_notebook  # noqa: E402
from make_labs import MarkerError, lab_id_from_path, make_lab  # noqa: E402

LAB_ID = "lab02_03"
RELATIVE = Path("02_vision/lab02_03_conv.ipynb")


def notebook(*cells) -> nbformat.NotebookNode:
    """A notebook of ``cells`` with the metadata Jupyter writes, volatile parts too."""
    nb = new_notebook(cells=list(cells))
    nb.metadata = {
        "kernelspec": {
            "display_name": "Python 3",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python", "version": "3.11.9"},
        "widgets": {"state": {}},
    }
    return nb


def code(source: str, **kwargs) -> nbformat.NotebookNode:
    """A code cell from a triple-quoted ``source``, its outer newlines dropped."""
    return new_code_cell(source.strip("\n"), **kwargs)


def lab_source(source: str) -> str:
    """The lab version of one code cell; it must still be valid Python."""
    result = make_lab(notebook(code(source)), LAB_ID).cells[0].source
    compile(result, "<lab cell>", "exec")
    return result


def executed_code_cell() -> nbformat.NotebookNode:
    """A code cell as Jupyter stores it after a run: counts, outputs, metadata."""
    volatile = {"iopub.status.idle": "2026-11-02T10:00:00.000000Z"}
    cell = code(
        "net = object()\nnet",
        execution_count=7,
        metadata={"tags": ["nbval-ignore-output"], "execution": volatile},
    )
    cell.outputs = [
        new_output("stream", name="stdout", text="made <object at 0x7f3a2c9e1d50>\n"),
        new_output(
            "execute_result",
            data={"text/plain": "<object at 0x7f3a2c9e1d50>"},
            execution_count=7,
        ),
    ]
    return cell


# --- the stub ---------------------------------------------------------------------


def test_stub_keeps_indentation_in_a_method():
    source = '''
class Net:
    def forward(self, x):
        """Double x."""
        ### BEGIN SOLUTION
        y = x * 2
        return y
        ### END SOLUTION
'''
    assert lab_source(source) == (
        'class Net:\n    def forward(self, x):\n        """Double x."""\n'
        '        raise NotImplementedError("lab02_03: implement forward()")'
    )


def test_marker_text_is_the_message():
    source = """
def saxpy(a, x, y):
    ### BEGIN SOLUTION: implement saxpy with one NumPy expression
    return a * x + y
    ### END SOLUTION
"""
    assert lab_source(source).endswith(
        "    raise NotImplementedError("
        '"lab02_03: implement saxpy with one NumPy expression")'
    )


def test_message_names_the_innermost_def_through_other_blocks():
    source = """
def relu(x):
    return max(x, 0)

def clip(x, low):
    if x < low:
        ### BEGIN SOLUTION
        x = low
        ### END SOLUTION
    return x
"""
    stub = '        raise NotImplementedError("lab02_03: implement clip()")'
    assert f"{stub}\n    return x" in lab_source(source)


def test_message_names_a_class_and_falls_back_to_the_cell():
    source = """
class Tiny:
    ### BEGIN SOLUTION
    size = 3
    ### END SOLUTION
### BEGIN SOLUTION
answer = Tiny.size
### END SOLUTION
print(answer)
"""
    assert lab_source(source) == (
        'class Tiny:\n    raise NotImplementedError("lab02_03: implement Tiny")\n'
        'raise NotImplementedError("lab02_03: complete this cell")\nprint(answer)'
    )


def test_several_marker_pairs_in_one_cell():
    source = """
def f():
    ### BEGIN SOLUTION
    return 1
    ### END SOLUTION

def g():
    ### BEGIN SOLUTION: return two
    return 2
    ### END SOLUTION
"""
    assert lab_source(source) == (
        'def f():\n    raise NotImplementedError("lab02_03: implement f()")\n\n'
        'def g():\n    raise NotImplementedError("lab02_03: return two")'
    )


def test_message_quotes_are_escaped():
    source = '### BEGIN SOLUTION: print "hi" \\ there\nprint(1)\n### END SOLUTION'
    result = lab_source(source)
    with pytest.raises(NotImplementedError, match=r'lab02_03: print "hi" \\ there'):
        exec(result, {})


@pytest.mark.parametrize(
    "source, problem",
    [
        ("x = 1\n### BEGIN SOLUTION\nx = 2", "line 2: BEGIN SOLUTION without END"),
        ("x = 1\n### END SOLUTION", "line 2: END SOLUTION without BEGIN"),
        (
            "### BEGIN SOLUTION\n### BEGIN SOLUTION\n"
            "### END SOLUTION\n### END SOLUTION",
            "line 2: BEGIN SOLUTION inside",
        ),
        (
            "x = 1  ### BEGIN SOLUTION\n### END SOLUTION",
            "line 1: a solution marker must",
        ),
    ],
)
def test_bad_markers_raise_with_cell_and_line(source, problem):
    nb = notebook(new_markdown_cell("# Lab"), new_code_cell(source))
    with pytest.raises(MarkerError, match=f"cell 1, {problem}"):
        make_lab(nb, LAB_ID)


# --- cells, tags, outputs and metadata -------------------------------------------


def test_solution_markdown_becomes_a_placeholder_without_the_tag():
    nb = notebook(
        new_markdown_cell("Because caches.", metadata={"tags": ["solution"]}),
        new_markdown_cell("Why?", metadata={"tags": ["solution", "keep"]}),
    )
    lab = make_lab(nb, LAB_ID)
    assert [cell.source for cell in lab.cells] == ["*Your answer here.*"] * 2
    assert lab.cells[0].metadata == {}
    assert lab.cells[1].metadata == {"tags": ["keep"]}


def test_remove_in_lab_cells_are_dropped():
    nb = notebook(
        new_markdown_cell("keep"),
        code("secret()", metadata={"tags": ["remove-in-lab"]}),
        code("pip()", metadata={"tags": ["nbval-skip"]}),
    )
    lab = make_lab(nb, LAB_ID)
    assert [cell.source for cell in lab.cells] == ["keep", "pip()"]
    assert [cell.id for cell in lab.cells] == ["c000", "c002"]
    assert lab.cells[1].metadata == {"tags": ["nbval-skip"]}


def test_outputs_counts_and_volatile_metadata_are_stripped():
    nb = notebook(executed_code_cell())
    lab = make_lab(nb, LAB_ID)
    cell = lab.cells[0]
    assert cell.outputs == [] and cell.execution_count is None
    assert cell.metadata == {"tags": ["nbval-ignore-output"]}
    assert lab.metadata == {
        "kernelspec": nb.metadata.kernelspec,
        "language_info": {"name": "python"},
    }
    assert nb.cells[0].outputs, "make_lab must not change its argument"


def test_lab_id_from_path():
    assert (
        lab_id_from_path("solutions/00_start_here/lab00_01_toolchain.ipynb")
        == "lab00_01"
    )
    with pytest.raises(ValueError, match="labNN_MM_slug"):
        lab_id_from_path("solutions/00_start_here/toolchain.ipynb")


# --- the command line, on a fake tree --------------------------------------------


def write_solution(root: Path, *cells, relative: Path = RELATIVE) -> Path:
    """Store a solution notebook at ``root/solutions/relative``."""
    path = root / "solutions" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook(*cells), path)
    return path


def exercise_cells():
    """A header, one exercise and an executed cell."""
    return (
        new_markdown_cell("# Lab 02.03"),
        code("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        executed_code_cell(),
    )


def test_generation_is_byte_deterministic(tmp_path):
    write_solution(tmp_path, *exercise_cells())
    assert make_labs.main(["--root", str(tmp_path)]) == 0
    lab = tmp_path / "labs" / RELATIVE
    first = lab.read_bytes()
    lab.unlink()
    assert make_labs.main(["--root", str(tmp_path)]) == 0
    assert lab.read_bytes() == first and first.endswith(b"}\n")
    assert make_labs.main(["--check", "--root", str(tmp_path)]) == 0


def test_check_reports_drift_missing_and_stale_labs(tmp_path, capsys):
    solution = write_solution(tmp_path, *exercise_cells())
    make_labs.main(["--root", str(tmp_path)])
    write_solution(tmp_path, *exercise_cells(), new_markdown_cell("new"))
    write_solution(
        tmp_path, *exercise_cells(), relative=Path("02_vision/lab02_04_x.ipynb")
    )
    stale = tmp_path / "labs/05_hardware/lab05_01_gone.ipynb"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    capsys.readouterr()
    assert make_labs.main(["--check", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"differs: labs/{RELATIVE.as_posix()}" in out
    assert "missing: labs/02_vision/lab02_04_x.ipynb" in out
    assert "no solution: labs/05_hardware/lab05_01_gone.ipynb" in out
    assert "make labs" in out
    assert make_labs.main(["--root", str(tmp_path)]) == 0
    assert not stale.parent.exists(), "a lab without solution must be deleted"
    assert make_labs.main(["--check", "--root", str(tmp_path)]) == 0
    assert solution.exists()


def test_cli_marker_error_names_the_file(tmp_path, capsys):
    write_solution(tmp_path, new_markdown_cell("# Lab"), code("### END SOLUTION"))
    assert make_labs.main(["--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"solutions/{RELATIVE.as_posix()}: cell 1, line 1: END SOLUTION" in err
    assert not (tmp_path / "labs").exists()


# --- the cleaner ------------------------------------------------------------------


def test_cleaner_keeps_outputs_renumbers_counts_strips_addresses_and_metadata():
    nb = notebook(
        new_markdown_cell("Hi", metadata={"collapsed": True}),
        executed_code_cell(),
        executed_code_cell(),
    )
    clean = clean_notebook(nb)
    cell = clean.cells[1]
    # counts stay (nbval needs them) but are 1, 2, ... whatever the kernel numbered
    assert [c.execution_count for c in clean.cells[1:]] == [1, 2]
    assert cell.metadata == {"tags": ["nbval-ignore-output"]}
    assert cell.outputs[0].text == "made <object at 0x...>\n"
    assert cell.outputs[1].data["text/plain"] == "<object at 0x...>"
    assert clean.cells[2].outputs[1].execution_count == 2
    assert clean.cells[0].metadata == {}
    assert [c.id for c in clean.cells] == ["c000", "c001", "c002"]
    assert clean.metadata.language_info == {"name": "python"}
    assert "widgets" not in clean.metadata
    assert nb.cells[1].execution_count == 7, "clean_notebook must not change its input"


def test_cleaner_is_idempotent():
    clean = clean_notebook(notebook(executed_code_cell()))
    assert clean_notebook(clean) == clean


def test_cleaner_check_mode(tmp_path, capsys):
    path = write_solution(tmp_path, executed_code_cell())
    assert clean_notebooks.main(["--check", "--root", str(tmp_path)]) == 1
    assert f"not clean: {path}" in capsys.readouterr().out
    assert clean_notebooks.main(["--root", str(tmp_path)]) == 0
    cleaned = path.read_bytes()
    assert clean_notebooks.main(["--check", str(path)]) == 0
    assert clean_notebooks.main([str(path)]) == 0 and path.read_bytes() == cleaned
