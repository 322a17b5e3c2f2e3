"""Lab 02_02's checks accept other correct solutions and reject typical mistakes.

Each wrong implementation is a mistake learners really make (np.roll for a camera
shift, ranking mistakes by confidence, an exclusive upper bound in rng.integers, ...);
every test also asserts that the message names the problem and points at the fix.
"""

from collections import Counter

import numpy as np
import pytest
import torch
from check_helpers import boom, raises_cleanly, rejects

from model2metal.checks import lab02_02 as checks

# --- shift_images ---------------------------------------------------------------------


def shift_by_padding(images, dy, dx):
    """Pad by the image size, then crop: a different correct solution."""
    n, h, w = images.shape
    padded = np.pad(images, ((0, 0), (h, h), (w, w)))
    return np.stack(
        [padded[i, h - a : 2 * h - a, w - b : 2 * w - b]
         for i, (a, b) in enumerate(zip(dy, dx))]
    ) if n else images.copy()


def shift_with_torch(images, dy, dx):
    """Per-image loop with torch.roll and explicit zeroing of the wrapped part, as
    a NumPy array at the end."""
    out = torch.from_numpy(images.copy())
    for i, (a, b) in enumerate(zip(dy.tolist(), dx.tolist())):
        out[i] = torch.roll(out[i], shifts=(a, b), dims=(0, 1))
        if a > 0:
            out[i, :a] = 0
        elif a < 0:
            out[i, a:] = 0
        if b > 0:
            out[i, :, :b] = 0
        elif b < 0:
            out[i, :, b:] = 0
    return out.numpy()


@pytest.mark.parametrize("fn", [shift_by_padding, shift_with_torch])
def test_shift_images_accepts(fn):
    checks.check_shift_images(fn)


def shift_roll(images, dy, dx):
    return np.stack(
        [np.roll(img, (a, b), axis=(0, 1)) for img, a, b in zip(images, dy, dx)]
    )


def shift_wrong_direction(images, dy, dx):
    return shift_by_padding(images, -dy, -dx)


def shift_swapped_axes(images, dy, dx):
    return shift_by_padding(images, dx, dy)


def shift_first_offset_for_all(images, dy, dx):
    return shift_by_padding(images, np.full_like(dy, dy[0]), np.full_like(dx, dx[0]))


def shift_minus_zero_slice(images, dy, dx):
    """out[a:] = img[:-a], which is empty when a = 0."""
    out = np.zeros_like(images)
    for i, (a, b) in enumerate(zip(dy, dx)):
        src = images[i, :-a] if a >= 0 else images[i, -a:]
        src = src[:, :-b] if b >= 0 else src[:, -b:]
        dst = out[i, a:] if a >= 0 else out[i, :a]
        dst = dst[:, b:] if b >= 0 else dst[:, :b]
        dst[:] = src
    return out


def shift_in_place(images, dy, dx):
    result = shift_by_padding(images, dy, dx)
    images[:] = result
    return result


def shift_float64(images, dy, dx):
    return shift_by_padding(images, dy, dx).astype(np.float64)


def shift_tensor(images, dy, dx):
    return torch.from_numpy(shift_by_padding(images, dy, dx))


def shift_list(images, dy, dx):
    return list(shift_by_padding(images, dy, dx))


def shift_from_copy(images, dy, dx):
    """Starts from a copy of the input: the pixels that come in keep old values."""
    out = images.copy()
    n, h, w = images.shape
    for i in range(n):
        a, b = int(dy[i]), int(dx[i])
        out[i, max(a, 0):h + min(a, 0), max(b, 0):w + min(b, 0)] = images[
            i, max(-a, 0):h + min(-a, 0), max(-b, 0):w + min(-b, 0)
        ]
    return out


def shift_returns_input_unshifted(images, dy, dx):
    """No shift to do: hands back the input itself. Passed before (the check gave
    it a copy and compared values only); the result now must not share memory."""
    if not np.any(dy) and not np.any(dx):
        return images
    return shift_by_padding(images, dy, dx)


def shift_negates_in_place(images, dy, dx):
    dy *= -1  # "rows count upwards": flips the caller's offsets
    return shift_by_padding(images, -dy, dx)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (shift_roll, r"dx = \+2.*np.roll wraps around.*fill .* with 0"),
        (shift_wrong_direction, r"dy = \+1 \(down\).*wrong way.*DOWN"),
        (shift_swapped_axes, r"dy = \+1.*dy and dx are swapped"),
        (shift_first_offset_for_all, r"a different offset each.*dy\[i\] and dx\[i\]"),
        (shift_minus_zero_slice, r"ValueError.*offset of 0.*image\[:-d\] selects "
         r"nothing"),
        (shift_in_place, r"changed its input `images` in place.*new, zero-filled"),
        (shift_float64, r"expected dtype float32, got dtype float64"),
        (lambda images, dy, dx: None, r"got None.*return"),
        (shift_tensor, r"expected a numpy.ndarray, got torch.Tensor.*NumPy array"),
        (shift_list, r"expected a numpy.ndarray, got list"),
        (shift_from_copy, r"dy = \+1.*kept the input's old pixels.*start from zeros"),
        (shift_returns_input_unshifted, r"zero offsets.*shares memory.*`images`"),
        (shift_negates_in_place, r"changed its input `dy` in place"),
    ],
)
def test_shift_images_rejects(wrong, expect):
    rejects(checks.check_shift_images, wrong, expect=expect)


# --- per_example_loss -----------------------------------------------------------------


def loss_torch(logits, labels):
    return torch.nn.functional.cross_entropy(
        torch.as_tensor(logits), torch.as_tensor(labels), reduction="none"
    ).numpy()


def loss_scipy_style(logits, labels):
    z = np.asarray(logits, dtype=np.float64)
    log_probs = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    return -np.take_along_axis(log_probs, np.asarray(labels)[:, None], 1)[:, 0]


@pytest.mark.parametrize("fn", [loss_torch, loss_scipy_style])
def test_per_example_loss_accepts(fn):
    checks.check_per_example_loss(fn)


def loss_naive(logits, labels):
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(labels)), labels])


def loss_log_of_stable_softmax(logits, labels):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(len(labels)), labels])


def loss_mean(logits, labels):
    return loss_scipy_style(logits, labels).mean()


def loss_of_prediction(logits, labels):
    return loss_scipy_style(logits, logits.argmax(axis=1))


def loss_in_place(logits, labels):
    logits -= logits.max(axis=1, keepdims=True)
    return loss_scipy_style(logits, labels)


def loss_global_max(logits, labels):
    """One maximum for the batch. Rejected before too, on "loss 800" (the row
    [3, 1] lies 797 below it and underflows), but with the hint of log(softmax)."""
    m = logits.max()
    lse = m + np.log(np.exp(logits - m).sum(axis=1))
    return lse - logits[np.arange(len(labels)), labels]


def loss_float32_inside(logits, labels):
    """Right formula, float32 arithmetic: a precision problem, named as one."""
    return loss_scipy_style(logits.astype(np.float32), labels).astype(np.float32)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (loss_naive, r"large logits.*NaN/inf.*overflows.*logsumexp"),
        (loss_log_of_stable_softmax, r"loss 800.*NaN/inf.*never take log\(softmax\)"),
        (loss_mean, r"shape \(4,\), got numpy.float64.*the mean over the examples"),
        (loss_of_prediction, r"PREDICTED class.*TRUE label"),
        (lambda z, y: -loss_scipy_style(z, y), r"the sign"),
        (loss_in_place, r"changed its input `logits` in place.*new array"),
        (loss_global_max, r"loss 800.*NaN/inf.*one maximum for the whole batch"),
        (lambda z, y: torch.as_tensor(loss_scipy_style(z, y)),
         r"expected a numpy.ndarray, got torch.Tensor"),
        (lambda z, y: loss_scipy_style(z, y).tolist(),
         r"expected a numpy.ndarray, got a list: \[.*not a list"),
        (loss_float32_inside, r"4 examples.*float32 rounding.*precision problem"),
        (lambda z, y: None, r"losses: got None.*return"),
    ],
)
def test_per_example_loss_rejects(wrong, expect):
    rejects(checks.check_per_example_loss, wrong, expect=expect)


# --- top_confusions -------------------------------------------------------------------


def confusions_by_matrix(y_true, y_pred, k):
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    np.fill_diagonal(cm, 0)
    order = np.argsort(-cm, axis=None, kind="stable")[:k]
    t, p = np.unravel_index(order, cm.shape)
    rows = np.stack([t, p, cm[t, p]], axis=1)[cm[t, p] > 0]
    return [tuple(int(v) for v in row) for row in rows]


def confusions_by_counter(y_true, y_pred, k):
    pairs = Counter((int(t), int(p)) for t, p in zip(y_true, y_pred) if t != p)
    return [(t, p, n) for (t, p), n in pairs.most_common(k)]


@pytest.mark.parametrize("fn", [confusions_by_matrix, confusions_by_counter])
def test_top_confusions_accepts(fn):
    checks.check_top_confusions(fn)


def confusions_swapped(y_true, y_pred, k):
    return confusions_by_counter(y_pred, y_true, k)


def confusions_with_diagonal(y_true, y_pred, k):
    pairs = Counter((int(t), int(p)) for t, p in zip(y_true, y_pred))
    return [(t, p, n) for (t, p), n in pairs.most_common(k)]


def confusions_with_zeros(y_true, y_pred, k):
    cm = np.zeros((10, 10), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    np.fill_diagonal(cm, -1)
    order = np.argsort(-cm, axis=None, kind="stable")[:k]
    t, p = np.unravel_index(order, cm.shape)
    return [(int(a), int(b), int(c)) for a, b, c in zip(t, p, cm[t, p])]


def confusions_ascending(y_true, y_pred, k):
    """The right k pairs, smallest count first."""
    return confusions_by_counter(y_true, y_pred, k)[::-1]


def confusions_as_array(y_true, y_pred, k):
    return np.array(confusions_by_counter(y_true, y_pred, k)).reshape(-1, 3)


def confusions_numpy_ints(y_true, y_pred, k):
    """Counter over zip(y_true, y_pred): NumPy integers, not Python ints."""
    pairs = Counter((t, p) for t, p in zip(y_true, y_pred) if t != p)
    return [(t, p, n) for (t, p), n in pairs.most_common(k)]


def confusions_lists(y_true, y_pred, k):
    return [list(t) for t in confusions_by_counter(y_true, y_pred, k)]


def confusions_count_one(y_true, y_pred, k):
    """Distinct pairs, each with count 1. Before, on the asymmetric case, its
    (1, 7, 1) met the count of the reversed pair 7 → 1 and was told 'swapped'."""
    pairs = sorted({(int(t), int(p)) for t, p in zip(y_true, y_pred) if t != p})
    return [(t, p, 1) for t, p in pairs][:k]


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (confusions_swapped, r"asymmetric.*true 7 → predicted 1 occurs 1.*zip\(y_tr"),
        (confusions_with_diagonal, r"\(1, 1\) is a correct prediction"),
        (confusions_with_zeros, r"fewer mistake pairs.*never occurs.*count 0"),
        (confusions_ascending, r"not in decreasing order"),
        (lambda t, p, k: {(1, 7): 3}, r"expected a list, got dict.*list of tuples"),
        (confusions_as_array, r"expected a list, got ndarray"),
        (confusions_numpy_ints, r"expected Python ints, got numpy.int64.*int\(v\)"),
        (confusions_lists, r"entry 0 .*expected a tuple \(true, predicted, count\)"),
        (confusions_count_one, r"asymmetric.*every count you returned is 1.*every "
         r"occurrence"),
    ],
)
def test_top_confusions_rejects(wrong, expect):
    msg = rejects(checks.check_top_confusions, wrong, expect=expect)
    if wrong is confusions_count_one:
        assert "(true, predicted)" not in msg  # no evidence of swapped pairs


# --- worst_mistakes -------------------------------------------------------------------


def worst_by_torch(logits, labels, k):
    losses = torch.nn.functional.cross_entropy(
        torch.as_tensor(logits), torch.as_tensor(labels), reduction="none"
    )
    pred = torch.as_tensor(logits).argmax(dim=1)
    losses[pred == torch.as_tensor(labels)] = -1.0
    values, idx = torch.sort(losses, descending=True)
    return idx[values >= 0][:k].numpy()


def worst_by_loop(logits, labels, k):
    losses = loss_scipy_style(logits, labels)
    wrong = [i for i in range(len(labels)) if logits[i].argmax() != labels[i]]
    return np.array(sorted(wrong, key=lambda i: -losses[i])[:k], dtype=np.int32)


@pytest.mark.parametrize("fn", [worst_by_torch, worst_by_loop])
def test_worst_mistakes_accepts(fn):
    checks.check_worst_mistakes(fn)


def worst_by_confidence(logits, labels, k):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    confidence = (z / z.sum(axis=1, keepdims=True)).max(axis=1)
    wrong = np.flatnonzero(logits.argmax(axis=1) != labels)
    return wrong[np.argsort(-confidence[wrong])][:k]


def worst_positions_in_subset(logits, labels, k):
    losses = loss_scipy_style(logits, labels)
    wrong = np.flatnonzero(logits.argmax(axis=1) != labels)
    return np.argsort(-losses[wrong])[:k]


def worst_ascending(logits, labels, k):
    losses = loss_scipy_style(logits, labels)
    wrong = np.flatnonzero(logits.argmax(axis=1) != labels)
    return wrong[np.argsort(losses[wrong])][-k:]


def worst_including_correct(logits, labels, k):
    return np.argsort(-loss_scipy_style(logits, labels))[:k]


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (worst_by_confidence, r"confident is not .*ranked by the confidence"),
        (worst_positions_in_subset, r"between correct.*positions in the list.*back"),
        (worst_ascending, r"not in decreasing order.*highest loss first"),
        (worst_including_correct, r"classified correctly.*only the mistakes"),
        (lambda z, y, k: np.array([0.0, 1.0]), r"integer dtype.*float64"),
        (lambda z, y, k: worst_by_loop(z, y, k).tolist(),
         r"expected a numpy.ndarray, got a list: \[1\].*a list or a tensor is not one"),
        (lambda z, y, k: torch.as_tensor(worst_by_loop(z, y, k)),
         r"expected a numpy.ndarray, got torch.Tensor"),
        (lambda z, y, k: worst_by_loop(z, y, k).astype(np.int8),
         r"integer dtype \(int32 or int64\), got .*int8"),
    ],
)
def test_worst_mistakes_rejects(wrong, expect):
    rejects(checks.check_worst_mistakes, wrong, expect=expect)


# --- random_shift ---------------------------------------------------------------------


def random_shift_ok(images, max_shift, rng):
    offsets = rng.integers(-max_shift, max_shift, size=(len(images), 2), endpoint=True)
    return shift_by_padding(images, offsets[:, 0], offsets[:, 1])


def random_shift_choice(images, max_shift, rng):
    values = np.arange(-max_shift, max_shift + 1)
    dy = rng.choice(values, size=len(images))
    dx = rng.choice(values, size=len(images))
    return np.asarray(shift_with_torch(images, dy, dx))


@pytest.mark.parametrize("fn", [random_shift_ok, random_shift_choice])
def test_random_shift_accepts(fn):
    checks.check_random_shift(fn)


def random_shift_exclusive(images, m, rng):
    dy = rng.integers(-m, m, size=len(images))
    dx = rng.integers(-m, m, size=len(images))
    return shift_by_padding(images, dy, dx)


def random_shift_floor(images, m, rng):
    """floor(uniform(-m, m)) never reaches +m."""
    dy, dx = np.floor(rng.uniform(-m, m, size=(2, len(images)))).astype(int)
    return shift_by_padding(images, dy, dx)


def random_shift_roll(images, m, rng):
    dy = rng.integers(-m, m + 1, size=len(images))
    dx = rng.integers(-m, m + 1, size=len(images))
    return shift_roll(images, dy, dx)


def random_shift_one_offset(images, m, rng):
    dy, dx = rng.integers(-m, m + 1, size=2)
    return shift_by_padding(images, np.full(len(images), dy), np.full(len(images), dx))


def random_shift_diagonal(images, m, rng):
    d = rng.integers(-m, m + 1, size=len(images))
    return shift_by_padding(images, d, d)


def random_shift_global(images, m, rng):
    dy = np.random.randint(-m, m + 1, size=len(images))
    dx = np.random.randint(-m, m + 1, size=len(images))
    return shift_by_padding(images, dy, dx)


def random_shift_reseeded(images, m, rng):
    return random_shift_ok(images, m, np.random.default_rng(0))


def random_shift_too_far(images, m, rng):
    return random_shift_ok(images, 2 * m, rng)


def random_shift_hard_coded(images, m, rng):
    return random_shift_ok(images, 2, rng)


def random_shift_rounded(images, m, rng):
    """round(uniform(-m, m)): every offset occurs, the ends half as often. Passed
    before (400 images, 'every offset occurs'); the chi-square bound rejects it."""
    dy, dx = np.round(rng.uniform(-m, m, size=(2, len(images)))).astype(int)
    return shift_by_padding(images, dy, dx)


def random_shift_half_diagonal(images, m, rng):
    """dx = dy for half of the images: each marginal uniform, not independent.
    Passed before (every pair occurs); the joint bound rejects it."""
    dy = rng.integers(-m, m + 1, size=len(images))
    dx = np.where(rng.uniform(size=len(images)) < 0.5, dy,
                  rng.integers(-m, m + 1, size=len(images)))
    return shift_by_padding(images, dy, dx)


def random_shift_same_dx(images, m, rng):
    dy = rng.integers(-m, m + 1, size=len(images))
    dx = np.full(len(images), rng.integers(-m, m + 1))
    return shift_by_padding(images, dy, dx)


def random_shift_list(images, m, rng):
    return list(random_shift_ok(images, m, rng))


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (random_shift_exclusive, r"max_shift = 0.*high <= 0.*never returns high.*"
         r"endpoint"),
        (random_shift_floor, r"never was \+2.*never returns high.*endpoint"),
        (random_shift_roll, r"not a zero-filled shift.*np.roll"),
        (random_shift_one_offset, r"all 2000 images got the same offset \(-?\d, "
         r"-?\d\).*per image"),
        (random_shift_diagonal, r"not independent.*dx = ±dy.*independently"),
        (random_shift_rounded, r"occurred \[\d+, \d+, \d+, \d+, \d+\] times.*"
         r"probability below 1e-7.*half as often.*integers directly"),
        (random_shift_half_diagonal, r"each uniform, but not independent"),
        (random_shift_same_dx, r"every image got dx = .*a new dx for every image"),
        (random_shift_list, r"max_shift = 0.*expected a numpy.ndarray, got list"),
        (random_shift_global, r"same seed twice.*different images.*rng argument"),
        (random_shift_reseeded, r"one generator.*same shifts.*re-seed"),
        (random_shift_too_far, r"more than max_shift = 2"),
        (random_shift_hard_coded, r"max_shift = 0.*come back unchanged"),
    ],
)
def test_random_shift_rejects(wrong, expect):
    rejects(checks.check_random_shift, wrong, expect=expect)


def test_random_shift_check_keeps_the_global_random_state():
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    checks.check_random_shift(random_shift_ok)
    assert np.random.random() == expected


# --- final model ----------------------------------------------------------------------


class Reader(torch.nn.Module):
    """Reads class k from a dot at row 0, column k; one child module."""

    def __init__(self):
        super().__init__()
        self.inner = torch.nn.Identity()

    def forward(self, x):
        row = self.inner(x[:, 0, 0, :])  # (n, 8)
        return torch.cat([row, torch.full((len(x), 2), -10.0)], dim=1)


def dots():
    y = np.random.default_rng(0).integers(0, 8, 60)
    X = np.zeros((60, 8, 8), np.float32)
    X[np.arange(60), 0, y] = 1.0  # class k: one dot at row 0, column k
    return X, y


def test_final_model_check():
    X, y = dots()
    model = Reader().eval()
    checks.check_final_model(model, X, X, y)
    rejects(checks.check_final_model, model.train(), X, X, y, expect=r"training mode")
    model.eval()
    X_moved = np.roll(X, 1, axis=2)
    rejects(
        checks.check_final_model, model, X, X_moved, y,
        expect=r"new-camera test set.*below 0.90.*shift_augment",
    )


def test_final_model_rejects_a_child_in_training_mode():
    """model.training = False leaves the children in training mode (BatchNorm would
    use batch statistics). Passed before: only the top module's flag was read."""
    X, y = dots()
    model = Reader().train()
    model.training = False
    rejects(
        checks.check_final_model, model, X, X, y,
        expect=r"eval mode, but 1 of its submodules are in training mode: inner.*"
        r"model.eval\(\) switches the model and every submodule",
    )
    model = Reader().eval()
    model.inner.train()
    rejects(checks.check_final_model, model, X, X, y, expect=r"submodules.*inner")


def test_final_model_runs_the_model_inside_call_learner():
    X, y = dots()

    class Broken(Reader):
        def forward(self, x):
            return self.inner(x) @ torch.ones(3, 3)  # a shape error

    class Pair(Reader):
        def forward(self, x):
            return super().forward(x), None

    msg = rejects(
        checks.check_final_model, Broken().eval(), X, X, y,
        expect=r"clean test set.*your model raised RuntimeError.*input: torch.Tensor "
        r"shape \(60, 1, 8, 8\).*in forward\(\), line \d+.*Hint: the model takes",
    )
    assert "Traceback" not in msg
    rejects(
        checks.check_final_model, Pair().eval(), X, X, y,
        expect=r"expected a torch.Tensor of logits of shape \(60, 10\), got tuple",
    )
    rejects(
        checks.check_final_model, lambda x: x, X, X, y,
        expect=r"expected a torch.nn.Module, got function.*trained model itself",
    )
    loader = torch.utils.data.DataLoader(list(range(4)), batch_size=2)
    rejects(checks.check_final_model, loader, X, X, y, expect=r"got DataLoader of 2")


# --- learner code that raises: one message, the case, the input and a hint ----------


@pytest.mark.parametrize(
    "check",
    [
        checks.check_shift_images,
        checks.check_per_example_loss,
        checks.check_top_confusions,
        checks.check_worst_mistakes,
        checks.check_random_shift,
    ],
    ids=lambda check: check.__name__,
)
def test_learner_errors_are_one_message(check):
    msg = raises_cleanly(
        check,
        boom,
        expect=r"your boom\(\) raised ZeroDivisionError: a learner's bug\n"
        r"  input: .+\n  in boom\(\), line \d+: raise ZeroDivisionError",
    )
    assert "Traceback" not in msg and "image[:-d]" not in msg  # no evidence for it
