"""Honest timing: warm-up, repeats, the median and the spread, and the hardware.

``measure(fn, *args)`` calls ``fn(*args)`` a few times to warm up (JIT compilation,
caches, lazy allocation), then takes ``repeat`` samples. Each sample times ``number``
back-to-back calls and divides, so that very short functions are not drowned in timer
resolution; ``number`` is chosen automatically so that one sample lasts at least
``min_sample_s``. The result reports the median and the interquartile range, never the
mean (one slow outlier — a page fault, another process — would move it).

``interleave({"a": f, "b": g})`` compares calls that each last a millisecond or more
on a machine other programs share: it times them in turns, one call each per round
(the order reverses every round), so that sample ``k`` of every result comes from the
same moment and a ratio taken pair by pair cancels what the machine was doing then.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = ["TimingResult", "measure", "interleave", "format_seconds", "table"]


def format_seconds(s: float) -> str:
    """1.2e-6 -> '1.20 µs'; picks ns, µs, ms or s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if abs(s) >= scale or unit == "ns":
            return f"{s / scale:.3g} {unit}"
    raise AssertionError("unreachable")


@dataclass
class TimingResult:
    """Per-call times in seconds from ``measure``."""

    name: str
    samples: list[float]
    number: int
    warmup: int
    hardware: str = field(default="")

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def q1(self) -> float:
        return _quantile(self.samples, 0.25)

    @property
    def q3(self) -> float:
        return _quantile(self.samples, 0.75)

    @property
    def best(self) -> float:
        return min(self.samples)

    def per_second(self, work: float) -> float:
        """Throughput: ``work`` units per call (FLOPs, bytes, images) / the median."""
        return work / self.median

    def __str__(self) -> str:
        # two lines, each short enough for a book page (about 75 characters)
        calls = f" × {self.number} calls" if self.number > 0 else ""
        return (
            f"{self.name}: median {format_seconds(self.median)} "
            f"(IQR {format_seconds(self.q1)}–{format_seconds(self.q3)})\n"
            f"  {len(self.samples)} samples{calls}, {self.warmup} warm-up, "
            f"on {self.hardware}"
        )


def _quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def measure(
    fn: Callable[..., Any],
    *args: Any,
    name: str | None = None,
    warmup: int = 3,
    repeat: int = 15,
    number: int | None = None,
    min_sample_s: float = 2e-3,
    max_number: int = 100_000,
    hardware: str | None = None,
) -> TimingResult:
    """Time ``fn(*args)``; see the module docstring for the method."""
    if repeat < 1 or warmup < 0:
        raise ValueError("repeat must be >= 1 and warmup >= 0")
    timer = time.perf_counter
    for _ in range(warmup):
        fn(*args)
    if number is None:  # grow until one sample is long enough to time reliably
        number = 1
        while number < max_number:
            t0 = timer()
            for _ in range(number):
                fn(*args)
            if timer() - t0 >= min_sample_s:
                break
            number *= 2
    samples = []
    for _ in range(repeat):
        t0 = timer()
        for _ in range(number):
            fn(*args)
        samples.append((timer() - t0) / number)
    if hardware is None:
        from .device import hardware_string

        hardware = hardware_string()
    return TimingResult(
        name=name or getattr(fn, "__name__", "function"),
        samples=samples,
        number=number,
        warmup=warmup,
        hardware=hardware,
    )


def interleave(
    calls: dict[str, Callable[[], Any]],
    rounds: int = 40,
    warmup: int = 1,
    hardware: str | None = None,
) -> dict[str, TimingResult]:
    """Time zero-argument ``calls`` in turns: ``rounds`` rounds of one call each (the
    order reverses every round), after ``warmup`` untimed calls of each. Sample ``k``
    of every result comes from round ``k``."""
    if rounds < 1 or warmup < 0 or not calls:
        raise ValueError("rounds must be >= 1, warmup >= 0, and calls not empty")
    timer = time.perf_counter
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls)
    for k in range(rounds):
        for name in order if k % 2 == 0 else order[::-1]:
            t0 = timer()
            calls[name]()
            samples[name].append(timer() - t0)
    if hardware is None:
        from .device import hardware_string

        hardware = hardware_string()
    return {
        name: TimingResult(name=name, samples=samples[name], number=1,
                           warmup=warmup, hardware=hardware)
        for name in calls
    }


def table(results: Sequence[TimingResult], baseline: TimingResult | None = None) -> str:
    """A plain-text table of medians and IQRs, with speed-ups against ``baseline``."""
    baseline = baseline or results[0]
    width = max(len(r.name) for r in results)
    lines = [f"{'':{width}}  {'median':>10}  {'IQR':>21}  {'vs ' + baseline.name:>12}"]
    for r in results:
        iqr = f"{format_seconds(r.q1)}–{format_seconds(r.q3)}"
        lines.append(
            f"{r.name:{width}}  {format_seconds(r.median):>10}  {iqr:>21}  "
            f"{baseline.median / r.median:>11.2f}×"
        )
    lines.append(f"hardware: {results[0].hardware}")
    return "\n".join(lines)
