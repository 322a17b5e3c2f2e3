"""Checks for lab 02_02 "Train and debug the course model".

Conventions the lab states and these checks hold it to:

* images are NumPy arrays of shape (n, H, W); ``shift_images(images, dy, dx)`` moves
  image ``i`` by ``dy[i]`` rows (positive: down) and ``dx[i]`` columns (positive:
  right), fills the pixels that come in with 0 and drops the pixels that leave (no
  wrap-around), and returns a new NumPy array (sharing no memory with its input) of
  the same shape and dtype, leaving its input unchanged; ``|dy| < H`` and ``|dx| < W``;
* ``random_shift(images, max_shift, rng)`` draws one offset per image, ``dy`` and
  ``dx`` independently and uniformly from the integers ``-max_shift … max_shift``
  (both ends included), from the ``numpy.random.Generator`` it is given, and returns
  a NumPy array like ``shift_images``; uniformity is tested with chi-square bounds
  that a correct sampler exceeds with probability below 1e-7 each;
* the loss of an example is its cross-entropy ``-log softmax(logits)[label]``,
  computed without overflow or underflow for logits in the thousands, returned as a
  float NumPy array of shape (n,);
* ``top_confusions`` returns a list of tuples ``(true, predicted, count)`` of Python
  ints, for mistakes only, most frequent first, equal counts in any order;
  ``worst_mistakes`` returns a 1-D NumPy array of integer indices into the arrays it
  was given, of misclassified examples only, highest loss first, equal losses in any
  order;
* the final model is an ``nn.Module`` with every submodule in eval mode.

Every reference here is written with explicit loops or float64 arithmetic,
independently of the vectorised way the lab suggests; expected values are computed
before the learner's code runs, and learner code (functions and the model) runs only
inside :func:`call_learner`. The checks save and restore NumPy's global random state,
so a learner's notebook draws the same numbers after a check as before.
"""

from __future__ import annotations

import math

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_not_none,
    assert_true,
    assert_type,
    call_learner,
    describe,
    passed,
)

__all__ = [
    "check_shift_images",
    "check_per_example_loss",
    "check_top_confusions",
    "check_worst_mistakes",
    "check_random_shift",
    "check_final_model",
]


# ---------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------


def _shift_one(image: np.ndarray, dy: int, dx: int, fill=None) -> np.ndarray:
    """One image shifted by (dy, dx), by a loop over the output pixels; zero fill, or
    the pixels of ``fill`` where nothing comes in (a candidate mistake)."""
    h, w = image.shape
    out = np.zeros_like(image) if fill is None else fill.copy()
    for r in range(h):
        for c in range(w):
            sr, sc = r - dy, c - dx
            if 0 <= sr < h and 0 <= sc < w:
                out[r, c] = image[sr, sc]
    return out


def _shift_ref(images, dy, dx, keep_old=False) -> np.ndarray:
    return np.stack(
        [
            _shift_one(img, int(a), int(b), img if keep_old else None)
            for img, a, b in zip(images, dy, dx)
        ]
    ).astype(images.dtype)


def _shift_all(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Every image shifted by the same (dy, dx), zero fill, by slicing."""
    n, h, w = images.shape
    out = np.zeros_like(images)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _roll_ref(images, dy, dx) -> np.ndarray:
    return np.stack(
        [
            np.roll(img, (int(a), int(b)), axis=(0, 1))
            for img, a, b in zip(images, dy, dx)
        ]
    )


def _loss_ref(logits, labels) -> np.ndarray:
    """Cross-entropy per example in float64, by log-sum-exp, one row at a time."""
    logits = np.asarray(logits, dtype=np.float64)
    out = np.empty(len(logits))
    for i, (row, label) in enumerate(zip(logits, labels)):
        m = row.max()
        out[i] = m + math.log(sum(math.exp(v - m) for v in row)) - row[int(label)]
    return out


def _confidence(logits) -> np.ndarray:
    """Probability of the predicted class, float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p.max(axis=1)


def _pair_counts(y_true, y_pred) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for t, p in zip(y_true, y_pred):
        key = (int(t), int(p))
        counts[key] = counts.get(key, 0) + 1
    return counts


class _KeepGlobalRandomState:
    """Save NumPy's legacy global random state and restore it afterwards."""

    def __enter__(self):
        self.state = np.random.get_state()

    def __exit__(self, *exc):
        np.random.set_state(self.state)
        return False






def _shares_memory(got, arg, name, case, what, hint):
    if isinstance(got, np.ndarray) and np.shares_memory(got, arg):
        raise CheckFailed(
            name,
            case,
            f"{what}: the array you returned shares memory with the input `images` "
            "(it is the input, or a view of it): changing one would change the other",
            hint,
        )


# ---------------------------------------------------------------------------
# shift_images
# ---------------------------------------------------------------------------

SHIFT_HINT = (
    "start from a zero-filled array with the input's shape and dtype; output row r "
    "of image i shows input row r - dy[i] (column c: input column c - dx[i]), so "
    "copy the block of rows and columns whose source lies inside the frame, one "
    "slice assignment per image"
)

ZERO_SLICE_HINT = (
    "this case has an offset of 0, and your slice assignment had an empty side: a "
    "slice like image[:-d] selects nothing when d = 0 (image[:-0] is image[:0]); "
    "write the end of the slice as H - d"
)

#: A broadcast error with an empty shape: the evidence for an image[:-0] slice.
EMPTY_SLICE = r"raised ValueError:.*broadcast.*shape \((?:\d+,\s*)*0(?:,\s*\d+)*\)"


def _shift_cases():
    rng = np.random.default_rng(22)
    dot = np.zeros((1, 5, 5), np.float32)
    dot[0, 2, 3], dot[0, 0, 0] = 1.0, 0.5
    full = rng.uniform(0.1, 1.0, size=(1, 6, 6)).astype(np.float32)
    wide = rng.uniform(0.1, 1.0, size=(1, 4, 6)).astype(np.float32)
    batch = rng.uniform(0.1, 1.0, size=(6, 7, 5))  # float64, not square
    digits = rng.uniform(0.0, 1.0, size=(3, 8, 8)).astype(np.float32)
    return [
        # name, images, dy, dx
        ("one pixel, dy = +1 (down)", dot, [1], [0]),
        ("4×6 image, dy = 0, dx = +2 (right)", wide, [0], [2]),
        ("dy = -1 (up), dx = 0", full, [-1], [0]),
        ("pixels leave the frame: dy = -2, dx = +3", full, [-2], [3]),
        ("6 images of 7×5, float64, a different offset each", batch,
         [0, 1, -2, 3, 0, -1], [2, 0, -1, 0, -4, 1]),
        ("largest offsets: dy = +7, dx = -7 on 8×8", digits[:1], [7], [-7]),
        ("zero offsets: an unchanged copy", digits, [0, 0, 0], [0, 0, 0]),
    ]


def _shift_diagnosis(got, images, dy, dx) -> str | None:
    """A hint for the typical mistakes, each computed and compared: wrap-around,
    direction, axes, one offset for all, old pixels where zeros come in."""
    candidates = [
        (_roll_ref(images, dy, dx),
         "pixels that leave one edge came back at the opposite edge: np.roll wraps "
         "around. A camera does not: fill the pixels that come in with 0"),
        (_shift_ref(images, -dy, -dx),
         "the image moved the wrong way: positive dy moves the content DOWN (to "
         "larger row indices), positive dx moves it RIGHT"),
        (_shift_ref(images, dx, dy) if images.shape[1] == images.shape[2] else None,
         "dy and dx are swapped: dy moves rows (axis 1), dx moves columns (axis 2)"),
        (_shift_ref(images, np.full_like(dy, dy[0]), np.full_like(dx, dx[0]))
         if len(dy) > 1 else None,
         "every image got the first image's offset: use dy[i] and dx[i] for image i"),
        (_shift_ref(images, dy, dx, keep_old=True),
         "the shifted content is right, but where pixels come in your result kept "
         "the input's old pixels: the pixels that come in are blank (0), so start "
         "from zeros rather than from a copy of the input"),
    ]
    for candidate, hint in candidates:
        if candidate is not None and candidate.shape == got.shape and np.array_equal(
            got, candidate
        ):
            return hint
    return None


def check_shift_images(fn) -> None:
    """``fn(images, dy, dx)`` -> images shifted by (dy[i], dx[i]), zero fill."""
    name = "check_shift_images"
    cases = _shift_cases()
    with _KeepGlobalRandomState():
        for case, images, dy, dx in cases:
            dy, dx = np.array(dy, dtype=np.int64), np.array(dx, dtype=np.int64)
            expected = _shift_ref(images, dy, dx)
            has_zero = bool(np.any(dy == 0) or np.any(dx == 0))
            argument = images.copy()
            got = call_learner(
                name,
                case,
                fn,
                argument,
                dy.copy(),
                dx.copy(),
                hint=SHIFT_HINT,
                evidence=[(EMPTY_SLICE, ZERO_SLICE_HINT)] if has_zero else (),
                inplace_hint="write the shifted images into a new, zero-filled "
                "array of the same shape and dtype",
            )
            full_case = f"{case}; dy = {dy.tolist()}, dx = {dx.tolist()}"
            assert_not_none(got, name, full_case, "shifted images")
            hint = None
            if (
                isinstance(got, np.ndarray)
                and got.shape == expected.shape
                and got.dtype != object
            ):
                hint = _shift_diagnosis(got, images, dy, dx)
            assert_array_close(
                got,
                expected,
                name,
                full_case,
                rtol=0,
                atol=0,
                dtype="same",
                expect_type=np.ndarray,
                what="shifted images",
                hint=hint or SHIFT_HINT,
            )
            _shares_memory(
                got, argument, name, full_case, "shifted images",
                "return a new array (start from zeros), not the input or a view "
                "of it",
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# per_example_loss
# ---------------------------------------------------------------------------

LOSS_HINT = (
    "use the stable form of the exercise text: each row's log-sum-exp, with that "
    "row's maximum taken out before exp and added back after the log, minus the "
    "logit of the row's label"
)


def _loss_cases():
    rng = np.random.default_rng(23)
    return [
        # name, logits, labels, tolerance
        ("4 examples, 3 classes", rng.normal(size=(4, 3)) * 2,
         np.array([0, 2, 1, 2]), 1e-9),
        ("50 examples, 10 classes, float32", rng.normal(size=(50, 10)).astype(
            np.float32) * 3, rng.integers(0, 10, 50), 1e-4),
        ("large logits (exp would overflow)",
         np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0],
                   [500.0, 500.0, 500.0]]), np.array([0, 2, 1]), 1e-9),
        ("confident and wrong: loss 800 (a softmax underflows to 0)",
         np.array([[0.0, 800.0], [3.0, 1.0]]), np.array([0, 0]), 1e-9),
        ("one example", np.array([[0.5, -0.5, 2.0, 0.0]]), np.array([3]), 1e-9),
    ]


def _loss_candidates(logits, labels) -> list[tuple[np.ndarray, str]]:
    """The typical unstable or wrong formulas, computed in float64, with their hint."""
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(z))
    labels = np.asarray(labels)
    with np.errstate(all="ignore"):
        naive = -np.log((np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))[
            rows, labels])
        shifted = np.exp(z - z.max(axis=1, keepdims=True))
        log_softmax = -np.log((shifted / shifted.sum(axis=1, keepdims=True))[
            rows, labels])
        m = z.max()
        global_max = m + np.log(np.exp(z - m).sum(axis=1)) - z[rows, labels]
        true = _loss_ref(z, labels)
        predicted = _loss_ref(z, z.argmax(axis=1))
    return [
        (-true, "the sign: the loss is MINUS the log-probability of the label"),
        (predicted,
         "you used the probability of the PREDICTED class; the loss uses the "
         "probability of the TRUE label: pick each row's logit at its label, not "
         "at its largest value"),
        (log_softmax,
         "the probability of the label underflowed to 0 and its log is -inf: never "
         "take log(softmax); stay with log-probabilities (logsumexp minus the "
         "label's logit), which never form the probability"),
        (naive,
         "exp of a logit in the hundreds or thousands overflows to inf (and inf / "
         "inf is NaN): take each row's maximum out before exp, as in the "
         "logsumexp form of the exercise text"),
        (global_max,
         "one maximum for the whole batch: a row whose logits all lie far below "
         "it gets exp(...) = 0 for every class, and log(0) = -inf. Take the "
         "maximum of each row"),
    ]


def _loss_diagnosis(got, logits, labels, expected) -> str | None:
    """The hint of the candidate mistake that ``got`` matches, where that candidate
    differs from the right losses on this case."""
    if got.shape != (len(labels),):
        return None

    def close(a, b):
        return np.allclose(a, b, rtol=1e-4, atol=1e-6, equal_nan=True)

    for candidate, hint in _loss_candidates(logits, labels):
        if not close(candidate, expected) and close(got, candidate):
            return hint
    if not np.all(np.isfinite(got)):
        return (
            "NaN or inf where every loss is finite: an exp that overflowed or a log "
            "of 0. " + LOSS_HINT
        )
    return None


def check_per_example_loss(fn) -> None:
    """``fn(logits, labels)`` -> (n,) float NumPy array, cross-entropy per example."""
    name = "check_per_example_loss"
    cases = _loss_cases()
    with _KeepGlobalRandomState():
        for case, logits, labels, tol in cases:
            expected = _loss_ref(logits, labels)
            with np.errstate(all="ignore"):  # the learner's overflow is reported below
                got = call_learner(
                    name, case, fn, logits.copy(), labels.copy(), hint=LOSS_HINT,
                    inplace_hint="taking the row maximum out with `-=` writes into "
                    "the caller's logits: subtract into a new array",
                )
            if (
                isinstance(got, (float, np.floating))
                or (isinstance(got, np.ndarray) and got.ndim == 0)
            ) and np.isclose(float(got), expected.mean(), rtol=1e-4):
                raise CheckFailed(
                    name,
                    case,
                    f"losses: expected a NumPy array of shape {expected.shape}, got "
                    f"{describe(got)}: the mean of the expected losses",
                    "you returned the mean over the examples: return one loss per "
                    "example (reduction='none' in PyTorch)",
                )
            assert_not_none(got, name, case, "losses")
            hint = None
            if isinstance(got, np.ndarray) and got.dtype.kind in "fiu":
                hint = _loss_diagnosis(
                    got.astype(np.float64), logits, labels, expected
                )
            assert_array_close(
                got,
                expected,
                name,
                case,
                rtol=tol,
                atol=tol,
                dtype="float",
                expect_type=np.ndarray,
                what="losses",
                hint=hint or LOSS_HINT,
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# top_confusions
# ---------------------------------------------------------------------------

CONFUSION_HINT = (
    "count every (true, predicted) pair with true != predicted over all examples "
    "(collections.Counter, or np.add.at on a confusion matrix), then order the "
    "pairs by count, largest first, and keep k"
)

TRIPLES_HINT = (
    "return a list of tuples (true, predicted, count) of Python ints, e.g. "
    "[(7, 1, 5), (4, 9, 2)]"
)


def _confusion_cases():
    rng = np.random.default_rng(24)

    def pairs(spec):
        t, p = [], []
        for (a, b), n in spec.items():
            t += [a] * n
            p += [b] * n
        order = rng.permutation(len(t))
        return np.array(t)[order], np.array(p)[order]

    return [
        # name, (y_true, y_pred), k
        ("asymmetric: 1→7 three times, 7→1 once",
         pairs({(1, 7): 3, (7, 1): 1, (3, 8): 2, (1, 1): 5, (7, 7): 4}), 2),
        ("many correct predictions",
         pairs({(0, 0): 50, (2, 2): 30, (4, 9): 2, (9, 4): 1, (5, 6): 1}), 3),
        ("fewer mistake pairs than k", pairs({(2, 2): 6, (2, 5): 2, (6, 0): 1}), 5),
        ("equal counts", pairs({(2, 3): 2, (4, 5): 2, (6, 7): 1, (8, 9): 1}), 3),
        ("no mistakes", pairs({(0, 0): 3, (1, 1): 2}), 4),
        ("300 random labels", (rng.integers(0, 10, 300), rng.integers(0, 10, 300)),
         6),
    ]


def _as_triples(name, case, got) -> list[tuple[int, int, int]]:
    """The learner's result, which must be a list of 3-tuples of Python ints."""
    if got is None:
        raise CheckFailed(
            name, case, "got None", "did you forget a `return` statement?"
        )
    assert_type(got, list, name, case, "result", TRIPLES_HINT)
    for k, item in enumerate(got):
        if not isinstance(item, tuple) or len(item) != 3:
            raise CheckFailed(
                name,
                case,
                f"entry {k} of your list: expected a tuple (true, predicted, count), "
                f"got {describe(item)}",
                TRIPLES_HINT,
            )
        wrong = [v for v in item if isinstance(v, bool) or not isinstance(v, int)]
        if wrong:
            raise CheckFailed(
                name,
                case,
                f"entry {k} of your list, {describe(item)}: expected Python ints, "
                f"got {describe(wrong[0])}",
                "int(v) turns a NumPy integer into a Python int (a NumPy integer "
                "prints as np.int64(7) in a list)",
            )
    return list(got)


def _count_diagnosis(triples, mistakes, shown):
    """Problem and hint for counts that differ from the data, or None."""
    bad = [(t, p, n) for t, p, n in triples if mistakes.get((t, p), 0) != n]
    if not bad:
        return None
    t, p, n = bad[0]
    actual = mistakes.get((t, p), 0)
    problem = f"{shown}\n({t}, {p}, {n}): that pair occurs {actual} time(s)"
    swapped = {(b, a): c for (a, b), c in mistakes.items()}
    if all(swapped.get((a, b), 0) == c for a, b, c in triples):
        return (
            f"{shown}\n({t}, {p}, {n}): the pair true {t} → predicted {p} occurs "
            f"{actual} time(s); {n} is the count of true {p} → predicted {t}, and "
            "every count you returned is that of the reversed pair",
            "the order is (true, predicted): count the pairs of zip(y_true, y_pred), "
            "and put the true class first in each tuple",
        )
    if all(c == 1 for _, _, c in triples) and any(
        mistakes.get((a, b), 0) > 1 for a, b, _ in triples
    ):
        return (
            problem + "; every count you returned is 1",
            "count every occurrence of a pair, not each distinct pair once",
        )
    return problem, CONFUSION_HINT


def check_top_confusions(fn) -> None:
    """``fn(y_true, y_pred, k)`` -> up to k (true, predicted, count), largest first."""
    name = "check_top_confusions"
    cases = _confusion_cases()
    with _KeepGlobalRandomState():
        for case, (y_true, y_pred), k in cases:
            counts = _pair_counts(y_true, y_pred)
            mistakes = {pair: n for pair, n in counts.items() if pair[0] != pair[1]}
            got = call_learner(
                name, case, fn, y_true.copy(), y_pred.copy(), k, hint=CONFUSION_HINT
            )
            triples = _as_triples(name, case, got)
            shown = f"you returned {triples}"
            for t, p, n in triples:
                assert_true(
                    n > 0,
                    name,
                    case,
                    f"{shown}\n({t}, {p}, {n}): a pair that never occurs is not a "
                    "confusion",
                    "leave out the pairs with count 0: return at most k triples, "
                    "fewer when fewer different mistakes occur",
                )
                assert_true(
                    t != p,
                    name,
                    case,
                    f"{shown}\n({t}, {p}) is a correct prediction, not a confusion",
                    "count only the pairs with true != predicted",
                )
            diagnosis = _count_diagnosis(triples, mistakes, shown)
            if diagnosis:
                raise CheckFailed(name, case, *diagnosis)
            assert_true(
                len({(t, p) for t, p, _ in triples}) == len(triples),
                name,
                case,
                f"{shown}\na pair appears more than once",
                "one entry per (true, predicted) pair",
            )
            want = min(k, len(mistakes))
            assert_true(
                len(triples) == want,
                name,
                case,
                f"{shown}\nexpected {want} triple(s): k = {k} and there are "
                f"{len(mistakes)} different mistake pairs",
                "return min(k, number of different mistake pairs) triples",
            )
            got_counts = [n for _, _, n in triples]
            assert_true(
                got_counts == sorted(got_counts, reverse=True),
                name,
                case,
                f"{shown}\nthe counts are not in decreasing order",
                "most frequent first: sort by count in descending order",
            )
            chosen = {(t, p) for t, p, _ in triples}
            left_out = [pair for pair in mistakes if pair not in chosen]
            if triples and left_out:
                missing = max(left_out, key=lambda pair: mistakes[pair])
                if mistakes[missing] > min(got_counts):
                    raise CheckFailed(
                        name,
                        case,
                        f"{shown}\nmissing {missing + (mistakes[missing],)}, which "
                        f"occurs more often than your last entry",
                        CONFUSION_HINT,
                    )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# worst_mistakes
# ---------------------------------------------------------------------------

WORST_HINT = (
    "compute every example's loss with your per_example_loss, keep the examples "
    "whose predicted class differs from the label, order those by loss, highest "
    "first, and return at most k of their indices into the full arrays"
)


def _worst_cases():
    rng = np.random.default_rng(25)
    log = np.log
    # A: wrong and confident (p_pred 0.7) but p_true 0.3: loss 1.20.
    # B: wrong, less confident (p_pred 0.5) but p_true 0.05: loss 3.00.
    confident_vs_loss = log(np.array([
        [0.30, 0.70, 1e-9], [0.05, 0.50, 0.45], [0.90, 0.05, 0.05],
    ]))
    mixed = rng.normal(size=(12, 4)) * 2
    labels_mixed = mixed.argmax(axis=1)  # all correct, except the wrong rows
    wrong_rows = [2, 5, 6, 9, 11]
    labels_mixed[wrong_rows] = (labels_mixed[wrong_rows] + [1, 2, 3, 1, 2]) % 4
    tie = np.array([[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0],
                    [5.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    big = rng.normal(size=(200, 10)) * 3
    labels_big = rng.integers(0, 10, 200)
    return [
        # name, logits, labels, k
        ("confident is not the same as high loss", confident_vs_loss,
         np.array([0, 0, 0]), 1),
        ("mistakes between correct predictions", mixed, labels_mixed, 3),
        ("fewer mistakes than k", mixed, labels_mixed, 10),
        ("equal losses", tie, np.array([0, 1, 0, 0, 0]), 2),
        ("no mistakes", tie, tie.argmax(axis=1), 3),
        ("200 examples, 10 classes", big, labels_big, 15),
    ]


def _as_indices(name, case, got) -> np.ndarray:
    if got is None:
        raise CheckFailed(
            name, case, "indices: got None", "did you forget a `return` statement?"
        )
    assert_type(
        got, np.ndarray, name, case, "indices",
        "return a 1-D NumPy array of integer indices (np.flatnonzero and np.argsort "
        "give them; a list or a tensor is not one)",
    )
    assert_true(
        got.ndim == 1 and got.dtype.kind in "iu" and got.dtype.itemsize >= 4,
        name,
        case,
        f"indices: expected a 1-D array with an integer dtype (int32 or int64), got "
        f"{describe(got)}",
        "indices come from np.flatnonzero or np.argsort: keep their integer dtype "
        "(an empty result too)",
    )
    return got.astype(np.int64)


def check_worst_mistakes(fn) -> None:
    """``fn(logits, labels, k)`` -> indices of up to k mistakes, highest loss first."""
    name = "check_worst_mistakes"
    cases = _worst_cases()
    with _KeepGlobalRandomState():
        for case, logits, labels, k in cases:
            n = len(labels)
            loss = _loss_ref(logits, labels)
            wrong = np.flatnonzero(logits.argmax(axis=1) != labels)
            subset_order = np.argsort(-loss[wrong], kind="stable")[:k]
            by_confidence = wrong[
                np.argsort(-_confidence(logits)[wrong], kind="stable")
            ][:k]
            got = call_learner(
                name, case, fn, logits.copy(), labels.copy(), k, hint=WORST_HINT
            )
            idx = _as_indices(name, case, got)
            shown = f"you returned {idx.tolist()}"
            assert_true(
                bool(np.all((idx >= 0) & (idx < n))),
                name,
                case,
                f"{shown}\nindices must be in 0..{n - 1}",
                WORST_HINT,
            )
            assert_true(
                len(set(idx.tolist())) == len(idx),
                name,
                case,
                f"{shown}\nan index appears twice",
                WORST_HINT,
            )
            not_wrong = [int(i) for i in idx if i not in set(wrong.tolist())]
            if not_wrong:
                if len(wrong) and np.array_equal(np.sort(idx), np.sort(subset_order)):
                    hint = (
                        "these are positions in the list of mistakes, not indices "
                        "into logits: map each position back to the index of that "
                        "mistake in the full array"
                    )
                else:
                    hint = "keep only the mistakes: predicted class != label"
                raise CheckFailed(
                    name,
                    case,
                    f"{shown}\nexample {not_wrong[0]} is classified correctly "
                    f"(the mistakes are {wrong[:10].tolist()}"
                    f"{' …' if len(wrong) > 10 else ''})",
                    hint,
                )
            want = min(k, len(wrong))
            assert_true(
                len(idx) == want,
                name,
                case,
                f"{shown}\nexpected {want} indices: k = {k} and there are "
                f"{len(wrong)} mistakes",
                "return min(k, number of mistakes) indices",
            )
            if not want:
                continue
            got_loss = loss[idx]
            tol = 1e-9 * max(1.0, float(np.abs(loss).max()))
            confidence_hint = (
                "you ranked by the confidence of the prediction; rank by the loss "
                "-log p(true label): a mistake with a flat distribution can put "
                "a much lower probability on the true label"
            )
            if np.any(np.diff(got_loss) > tol):
                increasing = bool(np.all(np.diff(got_loss) >= -tol))
                raise CheckFailed(
                    name,
                    case,
                    f"{shown}\ntheir losses {np.round(got_loss, 3).tolist()} are not "
                    "in decreasing order"
                    + (" (they increase)" if increasing else ""),
                    confidence_hint
                    if np.array_equal(idx, by_confidence)
                    else "highest loss first: order by decreasing loss"
                    if increasing
                    else WORST_HINT,
                )
            rest = np.setdiff1d(wrong, idx)
            if len(rest) and loss[rest].max() > got_loss.min() + tol:
                hint = (
                    confidence_hint
                    if np.array_equal(np.sort(idx), np.sort(by_confidence))
                    else WORST_HINT
                )
                raise CheckFailed(
                    name,
                    case,
                    f"{shown} (losses {np.round(got_loss, 3).tolist()})\n"
                    f"mistake {int(rest[np.argmax(loss[rest])])} has a higher loss, "
                    f"{loss[rest].max():.3f}, and is missing",
                    hint,
                )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# random_shift
# ---------------------------------------------------------------------------

RANDOM_HINT = (
    "draw one dy and one dx per image from the rng you are given, each uniform over "
    "the integers -max_shift … max_shift (both ends included), then shift with your "
    "shift_images"
)

#: rng.integers(0, 0) raises "high <= 0": the evidence for an excluded upper end.
EMPTY_RANGE = (
    r"raised ValueError: high <= ",
    "with max_shift = 0 the only offset is 0, but your range of integers is empty: "
    "rng.integers(low, high) never returns high, so the upper end must be "
    "included (see its endpoint argument)",
)

#: Chi-square quantiles with tail probability 1e-7 (scipy.stats.chi2.isf(1e-7, df)):
#: a correct sampler exceeds each with probability below 1e-7.
CHI2_BOUND = {4: 38.24, 24: 78.64}
N_DRAWS = 2000


def _identify_offsets(got, images, reach):
    """For each image, the offset (dy, dx) with |dy|, |dx| <= reach that produced it,
    or None; a 'roll' tag when only a wrap-around explains it."""
    found = [None] * len(images)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            match = np.all(got == _shift_all(images, dy, dx), axis=(1, 2))
            for i in np.flatnonzero(match):
                if found[i] is None:
                    found[i] = (dy, dx)
    rolled = [None] * len(images)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if (dy, dx) == (0, 0):
                continue
            match = np.all(
                got == np.roll(images, (dy, dx), axis=(1, 2)), axis=(1, 2)
            )
            for i in np.flatnonzero(match):
                rolled[i] = (dy, dx)
    return found, rolled


def _chi2(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def _check_uniform(name, case, offsets: np.ndarray, m: int) -> None:
    """The offsets (n, 2) must look like independent uniform draws from -m … m."""
    values = np.arange(-m, m + 1)
    n = len(offsets)
    dys, dxs = offsets[:, 0], offsets[:, 1]
    if np.all(dys == dys[0]) and np.all(dxs == dxs[0]):
        raise CheckFailed(
            name, case,
            f"all {n} images got the same offset {tuple(map(int, offsets[0]))}",
            "draw one (dy, dx) per image: one draw per image for each of dy and dx",
        )
    for axis, draws in (("dy", dys), ("dx", dxs)):
        counts = np.array([int(np.sum(draws == v)) for v in values])
        shown = f"{axis} = {values.tolist()} occurred {counts.tolist()} times"
        if np.all(draws == draws[0]):
            raise CheckFailed(
                name, case, f"every image got {axis} = {int(draws[0])}",
                f"draw a new {axis} for every image (size = the number of images)",
            )
        if counts[-1] == 0 and counts[0] > 0:
            raise CheckFailed(
                name, case,
                f"in {n} images {axis} never was +{m} = +max_shift: {shown}",
                "the upper end is missing: rng.integers(low, high) never returns "
                "high (see its endpoint argument)",
            )
        if np.any(counts == 0):
            raise CheckFailed(
                name, case, f"in {n} images some values never occurred: {shown}",
                RANDOM_HINT,
            )
        if _chi2(counts) > CHI2_BOUND[2 * m]:
            ends, middle = counts[[0, -1]].mean(), counts[1:-1].mean()
            hint = (
                "the two end values occur about half as often as the others: "
                "rounding a uniform float gives the ends half a bin; draw integers "
                "directly"
                if 0.3 < ends / middle < 0.7
                else RANDOM_HINT
            )
            raise CheckFailed(
                name, case,
                f"{shown} in {n} images; uniform draws give about {n // len(values)} "
                f"each, and counts this uneven with probability below 1e-7",
                hint,
            )
    pairs = np.array([
        int(np.sum((dys == a) & (dxs == b))) for a in values for b in values
    ])
    if _chi2(pairs) > CHI2_BOUND[len(pairs) - 1]:
        equal = bool(np.all(dys == dxs) or np.all(dys == -dxs))
        raise CheckFailed(
            name, case,
            f"dy and dx are each uniform, but not independent: the {len(pairs)} "
            f"pairs (dy, dx) occurred between {pairs.min()} and {pairs.max()} times "
            f"in {n} images (about {n // len(pairs)} each expected)"
            + ("; dx = ±dy in every image" if equal else ""),
            "draw dy and dx independently (two separate draws per image)",
        )


def check_random_shift(fn) -> None:
    """``fn(images, max_shift, rng)`` -> each image shifted by its own random offset."""
    name = "check_random_shift"
    data = np.random.default_rng(26).uniform(0.2, 1.0, size=(N_DRAWS, 6, 7))
    images = data.astype(np.float32)  # no zero pixels: every offset is visible
    m = 2
    array_hint = "return the shifted images as one NumPy array (your shift_images does)"
    with _KeepGlobalRandomState():
        case = "max_shift = 0"
        got = call_learner(
            name, case, fn, images[:20].copy(), 0, np.random.default_rng(0),
            hint=RANDOM_HINT, evidence=[EMPTY_RANGE],
        )
        assert_not_none(got, name, case, "images")
        assert_array_close(
            got, images[:20], name, case,
            rtol=0, atol=0, dtype="same", expect_type=np.ndarray, what="images",
            hint="with max_shift = 0 every offset is 0: the images come back "
            "unchanged. " + RANDOM_HINT,
        )

        case = f"{N_DRAWS} images of 6×7, max_shift = {m}"
        got = call_learner(
            name, case, fn, images.copy(), m, np.random.default_rng(0),
            hint=RANDOM_HINT,
            inplace_hint="return new arrays; shift_images already does",
        )
        assert_type(got, np.ndarray, name, case, "images", array_hint)
        assert_true(
            got.shape == images.shape and got.dtype == images.dtype,
            name,
            case,
            f"expected images of shape {images.shape} and dtype {images.dtype}, "
            f"got {describe(got)}",
            "return only the shifted images, with the input's shape and dtype",
        )
        found, rolled = _identify_offsets(got, images, 5)
        for i, (offset, roll) in enumerate(zip(found, rolled)):
            if offset is None:
                raise CheckFailed(
                    name,
                    case,
                    f"image {i} is not a zero-filled shift of its input",
                    "pixels that leave one edge came back at the other: np.roll "
                    "wraps around; use your shift_images" if roll is not None
                    else RANDOM_HINT,
                )
            if max(abs(offset[0]), abs(offset[1])) > m:
                raise CheckFailed(
                    name,
                    case,
                    f"image {i} was shifted by (dy, dx) = {offset}, more than "
                    f"max_shift = {m}",
                    RANDOM_HINT,
                )
        _check_uniform(name, case, np.array(found), m)

        case = "the same seed twice"
        np.random.seed(1)
        first = call_learner(
            name, case, fn, images[:50].copy(), m, np.random.default_rng(5),
            hint=RANDOM_HINT,
        )
        np.random.seed(2)
        second = call_learner(
            name, case, fn, images[:50].copy(), m, np.random.default_rng(5),
            hint=RANDOM_HINT,
        )
        for result in (first, second):
            assert_type(result, np.ndarray, name, case, "images", array_hint)
        assert_true(
            np.array_equal(first, second),
            name,
            case,
            "two calls with rng = np.random.default_rng(5) gave different images",
            "draw from the rng argument (rng.integers), not from np.random or "
            "another generator: the caller's seed must decide the shifts",
        )

        case = "two calls with one generator"
        rng = np.random.default_rng(6)
        first = call_learner(
            name, case, fn, images[:50].copy(), m, rng, hint=RANDOM_HINT
        )
        second = call_learner(
            name, case, fn, images[:50].copy(), m, rng, hint=RANDOM_HINT
        )
        for result in (first, second):
            assert_type(result, np.ndarray, name, case, "images", array_hint)
        assert_true(
            not np.array_equal(first, second),
            name,
            case,
            "two successive calls with the same generator gave the same shifts: "
            "every epoch would see the same augmented copies",
            "do not create or re-seed a generator inside the function; draw from "
            "the rng you are given",
        )
    passed(name, 4)


# ---------------------------------------------------------------------------
# the final model
# ---------------------------------------------------------------------------


def check_final_model(
    model,
    X_clean,
    X_camera,
    y,
    at_least: float = 0.94,
    at_least_camera: float = 0.90,
) -> None:
    """The augmented model is in eval mode and reads both test sets well."""
    import torch

    from ..models import preprocess

    name = "check_final_model"
    assert_true(
        isinstance(model, torch.nn.Module),
        name,
        "the model",
        f"expected a torch.nn.Module, got {describe(model)}",
        "pass the trained model itself (model_augmented()), not a function, its "
        "outputs or its state_dict",
    )
    in_training = [
        sub or type(model).__name__
        for sub, module in model.named_modules()
        if module.training
    ]
    if model.training:
        raise CheckFailed(
            name,
            "the model",
            "the model is in training mode: BatchNorm would normalise each test "
            "batch with its own statistics",
            "call model.eval() before evaluating (train_model returns it in eval "
            "mode)",
        )
    if in_training:
        raise CheckFailed(
            name,
            "the model",
            f"the model is in eval mode, but {len(in_training)} of its submodules are "
            f"in training mode: {', '.join(in_training[:4])}"
            f"{' …' if len(in_training) > 4 else ''}",
            "model.eval() switches the model and every submodule; setting "
            "model.training = False, or calling .train() on a part, does not",
        )
    y = np.asarray(y)
    for case, X, threshold, hint in (
        ("clean test set", X_clean, at_least,
         "was the model trained on the audited labels, for all the epochs?"),
        ("new-camera test set", X_camera, at_least_camera,
         "train with augment=shift_augment (random_shift on every training batch, "
         "fresh offsets every time), and evaluate on unshifted inputs"),
    ):
        inputs = preprocess(X)
        with torch.no_grad():
            out = call_learner(
                name, case, model, inputs, label="model",
                hint="the model takes a batch (n, 1, 8, 8) from preprocess and "
                "returns logits of shape (n, 10)",
            )
        assert_true(
            isinstance(out, torch.Tensor) and tuple(out.shape) == (len(y), 10),
            name,
            case,
            f"the model's output for {len(y)} images: expected a torch.Tensor of "
            f"logits of shape ({len(y)}, 10), got {describe(out)}",
            "forward() returns the logits of the last layer, one row per image",
        )
        accuracy = float(np.mean(out.detach().cpu().argmax(1).numpy() == y))
        assert_true(
            accuracy >= threshold,
            name,
            case,
            f"accuracy {accuracy:.3f} is below {threshold:.2f}",
            hint,
        )
    passed(
        name,
        extra=f": eval mode, accuracy ≥ {at_least:.2f} clean and "
        f"≥ {at_least_camera:.2f} on the new camera",
    )
