"""Checks of lab 03_02 against wrong and alternative-correct implementations."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from check_helpers import raises_cleanly, rejects
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from model2metal.checks import lab03_02 as checks
from model2metal.data import load_digits_split
from model2metal.models import preprocess

X_train, X_test, y_train, y_test = load_digits_split()

# --- 1. the harness ------------------------------------------------------------------


def bench(fn, warmup=10, repeats=100, clock=time.perf_counter, *, stats=None,
          time_warmup=False, skip_warmup=False, loop_mean=False):
    if not skip_warmup and not time_warmup:
        for _ in range(warmup):
            fn()
    samples = []
    calls = warmup + repeats if time_warmup else repeats
    if loop_mean:
        start = clock()
        for _ in range(calls):
            fn()
        samples = [(clock() - start) / calls] * calls
    else:
        for _ in range(calls):
            start = clock()
            fn()
            samples.append(clock() - start)
    samples = samples[:repeats]
    out = {"samples": samples, "p50": float(np.percentile(samples, 50)),
           "p90": float(np.percentile(samples, 90)),
           "p99": float(np.percentile(samples, 99)), "mean": float(np.mean(samples))}
    out.update((stats or (lambda s: {}))(samples))
    return out


def wrong(**kw):
    return lambda fn, warmup, repeats, clock: bench(fn, warmup, repeats, clock, **kw)


@pytest.mark.parametrize(
    "impl, expect",
    [
        (wrong(skip_warmup=True), r"called 40 times.*no warm-up"),
        (wrong(time_warmup=True), r"samples are the first 40 calls.*warm-up calls"),
        (wrong(loop_mean=True), r"samples \(seconds, in call order\).*values differ"),
        (wrong(stats=lambda s: {"p50": float(np.mean(s))}),
         r"p50: expected.*you returned the mean, not the median"),
        (wrong(stats=lambda s: {"p99": float(np.max(s))}),
         r"p99: expected.*that is the maximum"),
        (wrong(stats=lambda s: {"p99": float(s[int(round(0.99 * (len(s) - 1)))])}),
         r"p99: expected.*\*sorted\* samples"),
        (wrong(stats=lambda s: {"samples": np.array(s)}), r"expected a list"),
        (wrong(stats=lambda s: {"p50": np.float32(np.median(s))}), r"p50: expected"),
        (lambda fn, w, r, clock: None, r"expected a dict"),
    ],
)
def test_benchmark_rejects(impl, expect):
    rejects(checks.check_benchmark, impl, expect=expect)


def test_benchmark_accepts_an_explicit_sort_and_numpy_float_stats():
    def sorted_percentiles(fn, warmup=10, repeats=100, clock=time.perf_counter):
        for _ in range(warmup):
            fn()
        samples = []
        for _ in range(repeats):
            t0 = clock()
            fn()
            t1 = clock()
            samples.append(t1 - t0)
        q = np.quantile(np.sort(samples), [0.5, 0.9, 0.99])
        return {"samples": samples, "p50": q[0], "p90": q[1], "p99": q[2],
                "mean": sum(samples) / len(samples)}

    checks.check_benchmark(bench)
    checks.check_benchmark(sorted_percentiles)


def test_benchmark_learner_error_is_one_message():
    def broken(fn, warmup, repeats, clock):
        return {"samples": [clock() - clock() for _ in range(repeats)]}[0]

    raises_cleanly(checks.check_benchmark, broken, expect=r"raised KeyError")


# --- 2. calibration reader --------------------------------------------------------


class Reader(CalibrationDataReader):
    def __init__(self, images, batch_size, transform=preprocess, drop_last=False):
        stop = len(images) - len(images) % batch_size if drop_last else len(images)
        self.batches = iter([transform(images[i:i + batch_size])
                             for i in range(0, stop, batch_size)])

    def get_next(self):
        batch = next(self.batches, None)
        if batch is None:
            return None
        return {"images": batch.numpy() if hasattr(batch, "numpy") else batch}


class EndlessReader(Reader):
    def get_next(self):
        return {"images": preprocess(np.zeros((1, 8, 8), np.float32)).numpy()}


@pytest.mark.parametrize(
    "impl, expect",
    [
        (lambda x, b: Reader(x, b, transform=lambda a: a[:, None]),
         r"batch 0.*not normalised: apply preprocess"),
        (lambda x, b: Reader(x, b, transform=lambda a: a), r"no channel axis"),
        (lambda x, b: Reader(x, b, drop_last=True), r"gave 3 batches before None"),
        (lambda x, b: EndlessReader(x, b), r"batches before None"),
        (lambda x, b: iter([{"images": preprocess(x).numpy()}]),
         r"expected a onnxruntime.CalibrationDataReader|CalibrationDataReader"),
        (lambda x, b: Reader(x, b, transform=lambda a: preprocess(a).double()),
         r"expected dtype float32"),
    ],
)
def test_calibration_reader_rejects(impl, expect):
    rejects(checks.check_calibration_reader, impl, expect=expect)


def test_calibration_reader_accepts_a_generator_based_reader():
    class GenReader(CalibrationDataReader):
        def __init__(self, images, batch_size):
            self.gen = ({"images": preprocess(images[i:i + batch_size]).numpy()}
                        for i in range(0, len(images), batch_size))

        def get_next(self):
            return next(self.gen, None)

    checks.check_calibration_reader(lambda x, b: Reader(x, b))
    checks.check_calibration_reader(GenReader)


# --- 3. quantisation ------------------------------------------------------------------


def quantise(fp32, int8, images, *, reader=None, per_channel=True, skip=()):
    pre = Path(int8).with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    quantize_static(
        str(pre), str(int8), reader if reader is not None else Reader(images, 32),
        quant_format=QuantFormat.QDQ, per_channel=per_channel,
        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
        nodes_to_exclude=list(skip),
    )


def quantise_dynamic(fp32, int8, images):
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)


@pytest.mark.parametrize(
    "impl, expect",
    [
        (lambda f, i, x: quantise(f, i, x, reader=Reader(
            x, 32, transform=lambda a: (np.asarray(a, np.float32)[:, None])
        )), r"test accuracy fell from"),
        (lambda f, i, x: None, r"no file was written"),
        (lambda f, i, x: __import__("shutil").copy(f, i),
         r"no QuantizeLinear/DequantizeLinear"),
    ],
)
def test_quantise_rejects(impl, expect):
    rejects(checks.check_quantise, impl, expect=expect)


def test_quantise_accepts_per_tensor_weights():
    checks.check_quantise(quantise)
    checks.check_quantise(lambda f, i, x: quantise(f, i, x, per_channel=False))


# --- the calibration set -------------------------------------------------------------


def test_calibration_on_test_images_is_rejected():
    rejects(checks.check_calibration_images, X_test[:100],
            expect=r"100 of your 100 calibration images are test images")
    mixed = np.concatenate([X_train[:200], X_test[:10]])
    rejects(checks.check_calibration_images, mixed,
            expect=r"10 of your 210 calibration images are test images")
    rejects(checks.check_calibration_images, X_train[:5].reshape(5, 64),
            expect=r"shape \(n, 8, 8\)")
    rejects(checks.check_calibration_images, X_train[:5] * 2,
            expect=r"not from the training split")
    checks.check_calibration_images(X_train[500:900])
