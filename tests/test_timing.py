"""Timing: warm-up happens, the median and quartiles are right, tables read well."""

import pytest

from model2metal import timing


def test_warmup_and_repeats_are_counted():
    calls = []
    r = timing.measure(
        lambda: calls.append(1), warmup=4, repeat=5, number=3, hardware="test"
    )
    assert len(calls) == 4 + 5 * 3
    assert len(r.samples) == 5 and r.number == 3 and r.hardware == "test"


def test_interleave_takes_turns_and_reverses_the_order():
    log = []
    calls = {name: (lambda name=name: log.append(name)) for name in "abc"}
    runs = timing.interleave(calls, rounds=3, warmup=2, hardware="test")
    assert log == list("aabbcc") + list("abc") + list("cba") + list("abc")
    assert list(runs) == list("abc")
    for name, r in runs.items():
        assert (r.name, len(r.samples), r.number, r.warmup) == (name, 3, 1, 2)
        assert r.hardware == "test"


def test_interleave_aligns_samples_by_round(monkeypatch):
    # A clock that only the calls move: a busy moment (every other round) costs both
    # calls of its round 5 time units, a quiet one 1. No sleeping, no machine noise.
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    calls_made = iter(range(100))

    def busy_every_other_round():
        clock[0] += 5.0 if next(calls_made) // 2 % 2 else 1.0

    runs = timing.interleave({"a": busy_every_other_round,
                              "b": busy_every_other_round},
                             rounds=4, warmup=0, hardware="test")
    assert runs["a"].samples == runs["b"].samples == [1.0, 5.0, 1.0, 5.0]


@pytest.mark.parametrize("kwargs", [{"rounds": 0}, {"warmup": -1}])
def test_interleave_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        timing.interleave({"a": lambda: None}, **kwargs)
    with pytest.raises(ValueError):
        timing.interleave({})


def test_number_grows_until_a_sample_is_long_enough(monkeypatch):
    # A clock that only the calls move (3 us a call), so no machine noise: the first
    # power of two whose sample lasts >= 1 ms is 512 (1.536 ms; 256 calls are 0.768 ms).
    # On the real clock one interruption of the calibration (a 1 ms hiccup on a busy
    # 2-core machine) once picked a number whose samples were 14x shorter.
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])

    def call():
        clock[0] += 3e-6

    r = timing.measure(call, warmup=0, repeat=3, min_sample_s=1e-3, hardware="test")
    assert r.number == 512
    assert r.median == pytest.approx(3e-6)
    assert r.median * r.number >= 1e-3


def test_number_grows_on_the_real_clock():
    r = timing.measure(lambda: None, repeat=3, min_sample_s=1e-3, hardware="test")
    assert r.number > 1 and r.samples and min(r.samples) > 0


def test_statistics_are_median_and_quartiles():
    r = timing.TimingResult(
        "f", [5.0, 1.0, 3.0, 2.0, 4.0], number=1, warmup=0, hardware="cpu"
    )
    assert (r.median, r.q1, r.q3, r.best) == (3.0, 2.0, 4.0, 1.0)
    assert r.per_second(6.0) == 2.0
    assert (
        str(r) == "f: median 3 s (IQR 2 s–4 s)\n  5 samples × 1 calls, 0 warm-up, "
        "on cpu"
    )


@pytest.mark.parametrize(
    "seconds, text",
    [
        (2.5, "2.5 s"),
        (1.5e-3, "1.5 ms"),
        (2.25e-6, "2.25 µs"),
        (3e-9, "3 ns"),
        (0.0, "0 ns"),
    ],
)
def test_format_seconds(seconds, text):
    assert timing.format_seconds(seconds) == text


def test_table_has_speedups_against_the_baseline():
    slow = timing.TimingResult("slow", [4.0], 1, 0, "cpu")
    fast = timing.TimingResult("fast", [1.0], 1, 0, "cpu")
    text = timing.table([slow, fast])
    assert "4.00×" in text.splitlines()[2] and "1.00×" in text.splitlines()[1]
    assert text.endswith("hardware: cpu")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        timing.measure(lambda: None, repeat=0)
