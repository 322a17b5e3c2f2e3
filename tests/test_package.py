"""The helper package imports fast and lazily, and seeds reproducibly."""

import subprocess
import sys

import numpy as np


def test_import_is_lazy_and_does_not_import_heavy_libraries():
    code = (
        "import sys, time; t = time.perf_counter(); import model2metal; "
        "dt = time.perf_counter() - t; "
        "heavy = [m for m in ('numba', 'tvm', 'torch', 'matplotlib') "
        "if m in sys.modules]; "
        "print(heavy, dt)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "[]", f"importing model2metal pulled in {out[0]}"
    assert float(out[1]) < 0.5


def test_submodules_load_on_attribute_access():
    import model2metal

    assert model2metal.timing.measure is not None
    assert "device" in dir(model2metal)


def test_seed_everything_makes_numpy_and_torch_repeat():
    import torch

    from model2metal.seeding import seed_everything

    seed_everything(3)
    first = (np.random.rand(3), torch.rand(3))
    seed_everything(3)
    second = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_digits_split_is_stratified_and_scaled():
    from model2metal.data import load_digits_split

    X_train, X_test, y_train, y_test = load_digits_split()
    assert X_train.shape[1:] == (8, 8) and X_train.dtype == np.float32
    assert len(X_train) + len(X_test) == 1797
    assert 0.0 <= X_train.min() and X_train.max() <= 1.0
    assert set(np.bincount(y_test)) <= {35, 36, 37}  # stratified: ~36 of each digit
    again = load_digits_split()
    assert np.array_equal(again[1], X_test)


#: modules every Jupyter kernel has, and the book-only helper (pages.py: myst-nb, yaml)
_KERNEL_DISTRIBUTIONS = {"ipython", "ipykernel", "jupyter-core"}
_BOOK_ONLY = {"pages.py"}
#: imported by TVM's MetaSchedule at run time, so no import statement of ours shows them
_RUNTIME_ONLY = {"psutil", "xgboost-cpu"}


def _imported_modules(source: str) -> set[str]:
    import ast

    lines = [  # IPython magics and shell lines become `pass`, keeping the blocks valid
        ln[: len(ln) - len(ln.lstrip())] + "pass" if ln.lstrip().startswith(("%", "!")) else ln
        for ln in source.split("\n")
    ]
    modules = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def _labs_extra() -> list[str]:
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    return tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["labs"]


def test_the_labs_extra_lists_everything_the_labs_and_checks_import():
    import importlib.metadata as metadata
    import json
    from pathlib import Path

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name as canon

    root = Path(__file__).resolve().parents[1]
    modules = set()
    for path in (root / "model2metal").rglob("*.py"):
        if path.name not in _BOOK_ONLY:
            modules |= _imported_modules(path.read_text(encoding="utf-8"))
    for path in (root / "solutions").rglob("*.ipynb"):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                modules |= _imported_modules("".join(cell["source"]))
    owners = metadata.packages_distributions()
    needed = {canon(owners[m][0]) for m in modules if m in owners} - {"model2metal"}
    needed = (needed | _RUNTIME_ONLY) - _KERNEL_DISTRIBUTIONS
    assert {"torch", "onnxruntime", "apache-tvm", "numba"} <= needed  # the scan works

    listed = {canon(Requirement(r).name) for r in _labs_extra()}
    for requirement in _labs_extra():
        assert "==" in requirement, f"{requirement}: pin it as requirements.txt does"
    reachable, todo = set(), list(listed)
    while todo:  # what installing the extra brings in
        name = todo.pop()
        if name in reachable:
            continue
        reachable.add(name)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canon(requirement.name))
    assert not needed - reachable, (
        f"the labs import {sorted(needed - reachable)}, which model2metal[labs] "
        "does not install"
    )


def test_the_labs_extra_pins_what_requirements_pins():
    from pathlib import Path

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parents[1]
    pins = {}
    for name in ("requirements.txt", "constraints.txt"):
        for line in (root / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line and not line.startswith("-"):
                requirement = Requirement(line)
                pins[requirement.name.lower()] = str(requirement.specifier)
    for text in _labs_extra():
        requirement = Requirement(text)
        assert pins.get(requirement.name.lower()) == str(requirement.specifier), text
