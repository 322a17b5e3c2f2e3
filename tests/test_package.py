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
