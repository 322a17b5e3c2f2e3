"""tools/run_tests.py: the order nbval takes the solutions in, the files a marked phase
collects, and the guard (tests/conftest.py) that keeps those two honest."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import foreign_cpu  # noqa: E402
import run_tests  # noqa: E402

import conftest  # noqa: E402


def _course(tmp_path, notebooks):
    for nb in notebooks:
        (tmp_path / nb).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / nb).write_text("{}")
    return tmp_path


NOTEBOOKS = ["solutions/01_a/lab01_01_x.ipynb", "solutions/04_compilers/lab04_01_y.ipynb",
             "solutions/06_careers/lab06_01_capstone.ipynb", "solutions/02_b/lab02_01_z.ipynb"]


def test_without_a_record_the_larger_budgets_go_first_then_path_order(tmp_path):
    root = _course(tmp_path, NOTEBOOKS)
    assert run_tests.solutions_longest_first(root) == [
        "solutions/06_careers/lab06_01_capstone.ipynb",
        "solutions/04_compilers/lab04_01_y.ipynb",
        "solutions/01_a/lab01_01_x.ipynb", "solutions/02_b/lab02_01_z.ipynb"]


def test_recorded_times_order_the_solutions_longest_first(tmp_path):
    root = _course(tmp_path, NOTEBOOKS)
    record = root / run_tests.TIMES_FILE
    record.parent.mkdir(parents=True)
    seconds = {NOTEBOOKS[0]: 5.0, NOTEBOOKS[1]: 50.0, NOTEBOOKS[2]: 20.0}  # one missing
    record.write_text(json.dumps({"notebooks": {k: {"seconds": v}
                                                for k, v in seconds.items()}}))
    assert run_tests.solutions_longest_first(root) == [
        NOTEBOOKS[3],  # not recorded: its 60 s budget stands in
        NOTEBOOKS[1], NOTEBOOKS[2], NOTEBOOKS[0]]
    record.write_text("not json")  # a broken record is no record
    assert run_tests.solutions_longest_first(root)[0] == NOTEBOOKS[2]


def test_the_nbval_command_runs_every_solution_once():
    command = run_tests.nbval_command()
    listed = [a for a in command if a.endswith(".ipynb")]
    on_disk = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "solutions").rglob("*.ipynb")
                     if ".ipynb_checkpoints" not in p.parts)
    assert sorted(listed) == on_disk and len(on_disk) >= 17
    assert command[command.index("--dist") + 1] == "loadfile"  # a notebook stays whole
    assert "--no-loadscope-reorder" in command  # else xdist reorders by cell count


def test_marked_files_finds_the_files_that_spell_the_mark():
    assert "tests/test_book_in_browser.py" in run_tests.marked_files("browser")
    assert "tests/test_lab_stubs.py" in run_tests.marked_files("notebooks")
    assert "tests/test_timing.py" not in run_tests.marked_files("browser")


def _item(path, marks):
    return SimpleNamespace(
        fspath=path, nodeid=f"{Path(path).name}::test_x",
        get_closest_marker=lambda name: object() if name in marks else None)


def test_the_guard_refuses_a_marked_test_in_a_file_that_does_not_spell_the_mark(tmp_path):
    hidden = tmp_path / "test_hidden.py"
    hidden.write_text("import pytest\nMARK = getattr(pytest, 'mark').brow" + "ser\n")
    spelled = tmp_path / "test_spelled.py"
    spelled.write_text("import pytest\npytestmark = pytest.mark." + "browser\n")
    conftest.pytest_collection_modifyitems(None, [_item(spelled, {"browser"}),
                                                  _item(hidden, set())])
    with pytest.raises(RuntimeError, match="never spells 'mark[.]browser'"):
        conftest.pytest_collection_modifyitems(None, [_item(hidden, {"browser"})])


def test_only_the_phases_that_time_nothing_run_one_thread_per_worker():
    env = {"PATH": "/bin", "OMP_NUM_THREADS": "2"}
    for name in ("unit", "stubs"):
        got = run_tests.phase_env(name, env)
        assert {v: got[v] for v in run_tests.THREAD_VARIABLES} == dict.fromkeys(
            run_tests.THREAD_VARIABLES, "1")
        assert got["PATH"] == "/bin"
    # the solutions run as a learner runs them (and the foreign phase sets its own)
    for name in ("nbval", "foreign", "book", "browser"):
        got = run_tests.phase_env(name, env)
        assert got["OMP_NUM_THREADS"] == "2"
        assert not (set(run_tests.THREAD_VARIABLES) - {"OMP_NUM_THREADS"}) & set(got)
    assert run_tests.phase_env("nbval", env)["M2M_RECORD_TIMES"] == run_tests.TIMES_FILE
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": "2"}  # not changed in place
    assert set(run_tests.THREAD_VARIABLES) <= set(foreign_cpu.FOREIGN_VARIABLES)
