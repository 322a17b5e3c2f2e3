"""Checks for lab 02_02 "Train and debug the course model".

Conventions the lab states and these checks hold it to:

* images are NumPy arrays of shape (n, H, W); ``shift_images(images, dy, dx)`` moves
  image ``i`` by ``dy[i]`` rows (positive: down) and ``dx[i]`` columns (positive:
  right), fills the pixels that come in with 0 and drops the pixels that leave (no
  wrap-around), keeps shape and dtype, and leaves its input unchanged;
  ``|dy| < H`` and ``|dx| < W``;
* ``random_shift(images, max_shift, rng)`` draws one offset per image, ``dy`` and
  ``dx`` independently and uniformly from the integers ``-max_shift … max_shift``
  (both ends included), from the ``numpy.random.Generator`` it is given;
* the loss of an example is its cross-entropy ``-log softmax(logits)[label]``,
  computed without overflow or underflow for logits in the thousands;
* ``top_confusions`` lists ``(true, predicted, count)`` for mistakes only, most frequent
  first, equal counts in any order; ``worst_mistakes`` returns indices into the arrays
  it was given, of misclassified examples only, highest loss first, equal losses in
  any order.

Every reference here is written with explicit loops or float64 arithmetic,
independently of the vectorised way the lab suggests. The checks save and restore
NumPy's global random state, so a learner's notebook draws the same numbers after a
check as before.
"""

from __future__ import annotations

import math

import numpy as np

from .core import (
    CheckFailed,
    _to_numpy,
    assert_array_close,
    assert_true,
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


def _shift_one(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """One image shifted by (dy, dx), zero fill, by a loop over the output pixels."""
    h, w = image.shape
    out = np.zeros_like(image)
    for r in range(h):
        for c in range(w):
            sr, sc = r - dy, c - dx
            if 0 <= sr < h and 0 <= sc < w:
                out[r, c] = image[sr, sc]
    return out


def _shift_ref(images, dy, dx) -> np.ndarray:
    return np.stack(
        [_shift_one(img, int(a), int(b)) for img, a, b in zip(images, dy, dx)]
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


def _as_array(name, case, got, what):
    """The learner's result as a NumPy array, or a CheckFailed that says why not."""
    if got is None:
        raise CheckFailed(
            name, case, f"{what}: got None", "did you forget a `return` statement?"
        )
    try:
        return np.asarray(_to_numpy(got))
    except Exception:  # noqa: BLE001
        raise CheckFailed(
            name, case, f"{what}: expected an array, got {describe(got)}"
        ) from None


# ---------------------------------------------------------------------------
# shift_images
# ---------------------------------------------------------------------------

SHIFT_HINT = (
    "out = np.zeros_like(images); for image i copy the part that stays inside the "
    "frame: rows max(-dy, 0) to H - max(dy, 0) of the input go to rows max(dy, 0) to "
    "H - max(-dy, 0) of the output (the same for columns with dx)"
)


ZERO_SLICE_HINT = (
    "an offset here is 0, and a slice like image[:-d] is empty when d = 0 (write "
    "the end as H - d). "
)


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


def _shift_diagnosis(got, images, dy, dx, expected) -> str | None:
    """A hint for the typical mistakes: wrap-around, direction, axes, one offset."""
    if got.shape != expected.shape or np.allclose(got, expected):
        return None
    dy, dx = np.asarray(dy), np.asarray(dx)
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
    ]
    for candidate, hint in candidates:
        if candidate is not None and candidate.shape == got.shape and np.allclose(
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
            got = call_learner(
                name,
                case,
                fn,
                images.copy(),
                dy.copy(),
                dx.copy(),
                hint=ZERO_SLICE_HINT + SHIFT_HINT
                if np.any(dy == 0) or np.any(dx == 0)
                else SHIFT_HINT,
                inplace_hint="write the shifted images into a new, zero-filled "
                "array of the same shape and dtype",
            )
            expected = _shift_ref(images, dy, dx)
            got_np = _as_array(name, case, got, "shifted images")
            hint = None
            if got_np.shape == expected.shape and got_np.dtype != object:
                hint = _shift_diagnosis(got_np, images, dy, dx, expected)
            assert_array_close(
                got_np,
                expected,
                name,
                f"{case}; dy = {dy.tolist()}, dx = {dx.tolist()}",
                rtol=0,
                atol=0,
                dtype="same",
                what="shifted images",
                hint=hint or "the result has the input's shape and dtype; "
                + SHIFT_HINT,
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# per_example_loss
# ---------------------------------------------------------------------------

LOSS_HINT = (
    "loss_i = logsumexp(logits_i) - logits_i[label_i]; compute logsumexp as "
    "m + log(sum(exp(logits_i - m))) with m the row's maximum"
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


def _loss_diagnosis(got, logits, labels, expected) -> str | None:
    z = np.asarray(logits, dtype=np.float64)
    if got.shape == () and np.isclose(float(got), expected.mean(), rtol=1e-4):
        return (
            "you returned the mean over the examples: return one loss per example "
            "(reduction='none' in PyTorch)"
        )
    if got.shape != expected.shape:
        return None
    with np.errstate(all="ignore"):
        if np.allclose(got, -expected, rtol=1e-4, atol=1e-6):
            return "the sign: the loss is MINUS the log-probability of the label"
        if np.allclose(got, -np.log(_confidence(z)), rtol=1e-4, atol=1e-6):
            return (
                "you used the probability of the PREDICTED class; the loss uses "
                "the probability of the TRUE label: logits[np.arange(n), labels]"
            )
    if not np.all(np.isfinite(got)):
        return (
            "exp of a large logit overflows and the log of a softmax that underflowed "
            "is -inf: never take log(softmax). " + LOSS_HINT
        )
    return None


def check_per_example_loss(fn) -> None:
    """``fn(logits, labels)`` -> (n,) cross-entropy of each example."""
    name = "check_per_example_loss"
    cases = _loss_cases()
    with _KeepGlobalRandomState():
        for case, logits, labels, tol in cases:
            with np.errstate(all="ignore"):  # the learner's overflow is reported below
                got = call_learner(
                    name, case, fn, logits.copy(), labels.copy(), hint=LOSS_HINT,
                    inplace_hint="subtracting the row maximum with `-=` writes into "
                    "the caller's logits: subtract into a new array",
                )
            expected = _loss_ref(logits, labels)
            got_np = _as_array(name, case, got, "losses")
            hint = None
            if got_np.dtype != object and np.issubdtype(got_np.dtype, np.number):
                hint = _loss_diagnosis(
                    got_np.astype(np.float64), logits, labels, expected
                )
            assert_array_close(
                got_np,
                expected,
                name,
                case,
                rtol=tol,
                atol=tol,
                what="losses",
                hint=hint or LOSS_HINT,
            )
    passed(name, len(cases))


# ---------------------------------------------------------------------------
# top_confusions
# ---------------------------------------------------------------------------

CONFUSION_HINT = (
    "count each (true, predicted) pair with true != predicted (np.add.at on a "
    "confusion matrix, or collections.Counter), then sort by count, largest first"
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


def _as_triples(name, case, got):
    if got is None:
        raise CheckFailed(
            name, case, "got None", "did you forget a `return` statement?"
        )
    try:
        items = list(_to_numpy(got))
        triples = []
        for item in items:
            values = list(_to_numpy(item))
            if len(values) != 3 or any(
                float(v) != int(v) for v in values
            ):
                raise ValueError
            triples.append(tuple(int(v) for v in values))
    except Exception:  # noqa: BLE001
        raise CheckFailed(
            name,
            case,
            f"expected a list of (true, predicted, count) triples of ints, got "
            f"{describe(got)}",
            "return e.g. [(7, 1, 5), (4, 9, 2)]",
        ) from None
    return triples


def check_top_confusions(fn) -> None:
    """``fn(y_true, y_pred, k)`` -> up to k (true, predicted, count), largest first."""
    name = "check_top_confusions"
    cases = _confusion_cases()
    with _KeepGlobalRandomState():
        for case, (y_true, y_pred), k in cases:
            got = call_learner(
                name, case, fn, y_true.copy(), y_pred.copy(), k, hint=CONFUSION_HINT
            )
            triples = _as_triples(name, case, got)
            counts = _pair_counts(y_true, y_pred)
            mistakes = {pair: n for pair, n in counts.items() if pair[0] != pair[1]}
            shown = f"you returned {triples}"
            for t, p, n in triples:
                assert_true(
                    n > 0,
                    name,
                    case,
                    f"{shown}\n({t}, {p}, 0): a pair that never occurs is not a "
                    "confusion",
                    "return min(k, number of different mistake pairs) triples, "
                    "leaving out the pairs with count 0",
                )
                assert_true(
                    t != p,
                    name,
                    case,
                    f"{shown}\n({t}, {p}) is a correct prediction, not a confusion",
                    "count only the pairs with true != predicted",
                )
                actual = mistakes.get((t, p), 0)
                if actual != n and mistakes.get((p, t), 0) == n:
                    raise CheckFailed(
                        name,
                        case,
                        f"{shown}\n({t}, {p}, {n}): the pair true {t} → predicted "
                        f"{p} occurs {actual} time(s); {n} is the count of true "
                        f"{p} → predicted {t}",
                        "the order is (true, predicted): "
                        "count zip(y_true, y_pred), not zip(y_pred, y_true)",
                    )
                assert_true(
                    actual == n,
                    name,
                    case,
                    f"{shown}\n({t}, {p}, {n}): that pair occurs {actual} time(s)",
                    CONFUSION_HINT,
                )
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
                "return min(k, number of different mistake pairs) triples; pairs "
                "that never occur (count 0) are not confusions",
            )
            got_counts = [n for _, _, n in triples]
            assert_true(
                got_counts == sorted(got_counts, reverse=True),
                name,
                case,
                f"{shown}\nthe counts are not in decreasing order",
                "most frequent first: sort by count in descending order",
            )
            left_out = [n for pair, n in mistakes.items() if pair not in
                        {(t, p) for t, p, _ in triples}]
            if triples and left_out and max(left_out) > min(got_counts):
                missing = max(
                    (pair for pair in mistakes if pair not in
                     {(t, p) for t, p, _ in triples}),
                    key=lambda pair: mistakes[pair],
                )
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
    "losses = per_example_loss(logits, labels); wrong = np.flatnonzero(predicted != "
    "labels); then sort `wrong` by its losses, largest first, and keep k"
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
    arr = _as_array(name, case, got, "indices")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    assert_true(
        arr.ndim == 1 and (np.issubdtype(arr.dtype, np.integer)),
        name,
        case,
        f"expected a 1-D array (or list) of integer indices, got {describe(got)}",
        "np.argsort returns integer indices; keep them as ints",
    )
    return arr.astype(np.int64)


def check_worst_mistakes(fn) -> None:
    """``fn(logits, labels, k)`` -> indices of up to k mistakes, highest loss first."""
    name = "check_worst_mistakes"
    cases = _worst_cases()
    with _KeepGlobalRandomState():
        for case, logits, labels, k in cases:
            got = call_learner(
                name, case, fn, logits.copy(), labels.copy(), k, hint=WORST_HINT
            )
            idx = _as_indices(name, case, got)
            n = len(labels)
            loss = _loss_ref(logits, labels)
            wrong = np.flatnonzero(logits.argmax(axis=1) != labels)
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
            subset_order = np.argsort(-loss[wrong], kind="stable")[:k]
            not_wrong = [int(i) for i in idx if i not in set(wrong.tolist())]
            if not_wrong:
                if len(wrong) and np.array_equal(np.sort(idx), np.sort(subset_order)):
                    hint = (
                        "these are positions in the list of mistakes, not indices "
                        "into logits: map them back with wrong[order]"
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
            by_confidence = wrong[
                np.argsort(-_confidence(logits)[wrong], kind="stable")
            ][:k]
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
                    "in decreasing order",
                    confidence_hint
                    if np.array_equal(idx, by_confidence)
                    else "highest loss first: sort by -loss (or reverse the argsort)"
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
    "dy = rng.integers(-max_shift, max_shift + 1, size=n), the same for dx, then "
    "return shift_images(images, dy, dx)"
)


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


def check_random_shift(fn) -> None:
    """``fn(images, max_shift, rng)`` -> each image shifted by its own random offset."""
    name = "check_random_shift"
    data = np.random.default_rng(26).uniform(0.2, 1.0, size=(400, 6, 7))
    images = data.astype(np.float32)  # no zero pixels: every offset is visible
    m = 2
    with _KeepGlobalRandomState():
        case = "max_shift = 0"
        got = call_learner(
            name, case, fn, images[:20].copy(), 0, np.random.default_rng(0),
            hint=RANDOM_HINT,
        )
        assert_array_close(
            _as_array(name, case, got, "images"), images[:20], name, case,
            rtol=0, atol=0, dtype="same", what="images",
            hint="with max_shift = 0 every offset is 0: the images come back "
            "unchanged. " + RANDOM_HINT,
        )

        case = f"400 images of 6×7, max_shift = {m}"
        got = call_learner(
            name, case, fn, images.copy(), m, np.random.default_rng(0),
            hint=RANDOM_HINT,
            inplace_hint="return new arrays; shift_images already does",
        )
        got_np = _as_array(name, case, got, "images")
        assert_true(
            got_np.shape == images.shape and got_np.dtype == images.dtype,
            name,
            case,
            f"expected images of shape {images.shape} and dtype {images.dtype}, "
            f"got {describe(got)}",
            "return only the shifted images, with the input's shape and dtype",
        )
        found, rolled = _identify_offsets(got_np, images, 5)
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
        seen = set(found)
        assert_true(
            len(seen) > 1,
            name,
            case,
            f"all 400 images got the same offset {found[0]}",
            "draw one (dy, dx) per image: size=len(images)",
        )
        everything = {(a, b) for a in range(-m, m + 1) for b in range(-m, m + 1)}
        missing = sorted(everything - seen)
        if missing:
            dys, dxs = {a for a, _ in seen}, {b for _, b in seen}
            if m not in dys or m not in dxs:
                hint = (
                    "rng.integers(low, high) never returns high: use "
                    "rng.integers(-max_shift, max_shift + 1) (or endpoint=True)"
                )
            elif all(a == b for a, b in seen) or all(a == -b for a, b in seen):
                hint = "draw dy and dx independently (two draws per image)"
            else:
                hint = (
                    "draw dy and dx independently and uniformly from "
                    "-max_shift … max_shift, both ends included"
                )
            raise CheckFailed(
                name,
                case,
                f"in 400 images these offsets (dy, dx) never occurred: "
                f"{missing[:6]}{' …' if len(missing) > 6 else ''}",
                hint,
            )

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
        assert_true(
            np.array_equal(
                _as_array(name, case, first, "images"),
                _as_array(name, case, second, "images"),
            ),
            name,
            case,
            "two calls with rng = np.random.default_rng(5) gave different images",
            "draw from the rng argument (rng.integers), not from np.random or "
            "another generator: the caller's seed must decide the shifts",
        )

        case = "two calls with one generator"
        rng = np.random.default_rng(6)
        first = call_learner(name, case, fn, images[:50].copy(), m, rng)
        second = call_learner(name, case, fn, images[:50].copy(), m, rng)
        assert_true(
            not np.array_equal(
                _as_array(name, case, first, "images"),
                _as_array(name, case, second, "images"),
            ),
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
        "test set",
        f"expected a torch.nn.Module, got {describe(model)}",
    )
    assert_true(
        not model.training,
        name,
        "test set",
        "the model is in training mode: BatchNorm would normalise each test batch "
        "with its own statistics",
        "call model.eval() before evaluating (train_model returns it in eval mode)",
    )
    with torch.no_grad():
        clean = float((model(preprocess(X_clean)).argmax(1).numpy() == y).mean())
        camera = float((model(preprocess(X_camera)).argmax(1).numpy() == y).mean())
    assert_true(
        clean >= at_least,
        name,
        "clean test set",
        f"accuracy {clean:.3f} is below {at_least:.2f}",
        "was the model trained on the audited labels, for all the epochs?",
    )
    assert_true(
        camera >= at_least_camera,
        name,
        "new-camera test set",
        f"accuracy {camera:.3f} is below {at_least_camera:.2f}",
        "train with augment=shift_augment (random_shift on every training batch, "
        "fresh offsets every time), and evaluate on unshifted inputs",
    )
    passed(
        name,
        extra=f": eval mode, accuracy ≥ {at_least:.2f} clean and "
        f"≥ {at_least_camera:.2f} on the new camera",
    )
