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


# ---------------------------------------------------------------------------
# the machinery is total: any object, any exception, one clear message
# ---------------------------------------------------------------------------


class _BadRepr:
    def __repr__(self):
        raise RuntimeError("repr exploded")


def _objects_a_learner_meets():
    """Every kind of object the course hands a learner or a learner may return."""
    import pathlib

    import torch

    from model2metal import tvmkit
    from model2metal.device import select_cuda_backend

    select_cuda_backend()
    from numba import cuda

    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout(0.5))
    mixed = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Dropout(0.5)).eval()
    mixed[1].train()
    data = torch.utils.data.TensorDataset(torch.zeros(5, 2), torch.zeros(5))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def gen():
        yield 1

    return {
        "DataLoader": torch.utils.data.DataLoader(data, batch_size=2),
        "nn.Module": net,
        "nn.Module with a child in train mode": mixed,
        "optimizer": opt,
        "scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1),
        "loss module": torch.nn.CrossEntropyLoss(),
        "torch.Generator": torch.Generator().manual_seed(0),
        "numpy Generator": np.random.default_rng(0),
        "tensor requiring grad": torch.ones(3, requires_grad=True),
        "tuple of tensors": (torch.ones(2), torch.zeros(2)),
        "dict of lists": {"train_loss": [1.0], "val_loss": [2.0]},
        "Python generator": gen(),
        "object whose repr raises": _BadRepr(),
        "CUDA device array": cuda.to_device(np.arange(3.0)),
        "TVM tensor": tvmkit.tensor(np.arange(3, dtype=np.float32)),
        "path": pathlib.Path("/tmp/x"),
        "class": dict,
        "numpy scalar": np.float32(0.5),
        "bool": True,
        "nested list": [[1, 2], [3, 4]],
    }


def test_describe_never_raises_and_names_every_object():
    for kind, obj in _objects_a_learner_meets().items():
        text = describe(obj)
        assert isinstance(text, str) and text, kind
        assert "Traceback" not in text and "at 0x" not in text, (kind, text)
    objs = _objects_a_learner_meets()
    assert describe(objs["DataLoader"]) == "DataLoader of 3 batches (batch_size 2)"
    assert "training mode" in describe(objs["nn.Module"])
    assert "but 1 of its submodules in the other mode" in describe(
        objs["nn.Module with a child in train mode"]
    )
    assert describe(objs["optimizer"]) == "optimizer Adam (lr 0.001)"
    assert describe(objs["tensor requiring grad"]).startswith(
        "torch.Tensor shape (3,) dtype float32"
    )
    assert describe(objs["object whose repr raises"]).endswith("_BadRepr object")
    assert describe(objs["numpy Generator"]) == "a numpy.random.Generator object"
    assert describe(objs["class"]) == "class dict"
    assert describe(objs["CUDA device array"]).startswith("CUDA device array shape (3,)")
    assert describe(objs["TVM tensor"]).startswith("TVM tensor shape (3,)")
    assert describe(objs["numpy scalar"]) == "numpy.float32 0.5"
    assert "dict with keys ['train_loss', 'val_loss']" == describe(objs["dict of lists"])


def test_learner_code_raising_on_any_object_gives_one_message():
    for kind, obj in _objects_a_learner_meets().items():
        def learner(x):
            return x.definitely_not_an_attribute

        msg = fails(call_learner, "check_x", kind, learner, obj)
        assert msg.startswith(f"check_x failed on case {kind!r}:"), msg
        assert "your learner() raised AttributeError" in msg
        assert "Traceback" not in msg


def test_learner_returning_odd_objects_is_described_by_the_comparisons():
    for kind, obj in _objects_a_learner_meets().items():
        msg = fails(
            assert_array_close, obj, np.zeros(3), "check_x", kind,
            expect_type=np.ndarray,
        )
        assert "expected a numpy.ndarray" in msg, (kind, msg)


# ---------------------------------------------------------------------------
# inputs changed in place
# ---------------------------------------------------------------------------


def test_input_changed_in_place_is_named_by_the_learners_argument():
    def normalise(values, scale):
        values /= scale
        return values

    x = np.arange(1.0, 5.0)
    msg = fails(call_learner, "check_x", "k", normalise, x, 2.0)
    assert "your normalise() changed its input `values` in place" in msg
    assert "4 of 4 values differ, the first at index (0,): was 1.0, now 0.5" in msg


def test_in_place_change_of_a_tensor_and_of_a_nested_list_is_found():
    import torch

    def zero_first(t):
        t[0] = 0

    msg = fails(call_learner, "c", "k", zero_first, torch.ones(3))
    assert "changed its input `t` in place" in msg

    def shift_boxes(preds):
        preds[1][0][:] += 5

    nested = [(np.zeros(2), np.ones(2)), (np.zeros(2), np.ones(2))]
    msg = fails(call_learner, "c", "k", shift_boxes, nested)
    assert "changed its input `preds[1][0]` in place (2 of 2 values differ" in msg


def test_exercises_that_update_an_argument_say_so():
    def sgd(params, lr):
        params -= lr

    call_learner("c", "k", sgd, np.ones(3), 0.1, inplace_ok=(0,))
    call_learner("c", "k", sgd, np.ones(3), 0.1, inplace_ok=("params",))
    call_learner("c", "k", sgd, np.ones(3), 0.1, inplace_ok=True)
    msg = fails(call_learner, "c", "k", sgd, np.ones(3), 0.1, inplace_hint="restore")
    assert "Hint: restore" in msg


def test_unchanged_inputs_with_nan_are_not_reported():
    call_learner("c", "k", lambda a: a.sum(), np.array([np.nan, 1.0]))


# ---------------------------------------------------------------------------
# the type and dtype a result must have
# ---------------------------------------------------------------------------


def test_a_list_or_a_tensor_where_an_array_is_asked_for_is_rejected():
    import torch

    msg = fails(assert_array_close, [0.0, 0.0], np.zeros(2), "c", "k",
                expect_type=np.ndarray)
    assert "expected a numpy.ndarray, got a list: [0.0, 0.0]" in msg
    assert "np.asarray" in msg
    msg = fails(assert_array_close, torch.zeros(2), np.zeros(2), "c", "k",
                expect_type=np.ndarray)
    assert "expected a numpy.ndarray, got torch.Tensor" in msg and ".numpy()" in msg
    assert_array_close(np.zeros(2), np.zeros(2), "c", "k", expect_type=np.ndarray)


def test_counts_must_have_an_integer_dtype_of_32_bits_or_more():
    counts = np.array([1, 2])
    assert_array_close(counts, counts, "c", "k", dtype="integer")
    assert_array_close(counts.astype(np.int32), counts, "c", "k", dtype="integer")
    for bad in (np.float64, np.int8, np.int16, np.bool_):
        msg = fails(assert_array_close, counts.astype(bad), counts, "c", "k",
                    dtype="integer")
        assert "expected an integer dtype (int32 or int64)" in msg, bad


def test_assert_type_rejects_bool_as_int_and_names_both_types():
    from model2metal.checks import assert_type

    assert_type(3, int, "c", "k")
    assert_type(np.int64(3), (int, np.integer), "c", "k")
    msg = fails(assert_type, True, int, "c", "k", what="count")
    assert "count: expected an int, got a bool: True" in msg
    msg = fails(assert_type, 3.0, int, "c", "k", what="count")
    assert "got float 3.0" in msg and "int(x)" in msg


def test_type_names_are_the_public_ones():
    import torch

    from model2metal.checks import type_name

    assert type_name(torch.nn.Linear(1, 1)) == "torch.nn.Linear"
    assert type_name(torch.nn.Module) == "torch.nn.Module"
    assert type_name(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1)) == (
        "torch.optim.SGD"
    )
    assert type_name(np.zeros(1)) == "numpy.ndarray" and type_name([]) == "list"


def test_assert_dtype_for_results_not_compared_by_value():
    from model2metal.checks import assert_dtype

    assert_dtype(np.zeros(2, np.int64), "integer", "c", "k")
    assert "expected an integer dtype" in fails(
        assert_dtype, np.zeros(2), "integer", "c", "k"
    )
    assert "expected an array, got a list" in fails(
        assert_dtype, [1, 2], "integer", "c", "k"
    )


def test_float32_rounding_is_named_and_printed_with_enough_digits():
    expected = np.array([1.0 / 3.0, 2.0 / 3.0])
    msg = fails(assert_array_close, expected.astype(np.float32), expected, "c", "k",
                rtol=1e-12, atol=0)
    assert "got 0.333333343, expected 0.333333333" in msg
    assert "float32 rounding" in msg and "precision problem" in msg
    # a real mistake in float32 is not called a precision problem
    msg = fails(assert_array_close, np.zeros(2, np.float32), expected, "c", "k")
    assert "precision" not in msg


def test_a_librarys_not_implemented_error_is_feedback_not_a_stub():
    def learner(x):
        raise NotImplementedError  # e.g. an abstract method a library calls

    msg = fails(call_learner, "check_x", "k", learner, 1)
    assert "your learner() raised NotImplementedError" in msg


def test_fold_fits_lines_to_the_page_without_splitting_words():
    from model2metal.pages import PAGE_WIDTH, fold

    text = "short\n  " + " ".join(["word"] * 40) + "\n" + "x" * 90
    lines = fold(text).splitlines()
    assert lines[0] == "short" and lines[-1] == "x" * 90  # one long word stays
    body = lines[1:-1]
    assert len(body) > 1 and all(len(line) <= PAGE_WIDTH for line in body)
    assert body[0].startswith("  word") and body[1].startswith("    word")
    assert " ".join(line.strip() for line in body) == " ".join(["word"] * 40)


def test_check_failed_renders_folded_but_str_stays_whole():
    long_problem = "out: " + "values differ " * 10
    failed = CheckFailed("check_x", "case", long_problem, "hint " * 30)
    assert long_problem in str(failed)  # tests and tools match the whole line
    rendered = failed._render_traceback_()[0]
    assert all(len(line) <= 76 + len("\x1b[31m\x1b[0m")
               for line in rendered.splitlines())
    assert failed.wrapped().replace("\n", " ").split() == str(failed).split()
