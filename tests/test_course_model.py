"""The course model: the committed weights load safely, classify well, and can be
re-created by the training script (checked by accuracy, not by bytes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from model2metal.data import load_digits_split
from model2metal.models import (
    PIXEL_MEAN,
    PIXEL_STD,
    WEIGHTS_PATH,
    DigitsCNN,
    count_parameters,
    load_course_model,
    preprocess,
)

ROOT = Path(__file__).resolve().parents[1]
MIN_ACCURACY = 0.98


def load_training_script():
    spec = importlib.util.spec_from_file_location(
        "train_course_model", ROOT / "tools" / "train_course_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_asset_is_small_and_loads_with_weights_only():
    assert WEIGHTS_PATH.is_file(), "run python tools/train_course_model.py"
    assert WEIGHTS_PATH.stat().st_size <= 1_000_000
    state = torch.load(WEIGHTS_PATH, weights_only=True)
    assert set(state) == set(DigitsCNN().state_dict())


def test_loaded_model_is_in_eval_mode():
    model = load_course_model()
    assert isinstance(model, DigitsCNN)
    assert not model.training
    assert all(not m.training for m in model.modules())


def test_parameter_count(capsys):
    n = count_parameters(load_course_model())
    with capsys.disabled():
        print(f"\nDigitsCNN: {n:,} trainable parameters")
    assert 10_000 < n < 100_000  # small enough for chapter 5's hand-written kernels


def test_test_accuracy():
    _, X_test, _, y_test = load_digits_split()
    with torch.no_grad():
        logits = load_course_model()(preprocess(X_test))
    accuracy = float((logits.argmax(1).numpy() == y_test).mean())
    assert accuracy >= MIN_ACCURACY, f"test accuracy {accuracy:.4f}"


@pytest.mark.parametrize("batch", [1, 32])
def test_output_shape_and_dtype(batch):
    X_train = load_digits_split()[0]
    with torch.no_grad():
        out = load_course_model()(preprocess(X_train[:batch]))
    assert out.shape == (batch, 10)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_eval_output_does_not_depend_on_the_batch():
    # in eval mode BatchNorm uses running statistics: one image alone or in a batch
    X_train = load_digits_split()[0]
    model = load_course_model()
    with torch.no_grad():
        together = model(preprocess(X_train[:8]))
        alone = torch.cat([model(preprocess(X_train[i : i + 1])) for i in range(8)])
    torch.testing.assert_close(alone, together, rtol=1e-5, atol=1e-5)


def test_preprocess():
    images = np.random.default_rng(0).random((5, 8, 8), dtype=np.float32)
    x = preprocess(images)
    assert x.shape == (5, 1, 8, 8) and x.dtype == torch.float32 and x.is_contiguous()
    expected = (images - PIXEL_MEAN) / PIXEL_STD
    np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=1e-6)
    assert preprocess(images[0]).shape == (1, 1, 8, 8)
    assert preprocess(torch.from_numpy(images)).shape == (5, 1, 8, 8)
    with pytest.raises(ValueError, match=r"\(n, 8, 8\)"):
        preprocess(np.zeros((2, 64)))


def test_normalisation_constants_match_the_training_split():
    X_train = load_digits_split()[0]
    assert abs(X_train.mean() - PIXEL_MEAN) < 1e-3
    assert abs(X_train.std() - PIXEL_STD) < 1e-3


def test_random_shift_moves_pixels_by_at_most_one():
    script = load_training_script()
    x = preprocess(load_digits_split()[0][:64])
    shifted = script.random_shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    background = -PIXEL_MEAN / PIXEL_STD
    for original, moved in zip(x[:, 0], shifted[:, 0]):
        padded = torch.nn.functional.pad(original, (1, 1, 1, 1), value=background)
        windows = [
            padded[dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)
        ]
        assert any(torch.equal(moved, w) for w in windows)


def test_training_script_reproduces_the_model(tmp_path):
    """A fresh run of the training script (about 15-30 s here) reaches the accuracy."""
    script = load_training_script()
    settings = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    result = script.train(tmp_path / "digits_cnn.pt", verbose=False)
    assert result["test_accuracy"] >= MIN_ACCURACY, result["test_accuracy"]
    assert result["path"].stat().st_size <= 1_000_000
    reloaded = load_course_model(result["path"])
    assert count_parameters(reloaded) == result["n_params"]
    # the training function leaves the global torch settings as it found them
    assert (
        torch.are_deterministic_algorithms_enabled(),
        torch.get_num_threads(),
    ) == settings


def test_onnx_asset_is_the_committed_weights_with_a_dynamic_batch():
    """model2metal/assets/digits_cnn.onnx matches digits_cnn.pt (re-export with
    tools/export_course_model.py when the weights change)."""
    import onnx

    from model2metal import onnxkit

    spec = importlib.util.spec_from_file_location(
        "export_course_model", ROOT / "tools" / "export_course_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = onnx.load(str(onnxkit.COURSE_ONNX))
    onnx.checker.check_model(model, full_check=True)
    assert onnxkit.input_dims(model) == {"images": ["batch", 1, 8, 8]}
    assert [o.name for o in model.graph.output] == ["logits"]
    assert [o.version for o in model.opset_import if o.domain == ""] == [module.OPSET]
    assert module.max_abs_error(onnxkit.COURSE_ONNX) <= module.MAX_ABS_ERROR
    assert onnxkit.COURSE_ONNX.stat().st_size <= 200_000


def test_course_model_split_is_the_training_scripts_holdout():
    """The pages review mistakes on the validation images the script held out."""
    import numpy as np

    from model2metal.data import COURSE_VAL_FRACTION, course_model_split

    X_fit, X_val, X_test, y_fit, y_val, y_test = course_model_split()
    X_train, X_test2, y_train, _ = load_digits_split()
    assert len(y_fit) + len(y_val) == len(y_train) and np.array_equal(X_test, X_test2)
    # every class is held out in proportion, and fit and validation are disjoint
    for label in range(10):
        share = (y_val == label).sum() / (y_train == label).sum()
        assert abs(share - COURSE_VAL_FRACTION) < 0.02, (label, share)
    fit_rows = {x.tobytes() for x in X_fit}
    assert not any(x.tobytes() in fit_rows for x in X_val)
    # the script draws the same indices from the same seed
    script = load_training_script()
    _, val = script.stratified_holdout(
        y_train, script.VAL_FRACTION, np.random.default_rng(0))
    assert np.array_equal(X_train[val], X_val)


def test_printed_model_fits_the_page_and_names_every_layer():
    model = load_course_model()
    text = repr(model)
    assert all(len(line) <= 76 for line in text.splitlines())
    for name, _ in model.named_children():
        assert f"({name}):" in text
    assert "BatchNorm2d(16)" in text and "padding=(1, 1), bias=False" in text
