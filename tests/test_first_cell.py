"""The labs' first cell installs the helpers from a source that exists, or says so loudly.

The cell is run here with ``find_spec`` saying the package is missing and ``pip``
replaced by a recorder, in a folder inside a copy of the course and in one outside.
"""

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import first_cell  # noqa: E402
from clean_notebooks import REPO_ROOT  # noqa: E402


def run_cell(monkeypatch, cwd, pip_status=0, installs=True, source=None):
    """Run FIRST_CELL; returns the pip command it ran (None if none) and its output."""
    state = {"installed": False, "command": None}
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        if name == "model2metal":
            return object() if state["installed"] else None
        return real_find_spec(name, *args)

    def pip(command, **kwargs):
        state["command"] = command
        state["installed"] = installs and pip_status == 0
        return types.SimpleNamespace(returncode=pip_status, stdout="",
                                     stderr="ERROR: no such package" if pip_status else "")

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(subprocess, "run", pip)
    monkeypatch.chdir(cwd)
    if source is None:
        monkeypatch.delenv("M2M_SOURCE", raising=False)
    else:
        monkeypatch.setenv("M2M_SOURCE", source)
    exec(first_cell.FIRST_CELL, {})
    return state["command"]


def test_every_solution_and_lab_starts_with_the_cell():
    assert first_cell.main(["--check"]) == 0


def test_inside_a_copy_of_the_course_it_installs_that_copy(monkeypatch, capsys):
    command = run_cell(monkeypatch, REPO_ROOT / "labs" / "01_ml_foundations")
    assert command[-1] == f"{REPO_ROOT}[labs]" and command[1:4] == ["-m", "pip", "install"]
    assert "installed" in capsys.readouterr().out


def test_the_unzipped_labs_download_is_found(monkeypatch, tmp_path):
    copy = tmp_path / "model2metal-labs"
    (copy / "model2metal").mkdir(parents=True)
    (copy / "model2metal" / "__init__.py").write_text("")
    assert run_cell(monkeypatch, tmp_path)[-1] == f"{copy}[labs]"


def test_the_instructors_source_wins(monkeypatch, tmp_path):
    url = "https://example.org/model2metal-0.1.0-py3-none-any.whl"
    assert run_cell(monkeypatch, tmp_path, source=url)[-1] == f"model2metal[labs] @ {url}"


def test_without_a_source_it_stops_and_says_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="labs download.*clone the course.*M2M_SOURCE"):
        run_cell(monkeypatch, tmp_path)


def test_a_failed_install_stops_with_pips_message(monkeypatch):
    with pytest.raises(RuntimeError, match="(?s)failed; nothing below will work.*no such package"):
        run_cell(monkeypatch, REPO_ROOT, pip_status=1)


def test_an_install_that_leaves_the_package_missing_stops(monkeypatch):
    with pytest.raises(RuntimeError, match="failed"):
        run_cell(monkeypatch, REPO_ROOT, installs=False)


def test_with_the_package_present_it_does_nothing(monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran"))
    exec(first_cell.FIRST_CELL, {})
