"""Checks for lab 03_02 "Benchmark, then quantise".

Conventions the lab states and these checks hold it to:

* ``benchmark(fn, warmup, repeats, clock=time.perf_counter)`` calls ``fn()``
  ``warmup`` times without timing it, then ``repeats`` times, reading ``clock()``
  immediately before and after each timed call, and returns a dict with ``samples``
  (the ``repeats`` durations in seconds, in call order, a list of floats) and the
  floats ``p50``, ``p90``, ``p99`` (percentiles of the samples, NumPy's default linear
  interpolation) and ``mean``. The check drives it with a fake clock, so the expected
  values are exact.
* ``calibration_reader(images, batch_size)`` returns an
  ``onnxruntime.quantization.CalibrationDataReader`` whose ``get_next()`` yields
  ``{"images": batch}`` for consecutive batches of the preprocessed images
  (``model2metal.models.preprocess``; float32, shape ``(b, 1, 8, 8)``, the last batch
  smaller), then ``None``.
* ``quantise(fp32_path, int8_path, calibration_images)`` writes a statically quantised
  QDQ model (int8 weights; convolutions and the final Gemm quantised) calibrated on the
  images it is given, whose test accuracy is within one point of the fp32 model's.
* the calibration images of the lab come from the training split: not one of them is a
  test image.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_true,
    assert_type,
    call_learner,
    describe,
    hint_from_evidence,
    passed,
)

__all__ = [
    "check_benchmark",
    "check_calibration_reader",
    "check_quantise",
    "check_calibration_images",
]


# ---------------------------------------------------------------------------
# 1. the benchmark harness, driven by a fake clock
# ---------------------------------------------------------------------------


class _FakeClock:
    """A clock that only moves when the fake function runs: each call of the
    function advances it by the next scripted duration."""

    def __init__(self, durations):
        self.now = 1000.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self):
        duration = self.durations[self.calls] if self.calls < len(
            self.durations
        ) else self.durations[-1]
        self.calls += 1
        self.now += duration


def _scripts():
    """(case, warmup, repeats, durations of every call in order)."""
    rng = np.random.default_rng(2)
    steady = list(0.001 + 0.0001 * rng.random(60))
    tail = list(0.001 + 0.00005 * rng.random(200))
    for i in (17, 93, 150):
        tail[i] = 0.02  # a few slow calls: a tail
    return [
        ("5 slow first calls (lazy set-up), warmup 5, repeats 40",
         5, 40, [0.3, 0.1, 0.05, 0.02, 0.01] + steady[:40]),
        ("a latency tail: 3 calls of 200 at 20 ms, warmup 2, repeats 200",
         2, 200, [0.05, 0.01] + tail),
        ("warmup 0, repeats 7", 0, 7, [0.004, 0.002, 0.003, 0.001, 0.005,
                                       0.006, 0.007]),
    ]


def _stats(samples) -> dict:
    s = np.asarray(samples, dtype=np.float64)
    return {
        "p50": float(np.percentile(s, 50)),
        "p90": float(np.percentile(s, 90)),
        "p99": float(np.percentile(s, 99)),
        "mean": float(s.mean()),
    }


def check_benchmark(fn) -> None:
    """``fn(func, warmup, repeats, clock)`` -> dict of samples, p50, p90, p99, mean."""
    name = "check_benchmark"
    for case, warmup, repeats, durations in _scripts():
        clock = _FakeClock(durations)
        timed = durations[warmup:warmup + repeats]
        expected = _stats(timed)
        got = call_learner(
            name, case, fn, clock.work, warmup, repeats, clock,
            hint="call the function warmup times without timing, then time each "
            "of the repeats calls with the clock you were given",
        )
        assert_type(got, dict, name, case, "result",
                    "return a dict with the keys samples, p50, p90, p99 and mean")
        missing = [k for k in ("samples", "p50", "p90", "p99", "mean") if k not in got]
        assert_true(not missing, name, case, f"the result lacks {missing}; it has "
                    f"{sorted(map(str, got))}", "return all five entries")
        assert_true(
            clock.calls == warmup + repeats,
            name,
            case,
            f"the function was called {clock.calls} times; expected warmup + repeats "
            f"= {warmup + repeats}",
            "no warm-up calls were made: the first calls of a session are slow "
            "(allocation, lazy initialisation) and must not be timed"
            if clock.calls == repeats and warmup
            else "warm-up calls are real calls (not timed); then one call per sample",
        )
        samples = got["samples"]
        assert_type(samples, list, name, case, "samples",
                    "return the samples as a list of floats (seconds)")
        assert_true(
            all(isinstance(v, float) for v in samples),
            name,
            case,
            f"samples: expected Python floats, got {describe(samples)}",
            "the difference of two clock readings is a float",
        )
        if len(samples) == repeats and np.allclose(
            samples, durations[:repeats], rtol=1e-9
        ) and warmup:
            raise CheckFailed(
                name, case,
                f"your samples are the first {repeats} calls: the warm-up calls "
                "were timed and the last ones dropped",
                "skip the first warmup calls: run them, and do not record them",
            )
        assert_array_close(
            np.array(samples, dtype=np.float64), np.array(timed), name, case,
            rtol=1e-9, atol=1e-12, what="samples (seconds, in call order)",
            hint="read the clock right before and right after each timed call",
        )
        for key in ("p50", "p90", "p99", "mean"):
            value = got[key]
            assert_type(value, (float, np.floating), name, case, key,
                        "return the statistics as floats (seconds)")
            candidates = [
                ("you returned the mean, not the median: the median ignores the "
                 "tail that the mean drags along", expected["mean"]),
                ("that is the maximum; the 99th percentile interpolates between "
                 "the two samples around rank 0.99 (n - 1)", max(timed)),
                ("a percentile of the *sorted* samples: np.percentile sorts for "
                 "you; an index into the unsorted list picks an arbitrary call",
                 timed[min(int(round(0.99 * (len(timed) - 1))), len(timed) - 1)]),
            ]
            if key == "mean":
                candidates = [("you returned the median as the mean",
                               expected["p50"])]
            if abs(float(value) - expected[key]) > 1e-12 + 1e-9 * expected[key]:
                hint = hint_from_evidence(value, candidates, rtol=1e-9, atol=1e-12)
                raise CheckFailed(
                    name, case,
                    f"{key}: expected {expected[key]:.6g} s, got {float(value):.6g}",
                    hint or "np.percentile(samples, q) with q in 0…100",
                )
    passed(name, len(_scripts()))


# ---------------------------------------------------------------------------
# 2. calibration data
# ---------------------------------------------------------------------------


def check_calibration_reader(fn) -> None:
    """``fn(images, batch_size)`` -> a CalibrationDataReader of preprocessed batches."""
    from onnxruntime.quantization import CalibrationDataReader

    from ..data import load_digits_split
    from ..models import preprocess

    name = "check_calibration_reader"
    X_train = load_digits_split()[0]
    cases = [
        ("100 images in batches of 32 (last batch 4)", X_train[:100], 32),
        ("7 images in batches of 8 (one short batch)", X_train[100:107], 8),
        ("5 images in batches of 1", X_train[200:205], 1),
    ]
    for case, images, batch_size in cases:
        expected = [preprocess(images[i:i + batch_size]).numpy()
                    for i in range(0, len(images), batch_size)]
        reader = call_learner(name, case, fn, images, batch_size,
                              hint="subclass CalibrationDataReader and give it a "
                              "get_next method")
        assert_type(reader, CalibrationDataReader, name, case, "result",
                    "quantize_static accepts only a CalibrationDataReader")
        batches = []
        for _ in range(len(expected) + 2):
            item = call_learner(name, case, reader.get_next,
                                label="your reader's get_next()")
            if item is None:
                break
            batches.append(item)
        assert_true(
            len(batches) == len(expected),
            name,
            case,
            f"get_next() gave {len(batches)} batches before None; expected "
            f"{len(expected)}",
            "one batch per call, then None when the images are used up",
        )
        for k, (item, want) in enumerate(zip(batches, expected)):
            what = f"batch {k}"
            assert_true(
                isinstance(item, dict) and list(item) == ["images"],
                name,
                case,
                f"{what}: expected a dict {{'images': array}}, got {describe(item)}",
                "the keys are the model's input names",
            )
            got = item["images"]
            if isinstance(got, np.ndarray) and got.shape == (len(want), 8, 8):
                raise CheckFailed(name, case, f"{what}: shape {got.shape} has no "
                                  "channel axis and is not normalised",
                                  "feed what the model eats: preprocess(images)")
            raw = images[k * batch_size:(k + 1) * batch_size][:, None]
            hint = hint_from_evidence(
                got, [("the batch is not normalised: apply preprocess, as for "
                       "inference (calibration must see what the model will see)",
                       raw)], rtol=1e-6, atol=1e-7,
            )
            assert_array_close(
                got, want, name, case, rtol=1e-6, atol=1e-6, dtype=np.float32,
                expect_type=np.ndarray, what=what,
                hint=hint or "consecutive batches of preprocess(images), in order",
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# 3. static int8 quantisation
# ---------------------------------------------------------------------------


def _accuracy(path, images, labels) -> float:
    from .. import onnxkit
    from ..models import preprocess

    logits = onnxkit.session(path).run(None, {"images": preprocess(images).numpy()})[0]
    return float(np.mean(logits.argmax(axis=1) == labels))


def check_quantise(fn) -> None:
    """``fn(fp32_path, int8_path, calibration_images)`` writes a QDQ int8 model."""
    import onnx

    from .. import onnxkit
    from ..data import load_digits_split

    name = "check_quantise"
    X_train, X_test, _, y_test = load_digits_split()
    case = "the course model, calibrated on 256 training images"
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        shutil.copy(onnxkit.COURSE_ONNX, fp32)
        int8 = Path(tmp) / "int8.onnx"
        call_learner(
            name, case, fn, fp32, int8, X_train[:256],
            hint="quant_pre_process, then quantize_static with your calibration "
            "reader",
        )
        assert_true(int8.is_file(), name, case, f"no file was written at "
                    f"{int8.name}", "write the quantised model to int8_path")
        model = onnx.load(str(int8))
        ops = [n.op_type for n in model.graph.node]
        assert_true(
            "QuantizeLinear" in ops and "DequantizeLinear" in ops,
            name,
            case,
            "the model has no QuantizeLinear/DequantizeLinear nodes: "
            f"{sorted(set(ops))}",
            "use the QDQ format of quantize_static",
        )
        int8_weights = [i.name for i in model.graph.initializer if i.data_type in (
            onnx.TensorProto.INT8, onnx.TensorProto.UINT8)]
        assert_true(
            len(int8_weights) >= 4,
            name,
            case,
            f"only {len(int8_weights)} 8-bit initializers: the weights of the three "
            "convolutions and the Gemm should all be quantised",
            "quantise weights to int8 (QInt8) and keep every Conv and the Gemm in "
            "the quantised op types",
        )
        fp32_acc, int8_acc = _accuracy(fp32, X_test, y_test), _accuracy(
            int8, X_test, y_test
        )
        assert_true(
            int8_acc >= fp32_acc - 0.01,
            name,
            case,
            f"test accuracy fell from {fp32_acc:.3f} (fp32) to {int8_acc:.3f} (int8), "
            "more than one point",
            "calibrate on preprocessed images with the MinMax method, and check the "
            "reader yields every calibration batch",
        )
        assert_true(
            int8.stat().st_size < fp32.stat().st_size,
            name,
            case,
            f"the int8 file ({int8.stat().st_size:,} bytes) is not smaller than the "
            f"fp32 one ({fp32.stat().st_size:,})",
            "the weights must be stored as int8 initializers",
        )
    passed(name, extra=": QDQ int8, within one point of fp32, smaller file")


def check_calibration_images(calibration_images) -> None:
    """The lab's calibration images are training images, never test images."""
    from ..data import load_digits_split

    name = "check_calibration_images"
    X_train, X_test, _, _ = load_digits_split()
    case = "the images you calibrated with"
    assert_type(calibration_images, np.ndarray, name, case, "calibration images")
    assert_true(
        calibration_images.ndim == 3 and calibration_images.shape[1:] == (8, 8),
        name,
        case,
        f"expected images of shape (n, 8, 8), got shape {calibration_images.shape}",
        "pass the raw images you gave the calibration reader",
    )
    test_rows = {row.tobytes() for row in X_test.astype(np.float32)}
    train_rows = {row.tobytes() for row in X_train.astype(np.float32)}
    rows = [row.tobytes() for row in calibration_images.astype(np.float32)]
    leaked = sum(r in test_rows and r not in train_rows for r in rows)
    assert_true(
        leaked == 0,
        name,
        case,
        f"{leaked} of your {len(rows)} calibration images are test images",
        "calibration is fitting (the ranges are learnt from data): use training "
        "images, or the test accuracy of the int8 model is no longer a test",
    )
    unknown = sum(r not in train_rows for r in rows)
    assert_true(
        unknown == 0,
        name,
        case,
        f"{unknown} of your calibration images are not from the training split",
        "take them from X_train",
    )
    passed(name, extra=f": {len(rows)} training images, no test image")
