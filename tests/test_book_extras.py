"""tools/book_extras.py: the status tables and the labs download that the build adds."""

import json
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import book_extras  # noqa: E402

ROOT = book_extras.ROOT


def test_the_download_holds_every_lab_and_the_package_and_is_reproducible(tmp_path):
    first = book_extras.write_labs_zip(ROOT, tmp_path / "a.zip").read_bytes()
    second = book_extras.write_labs_zip(ROOT, tmp_path / "b.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        names = archive.namelist()
        start = archive.read("model2metal-labs/START_HERE.txt").decode()
    labs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "labs").rglob("lab*.ipynb"))
    assert {f"model2metal-labs/{lab}" for lab in labs} <= set(names)
    assert "model2metal-labs/model2metal/assets/digits_cnn.pt" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if "/solutions/" in n]
    assert 'pip install -e ".[labs]"' in start and "model2metal.progress" in start


def test_status_without_a_test_run_says_so(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==1.0\n")
    (tmp_path / "constraints.txt").write_text("")
    text = book_extras.status_tables(tmp_path)
    assert "No test run is recorded" in text
    assert "| numpy | 1.0 |" in text and "✘ differs" in text  # installed is not 1.0
    assert "| nbgrader | not pinned |" in text


def test_status_lists_each_solution_against_its_budget(tmp_path):
    for name in ("requirements.txt", "constraints.txt"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    times = tmp_path / book_extras.TIMES_FILE
    times.parent.mkdir(parents=True)
    times.write_text(json.dumps({"date": "2026-12-03", "machine": "m", "cuda": "sim",
                                 "notebooks": {
        "solutions/04_compilers/lab04_02_gemm_race.ipynb": {
            "seconds": 70.0, "slowest_cell_s": 9.0, "cells": 30},
        "solutions/01_ml_foundations/lab01_01_backprop_numpy.ipynb": {
            "seconds": 70.0, "slowest_cell_s": 2.0, "cells": 32}}}))
    text = book_extras.status_tables(tmp_path)
    assert "| `lab04_02_gemm_race` | 70.0 | 9.0 | 30 | 90 | ✔ |" in text
    assert "| `lab01_01_backprop_numpy` | 70.0 | 2.0 | 32 | 60 | ✘ over |" in text
    assert "| numpy | 2.4.6 | 2.4.6 | ✔ |" in text
