"""The building blocks of every check: messages name the case, expected and actual."""

import numpy as np
import pytest

from model2metal.checks import (
    CheckFailed,
    assert_array_close,
    assert_equal,
    assert_unchanged,
    call_learner,
    describe,
    passed,
)


def fails(fn, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_shape_mismatch_names_case_and_both_shapes():
    msg = fails(
        assert_array_close, np.zeros((2, 3)), np.zeros((3, 2)), "check_x", "case A"
    )
    assert "check_x failed on case 'case A'" in msg
    assert "expected shape (3, 2)" in msg and "got shape (2, 3)" in msg


def test_value_mismatch_reports_max_errors_and_first_index():
    actual = np.array([[1.0, 2.0], [3.0, 5.0]])
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    msg = fails(assert_array_close, actual, expected, "check_x", "c")
    assert "1 of 4 values differ" in msg
    assert "max abs error 1" in msg
    assert "first mismatch at index (1, 1): got 5, expected 4" in msg


def test_relative_error_ignores_zero_expected_values():
    msg = fails(assert_array_close, np.array([0.5, 2.2]), np.array([0.0, 2.0]), "c", "k")
    assert "max abs error 0.5, max rel error 0.1," in msg
    msg = fails(assert_array_close, np.array([0.5]), np.array([0.0]), "c", "k")
    assert "max rel error n/a" in msg


def test_nan_where_finite_expected_is_named():
    msg = fails(
        assert_array_close, np.array([1.0, np.nan]), np.array([1.0, 2.0]), "c", "k"
    )
    assert "NaN/inf" in msg and "index (1,)" in msg and "overflow" in msg


def test_none_suggests_missing_return():
    assert "return" in fails(assert_array_close, None, np.zeros(2), "c", "k")


def test_dtype_checked_only_when_asked():
    assert_array_close(np.zeros(2, np.float32), np.zeros(2), "c", "k")
    msg = fails(
        assert_array_close, np.zeros(2, np.float32), np.zeros(2), "c", "k", dtype="same"
    )
    assert "expected dtype float64, got dtype float32" in msg


def test_scalar_mismatch_is_plain():
    msg = fails(assert_array_close, 8.0, 12.0, "c", "k", what="GB/s")
    assert "GB/s: expected 12, got 8" in msg


def test_object_and_non_numeric_results_are_rejected():
    assert "numeric" in fails(assert_array_close, [object()], np.zeros(1), "c", "k")
    assert "numbers" in fails(
        assert_array_close, np.array(["a"]), np.zeros(1), "c", "k"
    )


def test_tolerance_accepts_rounding_differences():
    assert_array_close(np.float32(1.0) + np.float32(1e-7), 1.0, "c", "k", rtol=1e-6)
    assert_array_close(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]), "c", "k")


def test_torch_tensors_are_compared_as_arrays():
    import torch

    assert_array_close(torch.ones(3), np.ones(3), "c", "k")


def test_learner_exception_is_named_with_input_and_line():
    def learner(x):
        return x[10]

    msg = fails(call_learner, "check_x", "short array", learner, np.zeros(3))
    assert "your learner() raised IndexError" in msg
    assert "input: ndarray shape (3,) dtype float64" in msg
    assert "line" in msg and "return x[10]" in msg
    assert "Traceback" not in msg


def test_error_inside_compiled_numpy_points_at_the_learners_line():
    def learner(n):
        rng = np.random.default_rng(0)
        return rng.integers(0, n, size=3)  # n = 0: ValueError raised in Cython code

    msg = fails(call_learner, "check_x", "empty range", learner, 0)
    assert "in learner(), line" in msg and "rng.integers(0, n, size=3)" in msg
    assert ".pyx" not in msg and "_bounded_integers" not in msg


def test_not_implemented_passes_through():
    def stub(x):
        raise NotImplementedError("lab00_01: implement stub()")

    with pytest.raises(NotImplementedError, match="lab00_01"):
        call_learner("check_x", "k", stub, 1)


def test_non_callable_is_explained():
    assert "without calling it" in fails(call_learner, "c", "k", 3)


def test_ipython_rendering_shows_only_the_message():
    err = CheckFailed("check_x", "k", "bad", "do better")
    rendered = "\n".join(err._render_traceback_())
    assert "check_x failed on case 'k'" in rendered and "Hint: do better" in rendered
    assert "File " not in rendered


def test_assert_equal_and_describe():
    assert "expected [4, 16], got [16, 4]" in fails(
        assert_equal, [16, 4], [4, 16], "c", "k", what="widths"
    )
    assert describe({"b", "a"}) == "{'a', 'b'}"
    assert describe(None) == "None"
    assert describe(np.zeros((0, 2))).endswith("(empty)")
    assert "at 0x" not in describe(lambda: 0)


def test_assert_unchanged_names_the_input_written_in_place():
    before = np.arange(4.0)
    assert_unchanged(before, before.copy(), "check_x", "k", "its input x")
    after = before.copy()
    after[2] = -1
    msg = fails(assert_unchanged, before, after, "check_x", "k", "its input x", "copy")
    assert "your function changed its input x in place" in msg and "copy" in msg


def test_passed_prints_one_line(capsys):
    passed("check_x", 3)
    assert capsys.readouterr().out == "✔ check_x passed (3 cases)\n"
