"""Checks for lab 01_02 "A training loop that tells the truth (PyTorch)".

The checks run the learner's functions on small models built here whose behaviour is
known in advance: a "spy" network records, on every forward call, the mode of each of
its modules (so that a model whose *children* stay in the other mode is seen) and
whether autograd was recording, and contains dropout so that the training mode also
changes its output. Parameter updates are compared with a reference computed with
``torch.autograd.grad`` and manual SGD (no optimizer, no ``zero_grad``); ``fit`` is
compared, epoch by epoch, with a reference run of the same training. Every check runs
inside ``torch.random.fork_rng``, so the learner's random state is the same after a
check as before. Every call into learner code (their function, their model, iterating
their loader) goes through :func:`call_learner`.

When a result is wrong the check computes the usual wrong answers (a mean of batch
means, gradients never reset, the epoch count of a patience rule that is off by one,
...) and names a cause only when one of them matches.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from .core import (
    CheckFailed,
    assert_array_close,
    assert_equal,
    assert_true,
    assert_type,
    call_learner,
    describe,
    passed,
)

__all__ = [
    "check_make_loader",
    "check_evaluate",
    "check_train_one_epoch",
    "check_fit",
    "check_confusion_matrix",
    "check_final_model",
]


def _torch():
    import torch

    return torch


def _fork_rng():
    return _torch().random.fork_rng(devices=[])


def _modes(model) -> set[bool]:
    """The set of ``training`` flags of a module and all its submodules."""
    return {m.training for m in model.modules()}


def _spy_net(n_in: int = 4, n_out: int = 3, p: float = 0.5, dtype=None):
    """A small classifier that records (own mode, modes of all modules, grad enabled)
    on each forward."""
    torch = _torch()
    nn = torch.nn

    class SpyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(n_in, 8)
            self.drop = nn.Dropout(p)
            self.out = nn.Linear(8, n_out)
            self.calls: list[tuple[bool, frozenset, bool]] = []

        def forward(self, x):
            self.calls.append(
                (self.training, frozenset(_modes(self)), torch.is_grad_enabled())
            )
            return self.out(self.drop(torch.relu(self.hidden(x))))

    net = SpyNet()
    return net.to(dtype) if dtype is not None else net


def _loader(X, y, batch_size):
    torch = _torch()
    ds = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)


def _reference_eval(model, loader, loss_fn):
    """Per-sample mean loss and accuracy with the model in eval mode, without grad,
    plus the two usual wrong values (mean of batch means, mean of batch accuracies).

    Only for models built by the checks: a learner's model goes through
    :func:`_learner_eval`."""
    torch = _torch()
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    total, correct, n, batch_losses, batch_accs = 0.0, 0, 0, [], []
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            loss = float(loss_fn(out, y))
            hits = int((out.argmax(dim=1) == y).sum())
            total += loss * len(y)
            correct += hits
            n += len(y)
            batch_losses.append(loss)
            batch_accs.append(hits / len(y))
    for m, mode in was:
        m.train(mode)
    return {
        "loss": total / n,
        "accuracy": correct / n,
        "mean of batch losses": float(np.mean(batch_losses)),
        "mean of batch accuracies": float(np.mean(batch_accs)),
        "sum of losses": total,
        "last batch loss": batch_losses[-1],
        "correct": correct,
    }


def _close(a, b, rtol=1e-9) -> bool:
    return bool(np.isclose(float(a), float(b), rtol=rtol, atol=1e-12))


MODE_HINT_EVAL = (
    "model.eval() switches the model and every submodule; setting the attribute "
    "model.training switches only the outer module"
)
MODE_HINT_TRAIN = MODE_HINT_EVAL.replace("eval()", "train()")


def _eval_hint(model, otherwise: str) -> str:
    """The attribute hint when the outer module is in eval mode but not all others."""
    return MODE_HINT_EVAL if not model.training else otherwise


def _mode_problem(calls, want_training: bool) -> tuple[str, bool] | None:
    """What went wrong with the modes recorded by the spy, or None; and whether it is
    the attribute mistake (the model's own flag right, its submodules' wrong)."""
    wrong = [c for c in calls if (not want_training) in c[1]]
    if not wrong:
        return None
    own = wrong[0][0]
    other = "training" if not want_training else "eval"
    if own == want_training:
        return (
            f"the model itself was in {'training' if own else 'eval'} mode, but its "
            f"submodules (Linear, Dropout) were in {other} mode in {len(wrong)} of "
            f"{len(calls)} forward calls",
            True,
        )
    return (
        f"the model ran in {other} mode in {len(wrong)} of {len(calls)} forward calls",
        False,
    )


def _assert_ran_in_mode(name, case, net, training: bool, effect: str, fix: str):
    """The spy network was called, every module of it in the wanted mode; ``effect``
    says what the wrong mode does, ``fix`` how to switch (the attribute mistake gets
    its own hint)."""
    assert_true(
        bool(net.calls),
        name,
        case,
        "the model was never called",
        "loop over the loader and call the model on each batch",
    )
    problem = _mode_problem(net.calls, want_training=training)
    if problem:
        attribute_hint = MODE_HINT_TRAIN if training else MODE_HINT_EVAL
        raise CheckFailed(
            name, case, f"{problem[0]}: {effect}", attribute_hint if problem[1] else fix
        )


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------

LOADER_HINT = (
    "the loader yields what its dataset holds: a TensorDataset of the images (with "
    "their channel axis) and the labels yields (images, labels) pairs"
)


def _epoch(name, case, loader, n_pixels=(8, 8)):
    """Labels in the order one epoch of ``loader`` yields them, and the batch sizes.

    Every batch must be a pair (float32 images (B, 1, 8, 8), int64 labels (B,))."""
    torch = _torch()
    batches = call_learner(
        name,
        case,
        list,
        loader,
        label="DataLoader (iterating over it)",
        hint="the error happens while the loader builds a batch: " + LOADER_HINT,
    )
    labels, sizes = [], []
    for k, batch in enumerate(batches):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise CheckFailed(
                name,
                case,
                f"batch {k}: expected a pair (images, labels), got {describe(batch)}",
                LOADER_HINT,
            )
        x, y = batch
        b = len(y) if isinstance(y, torch.Tensor) and y.ndim >= 1 else None
        assert_true(
            isinstance(x, torch.Tensor)
            and x.dtype == torch.float32
            and x.ndim == 4
            and tuple(x.shape[1:]) == (1, *n_pixels)
            and (b is None or len(x) == b),
            name,
            case,
            f"batch {k}, images: expected a float32 torch.Tensor of shape "
            f"(B, 1, {n_pixels[0]}, {n_pixels[1]}), got {describe(x)}",
            "the network's first layer is a Conv2d: it needs a channel axis of "
            "length 1 after the batch axis, and float32 like the arrays",
        )
        assert_true(
            isinstance(y, torch.Tensor) and y.dtype == torch.int64 and y.ndim == 1,
            name,
            case,
            f"batch {k}, labels: expected an int64 torch.Tensor of shape (B,), got "
            f"{describe(y)}",
            "cross_entropy takes one integer class index per sample: keep the "
            "labels as they are (int64, one axis)",
        )
        labels += [int(v) for v in y.tolist()]
        sizes.append(len(y))
    return labels, sizes, batches


def _loader_of(name, case, fn, *args):
    torch = _torch()
    loader = call_learner(
        name, case, fn, *args, hint="build the dataset from the two arrays, then the "
        "DataLoader from the dataset"
    )
    assert_type(
        loader,
        torch.utils.data.DataLoader,
        name,
        case,
        what="result",
        hint="return the DataLoader itself (not the dataset, not a list of batches)",
    )
    return loader


#: (number of epochs, bound on the fraction of consecutive pairs that stay adjacent,
#: bound on the deviation of "in the first batch" from its expected frequency)
SHUFFLE_STATS = (200, 0.25, 0.2)


def _shuffle_statistics(name, case, loader, n, batch_size):
    """Over many epochs, a shuffled order must look like a uniform permutation.

    Two statistics with bounds far outside their spread for a uniform permutation of
    10 samples (200 epochs): how often sample i + 1 directly follows sample i
    (expected 1/n, standard deviation about 0.007), and how often each sample is in
    the first batch (expected batch_size / n, standard deviation about 0.035).
    """
    epochs, adjacency_bound, first_bound = SHUFFLE_STATS
    follows, first = 0, np.zeros(n)
    for _ in range(epochs):
        order, _, _ = _epoch(name, case, loader)
        position = {label: k for k, label in enumerate(order)}
        follows += sum(position[i + 1] == position[i] + 1 for i in range(n - 1))
        first[order[:batch_size]] += 1
    adjacency = follows / (epochs * (n - 1))
    assert_true(
        adjacency < adjacency_bound,
        name,
        case,
        f"in {epochs} epochs, sample i + 1 came directly after sample i in "
        f"{adjacency:.0%} of the cases; a uniformly shuffled order gives about "
        f"{1 / n:.0%}",
        "the order is not a uniform permutation: neighbours stay together (a "
        "rotation, or whole batches moved as blocks). Let the DataLoader shuffle the "
        "samples with its generator",
    )
    share = first / epochs
    worst = int(np.argmax(np.abs(share - batch_size / n)))
    assert_true(
        abs(share[worst] - batch_size / n) < first_bound,
        name,
        case,
        f"in {epochs} epochs, sample {worst} was in the first batch in "
        f"{share[worst]:.0%} of them; a uniformly shuffled order gives about "
        f"{batch_size / n:.0%} for every sample",
        "the order is not a uniform permutation: each sample must be able to land "
        "in any batch. Let the DataLoader shuffle the samples with its generator",
    )


def check_make_loader(fn) -> None:
    """``fn(X, y, batch_size, shuffle, seed)`` -> DataLoader of (B, 1, 8, 8) float32
    images and (B,) int64 labels."""
    torch = _torch()
    name = "check_make_loader"
    rng = np.random.default_rng(30)
    n = 10
    X = rng.random((n, 8, 8), dtype=np.float32)
    y = np.arange(n, dtype=np.int64)  # label i marks sample i: the order is visible
    n_cases = 0
    with _fork_rng():
        case = "10 samples, batch 4, shuffle=False"
        loader = _loader_of(name, case, fn, X, y, 4, False, 0)
        labels, sizes, batches = _epoch(name, case, loader)
        assert_equal(
            sizes,
            [4, 4, 2],
            name,
            case,
            what="batch sizes",
            hint="keep the last, smaller batch (drop_last=False)",
        )
        assert_equal(
            labels,
            list(range(n)),
            name,
            case,
            what="label order",
            hint="shuffle=False must keep the data in order (validation and test)",
        )
        for k, start in enumerate((0, 4, 8)):
            assert_array_close(
                batches[k][0][:, 0],
                X[start : start + sizes[k]],
                name,
                case,
                rtol=0,
                atol=0,
                what=f"images of batch {k}",
                hint="the images must be the arrays' values, unchanged (no scaling)",
            )
        n_cases += 1

        case = "shuffle=True, seed=0"
        first_loader = _loader_of(name, case, fn, X, y, 4, True, 0)
        epoch1, _, _ = _epoch(name, case, first_loader)
        epoch2, _, _ = _epoch(name, case, first_loader)
        assert_equal(
            sorted(epoch1),
            list(range(n)),
            name,
            case,
            what="labels seen in one epoch (sorted)",
            hint="every sample exactly once per epoch",
        )
        assert_true(
            epoch1 != list(range(n)),
            name,
            case,
            "the training data came out in its original order",
            "pass the shuffle argument on to the DataLoader",
        )
        assert_true(
            epoch1 != epoch2,
            name,
            case,
            "two epochs of the same loader gave the same order",
            "create the generator once and let the DataLoader draw a new "
            "permutation every epoch (do not re-seed inside the loop)",
        )
        n_cases += 1

        case = "shuffle=True, the same seed twice"
        torch.manual_seed(12345)  # a different global state must not matter
        again, _, _ = _epoch(name, case, _loader_of(name, case, fn, X, y, 4, True, 0))
        assert_true(
            again == epoch1,
            name,
            case,
            f"two loaders made with seed=0 gave different orders: {epoch1} and {again}",
            "the order came from the global random state: give the DataLoader a "
            "generator of its own, seeded with the seed argument",
        )
        n_cases += 1

        case = "shuffle=True, seed=1"
        other, _, _ = _epoch(name, case, _loader_of(name, case, fn, X, y, 4, True, 1))
        assert_true(
            other != epoch1,
            name,
            case,
            "seed=1 gave the same order as seed=0",
            "use the seed argument for the generator",
        )
        n_cases += 1

        case = f"shuffle=True, {SHUFFLE_STATS[0]} epochs: a uniform permutation"
        _shuffle_statistics(
            name, case, _loader_of(name, case, fn, X, y, 4, True, 2), n, 4
        )
        n_cases += 1
    passed(name, n_cases)


# ---------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------


def _loss_hint(got: float, ref: dict, what: str) -> str:
    """Name the usual wrong mean loss when ``got`` is that value."""
    if _close(got, ref["mean of batch losses"], 1e-6):
        return (
            f"your {what} is the mean of the batch means; the mean over SAMPLES "
            "weighs each sample once, and the last batch is smaller"
        )
    if _close(got, ref["sum of losses"], 1e-6):
        return f"your {what} is the sum over all samples, not the mean"
    if _close(got, ref["last batch loss"], 1e-6):
        return f"your {what} is the loss of the last batch only"
    return f"expected the {what}: the mean over all samples of the per-sample loss"


def _accuracy_hint(got: float, ref: dict) -> str:
    if _close(got, 100 * ref["accuracy"], 1e-6):
        return "your accuracy is a percentage: return the fraction, from 0 to 1"
    if _close(got, ref["correct"], 1e-9):
        return "your accuracy is the number of correct samples: divide by the total"
    if _close(got, ref["mean of batch accuracies"], 1e-6):
        return (
            "your accuracy is the mean of the batch accuracies; count correct "
            "samples over the whole loader (the last batch is smaller)"
        )
    return (
        "expected the fraction (0 to 1) of all samples whose highest logit is at "
        "the index of their label"
    )


def check_evaluate(fn) -> None:
    """``fn(model, loader, loss_fn)`` -> (mean loss per sample, accuracy), a tuple of
    two Python floats.

    It must run the model (and every submodule) in eval mode without recording
    gradients, and leave every module in the mode it found it.
    """
    torch = _torch()
    name = "check_evaluate"
    rng = np.random.default_rng(31)
    X = rng.normal(size=(10, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=10)
    loss_fn = torch.nn.CrossEntropyLoss()
    n_cases = 0
    with _fork_rng():
        torch.manual_seed(31)
        for case, batch_size, start_mode in [
            ("10 samples in batches of 4, model in train mode", 4, True),
            ("batch 1, model in eval mode", 1, False),
            ("one batch of 10, model in train mode", 10, True),
        ]:
            net = _spy_net()
            loader = _loader(X, y, batch_size)
            expected = _reference_eval(net, loader, loss_fn)
            net.train(start_mode)
            net.calls.clear()
            got = call_learner(
                name,
                case,
                fn,
                net,
                loader,
                loss_fn,
                hint="the loader yields (x, y) batches: x float32 of shape (B, 4), "
                "y int64 of shape (B,); the model returns logits of shape (B, 3)",
            )
            _assert_ran_in_mode(
                name, case, net, training=False,
                effect="its dropout was active, so the result is random",
                fix="switch the model to eval mode before the loop",
            )
            assert_true(
                not any(grad for _, _, grad in net.calls),
                name,
                case,
                "autograd recorded the forward pass (torch.is_grad_enabled() was "
                "True): that stores every activation for a backward pass that never "
                "comes",
                "run the loop inside a torch.no_grad() block",
            )
            assert_type(
                got,
                tuple,
                name,
                case,
                hint="return the two numbers as a tuple: mean_loss, accuracy",
            )
            assert_true(
                len(got) == 2,
                name,
                case,
                f"expected a pair (mean_loss, accuracy), got {describe(got)}",
                "return the two numbers as a tuple: mean_loss, accuracy",
            )
            for value, what in zip(got, ("mean loss", "accuracy")):
                assert_type(
                    value,
                    float,
                    name,
                    case,
                    what=what,
                    hint="a tensor keeps its graph and its memory: .item() gives "
                    "the Python float"
                    if isinstance(value, torch.Tensor)
                    else None,
                )
            assert_array_close(
                np.float64(got[0]),
                np.float64(expected["loss"]),
                name,
                case,
                rtol=1e-5,
                atol=1e-6,
                what="mean loss",
                hint=_loss_hint(got[0], expected, "mean loss"),
            )
            assert_array_close(
                np.float64(got[1]),
                np.float64(expected["accuracy"]),
                name,
                case,
                rtol=1e-6,  # float32 rounding of a fraction is allowed
                atol=0,
                what="accuracy",
                hint=_accuracy_hint(got[1], expected),
            )
            if _modes(net) != {start_mode}:
                outer_ok = net.training == start_mode
                raise CheckFailed(
                    name,
                    case,
                    f"the model was in {'training' if start_mode else 'eval'} mode "
                    f"before evaluate; after it: {describe(net)}",
                    "setting the attribute model.training switches only the outer "
                    "module; the train and eval methods switch every submodule"
                    if outer_ok
                    else "note the model's mode at the start and switch back to it "
                    "at the end (the train method takes the mode as its argument)",
                )
            n_cases += 1
    passed(name, n_cases)


# ---------------------------------------------------------------------------
# train_one_epoch
# ---------------------------------------------------------------------------


def _manual_epoch(model, loader, loss_fn, lr, momentum=0.0, accumulate=False):
    """One epoch of SGD by torch.autograd.grad: no optimizer, no .grad.

    ``accumulate``: the usual mistake, every step uses the sum of all gradients so
    far. Returns the per-sample mean loss and the two usual wrong loss values."""
    torch = _torch()
    params = list(model.parameters())
    buffers = [None] * len(params)
    summed = [torch.zeros_like(p) for p in params]
    total, n, batch_losses = 0.0, 0, []
    model.train()
    for x, y in loader:
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for k, (p, g) in enumerate(zip(params, grads)):
                if accumulate:
                    summed[k] += g
                    g = summed[k].clone()
                if momentum:
                    buffers[k] = g if buffers[k] is None else momentum * buffers[k] + g
                    g = buffers[k]
                p -= lr * g
        batch_losses.append(float(loss.detach()))
        total += batch_losses[-1] * len(y)
        n += len(y)
    return {
        "loss": total / n,
        "mean of batch losses": float(np.mean(batch_losses)),
        "sum of losses": total,
        "last batch loss": batch_losses[-1],
    }


def _same_params(model, other, rtol=1e-9) -> bool:
    return all(
        np.allclose(p.detach().numpy(), q.detach().numpy(), rtol=rtol, atol=1e-12)
        for p, q in zip(model.parameters(), other.parameters())
    )


def _update_hint(net, start, loader, loss_fn, lr, momentum) -> str:
    """Name the usual wrong update when the learner's parameters are that one."""
    if _same_params(net, start):
        return (
            "the parameters did not change: no step was taken with a non-zero "
            "gradient (a missing step or backward, or gradients zeroed between "
            "backward and step)"
        )
    accumulated = copy.deepcopy(start)
    _manual_epoch(accumulated, loader, loss_fn, lr, momentum, accumulate=True)
    if _same_params(net, accumulated):
        return (
            "each step used the sum of all gradients so far: backward() adds into "
            ".grad, so the gradients must be reset before every backward pass"
        )
    if momentum:
        for other_lr in (0.1, 0.01, 0.05, 0.001):
            plain = copy.deepcopy(start)
            _manual_epoch(plain, loader, loss_fn, other_lr)
            if _same_params(net, plain):
                return (
                    f"your update is that of plain SGD with lr {other_lr:g}, not of "
                    f"the optimizer passed in (SGD, lr {lr:g}, momentum "
                    f"{momentum:g}): step the optimizer you were given"
                )
    return (
        "expected the parameters after one step per batch of the optimizer passed "
        "in, each on the gradient of that batch's loss"
    )


def check_train_one_epoch(fn) -> None:
    """``fn(model, loader, optimizer, loss_fn)`` -> mean training loss per sample, a
    Python float."""
    torch = _torch()
    name = "check_train_one_epoch"
    rng = np.random.default_rng(32)
    X = rng.normal(size=(10, 4))
    y = torch.as_tensor(rng.integers(0, 3, size=10))
    loss_fn = torch.nn.CrossEntropyLoss()
    n_cases = 0
    with _fork_rng():
        for case, batch_size, lr, momentum in [
            ("10 samples in batches of 4 (last batch 2), SGD lr 0.1", 4, 0.1, 0.0),
            ("batch 1, SGD lr 0.1", 1, 0.1, 0.0),
            ("batches of 4, SGD lr 0.05 with momentum 0.9", 4, 0.05, 0.9),
        ]:
            torch.manual_seed(32)
            net = _spy_net(p=0.0, dtype=torch.float64)
            start = copy.deepcopy(net)
            ref = copy.deepcopy(net)
            loader = _loader(X, y, batch_size)
            expected = _manual_epoch(ref, loader, loss_fn, lr, momentum)
            net.eval()  # the learner's function must switch to training mode
            net.calls.clear()
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
            got = call_learner(
                name,
                case,
                fn,
                net,
                loader,
                opt,
                loss_fn,
                hint="the loader yields (x, y) batches: x float64 of shape (B, 4), "
                "y int64 of shape (B,); the model returns logits of shape (B, 3); "
                "the optimizer is an SGD over the model's parameters",
            )
            _assert_ran_in_mode(
                name, case, net, training=True,
                effect="dropout and batch norm would behave as at test time",
                fix="switch the model to training mode at the start (evaluate "
                "switches it to eval mode)",
            )
            if not _same_params(net, ref):
                hint = _update_hint(net, start, loader, loss_fn, lr, momentum)
                for (key, p), p_ref in zip(net.named_parameters(), ref.parameters()):
                    assert_array_close(
                        p.detach(),
                        p_ref.detach(),
                        name,
                        case,
                        rtol=1e-9,
                        atol=1e-12,
                        what=f"parameter {key} after one epoch",
                        hint=hint,
                    )
            assert_type(
                got,
                float,
                name,
                case,
                what="mean training loss",
                hint="a tensor keeps its graph and its memory: .item() gives the "
                "Python float"
                if isinstance(got, torch.Tensor)
                else None,
            )
            assert_array_close(
                np.float64(got),
                np.float64(expected["loss"]),
                name,
                case,
                rtol=1e-9,
                atol=1e-12,
                what="mean training loss",
                hint=_loss_hint(got, expected, "mean training loss")
                + " (of the losses computed before each step)",
            )
            n_cases += 1
    passed(name, n_cases)


# ---------------------------------------------------------------------------
# fit: early stopping, schedule, best checkpoint
# ---------------------------------------------------------------------------


def _fit_problem(seed: int, n_train: int, noise: float):
    """Few noisy training labels, clean validation labels: overfits after a while.

    Float64, so that the reference run and the learner's run agree to 1e-12 and no
    early-stopping decision depends on rounding."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(6, 3))
    X_tr = rng.normal(size=(n_train, 6))
    X_va = rng.normal(size=(60, 6))
    y_tr = (X_tr @ W).argmax(axis=1)
    flip = rng.random(n_train) < noise
    y_tr[flip] = rng.integers(0, 3, size=int(flip.sum()))
    y_va = (X_va @ W).argmax(axis=1)
    return _loader(X_tr, y_tr, 8), _loader(X_va, y_va, 16)


_FIT_CASES = {
    # name: (data seed, n_train, label noise, lr, max_epochs, patience, step gamma)
    "overfitting data, patience 3, StepLR(gamma=0.9)": (40, 60, 0.5, 0.1, 40, 3, 0.9),
    "learnable data, max_epochs 5, patience 3, no scheduler": (
        41,
        200,
        0.0,
        0.05,
        5,
        3,
        None,
    ),
    "overfitting data, patience 1, StepLR(gamma=0.8)": (42, 40, 0.4, 0.1, 40, 1, 0.8),
    # lr 0: every epoch's val loss equals the first one exactly: a tie is no
    # improvement, so the run stops after 1 + patience epochs
    "learning rate 0 (every epoch ties with the first), patience 2": (
        43,
        40,
        0.0,
        0.0,
        8,
        2,
        None,
    ),
}


def _fit_setup(seed, n_train, noise, lr, gamma):
    torch = _torch()
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3)
    ).double()
    train_loader, val_loader = _fit_problem(seed, n_train, noise)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    sched = (
        None
        if gamma is None
        else torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=gamma)
    )
    return net, train_loader, val_loader, opt, sched


def _reference_curves(case_params, loss_fn, max_epochs):
    """The whole run of ``max_epochs`` epochs without stopping: per epoch the lr, the
    training loss, the val loss and accuracy, and the weights after it. Early stopping
    only decides where to cut these curves: it does not change the training."""
    seed, n_train, noise, lr, _, _, gamma = case_params
    net, train_loader, val_loader, opt, sched = _fit_setup(
        seed, n_train, noise, lr, gamma
    )
    curves = {"lr": [], "train_loss": [], "val_loss": [], "val_acc": [], "state": []}
    for _ in range(max_epochs):
        curves["lr"].append(opt.param_groups[0]["lr"])
        net.train()
        total, n = 0.0, 0
        for x, y in train_loader:
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(y)
            n += len(y)
        curves["train_loss"].append(total / n)
        ev = _reference_eval(net, val_loader, loss_fn)
        curves["val_loss"].append(ev["loss"])
        curves["val_acc"].append(ev["accuracy"])
        curves["state"].append(copy.deepcopy(net.state_dict()))
        if sched is not None:
            sched.step()
    return curves


def _epochs_run(val, patience, rule="as taught") -> int:
    """How many epochs a patience rule runs on the val-loss curve ``val``."""
    best, bad = float("inf"), 0
    for epoch, loss in enumerate(val, start=1):
        improved = loss <= best if rule == "ties improve" else loss < best
        if rule == "compared with the previous epoch":
            improved = loss < (val[epoch - 2] if epoch > 1 else float("inf"))
        if improved:
            best = min(best, loss)
            if rule != "count not reset":
                bad = 0
        else:
            bad += 1
        if (bad > patience) if rule == "off by one" else (bad >= patience):
            return epoch
    return len(val)


def _best_epoch(val, n_run) -> int:
    """Index of the first strictly lowest val loss among the first ``n_run``."""
    return int(np.argmin(np.asarray(val[:n_run])))


_RULE_HINTS = {
    "off by one": "your run continued one epoch longer than the rule: stop as soon "
    "as the count of epochs without improvement reaches patience",
    "count not reset": "your run stopped as if the count of epochs without "
    "improvement were never reset: reset it to 0 when the val loss improves",
    "ties improve": "your run treated an equal val loss as an improvement: only a "
    "strictly lower loss than the best so far counts",
    "compared with the previous epoch": "your run compared each val loss with the "
    "previous epoch's; compare it with the best so far",
}


def _check_history(name, case, history, ref, max_epochs) -> int:
    keys = ("train_loss", "val_loss", "val_acc", "lr")
    assert_type(history, dict, name, case, what="history",
                hint="return the history dict that fit starts with")
    missing = [k for k in keys if not isinstance(history.get(k), list)]
    assert_true(
        not missing,
        name,
        case,
        f"history must be a dict of lists {keys}; {missing[0]!r} is "
        f"{describe(history.get(missing[0]))}" if missing else "",
        "append one value per epoch to each list",
    )
    lengths = {k: len(history[k]) for k in keys}
    n_run = lengths["val_loss"]
    assert_true(
        len(set(lengths.values())) == 1 and 1 <= n_run <= max_epochs,
        name,
        case,
        "the history lists must all have one value per epoch run (1 to "
        f"max_epochs = {max_epochs}); their lengths: "
        + ", ".join(f"{k}: {v}" for k, v in lengths.items()),
        "append one value per epoch to each list",
    )
    for key in keys:
        for epoch, value in enumerate(history[key], start=1):
            assert_type(
                value,
                float,
                name,
                case,
                what=f"history[{key!r}] at epoch {epoch}",
                hint="store plain numbers: the floats that train_one_epoch and "
                "evaluate return, and the lr as a float",
            )
    checks = [
        ("lr", "the learning rate used in each epoch", 1e-12, _lr_hint),
        ("train_loss", "what train_one_epoch returned in each epoch", 1e-7, None),
        ("val_loss", "the val loss evaluate returned in each epoch", 1e-7, None),
        ("val_acc", "the val accuracy evaluate returned in each epoch", 1e-6, None),
    ]
    for key, meaning, rtol, explain in checks:
        got = np.asarray(history[key], dtype=np.float64)
        want = np.asarray(ref[key][:n_run], dtype=np.float64)
        if np.allclose(got, want, rtol=rtol, atol=1e-12):
            continue
        hint = explain(got, ref) if explain else None
        if hint is None:
            swapped = [
                k for k in ("train_loss", "val_loss", "val_acc")
                if k != key and np.allclose(got, ref[k][:n_run], rtol=1e-7)
            ]
            hint = (
                f"your history[{key!r}] holds the values of history[{swapped[0]!r}]"
                if swapped
                else f"history[{key!r}] must hold {meaning}"
            )
        assert_array_close(
            got, want, name, case, rtol=rtol, atol=1e-12,
            what=f"history[{key!r}] ({meaning})", hint=hint,
        )
    return n_run


def _lr_hint(got: np.ndarray, ref: dict) -> str:
    lrs = np.asarray(ref["lr"], dtype=np.float64)
    n = len(got)
    if n > 1 and len(lrs) > n and np.allclose(got, lrs[1 : n + 1], rtol=1e-12):
        return (
            "your history['lr'] is one epoch ahead: record the learning rate "
            "before training the epoch, and step the scheduler after it"
        )
    if n > 1 and lrs[1] != lrs[0] and np.allclose(got[1:], got[0]):
        return "the learning rate never changed: step the scheduler once per epoch"
    return (
        "history['lr'] must hold the learning rate each epoch trained with: "
        "recorded before the epoch, the scheduler stepped once per epoch after it"
    )


def _same_state(state, ref_state) -> bool:
    return set(state) == set(ref_state) and all(
        np.allclose(state[k].detach().numpy(), ref_state[k].numpy(), rtol=1e-9,
                    atol=1e-12)
        for k in ref_state
    )


def _load_checkpoint(name, case, folder: Path):
    """The learner's best.pt, loaded as torch.load(weights_only=True) would."""
    torch = _torch()
    path = folder / "best.pt"
    written = sorted(p.name for p in folder.rglob("*") if p.is_file())
    assert_true(
        path.is_file(),
        name,
        case,
        "no file best.pt in checkpoint_dir"
        + (f" (found: {', '.join(written)})" if written else " (it is empty)"),
        "save the weights to checkpoint_dir / 'best.pt' whenever the validation "
        "loss improves",
    )
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
        raise CheckFailed(
            name,
            case,
            "best.pt does not load with torch.load(path, weights_only=True): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}",
            "save the state dict (a dict of tensors), not the model object: "
            "loading a pickled model needs weights_only=False, which can run "
            "arbitrary code",
        ) from None
    ok = isinstance(state, dict) and all(
        isinstance(v, torch.Tensor) for v in state.values()
    )
    assert_true(
        ok,
        name,
        case,
        f"best.pt holds {describe(state)}, expected the model's state dict (a dict "
        "of tensors)",
        "save the model's state dict, nothing wrapped around it",
    )
    return state


def check_fit(fn) -> None:
    """``fn(model, train_loader, val_loader, optimizer, loss_fn, scheduler,
    max_epochs, patience, checkpoint_dir)`` -> (model, history).

    The history is compared, epoch by epoch, with a reference run of the same
    training; the number of epochs run with the patience rule applied to the
    reference's val losses; the returned model and ``checkpoint_dir / "best.pt"``
    with the weights of the best epoch.
    """
    import tempfile

    torch = _torch()
    name = "check_fit"
    loss_fn = torch.nn.CrossEntropyLoss()
    with _fork_rng():
        for case, params in _FIT_CASES.items():
            seed, n_train, noise, lr, max_epochs, patience, gamma = params
            ref = _reference_curves(params, loss_fn, max_epochs)
            n_expected = _epochs_run(ref["val_loss"], patience)
            best = _best_epoch(ref["val_loss"], n_expected)
            net, train_loader, val_loader, opt, sched = _fit_setup(
                seed, n_train, noise, lr, gamma
            )
            with tempfile.TemporaryDirectory() as tmp:
                got = call_learner(
                    name,
                    case,
                    fn,
                    net,
                    train_loader,
                    val_loader,
                    opt,
                    loss_fn,
                    sched,
                    max_epochs=max_epochs,
                    patience=patience,
                    checkpoint_dir=Path(tmp),
                    hint="fit calls your train_one_epoch and evaluate: make their "
                    "checks pass first; checkpoint_dir is a pathlib.Path",
                )
                saved = _load_checkpoint(name, case, Path(tmp))
            assert_type(got, tuple, name, case, hint="return model, history")
            assert_true(
                len(got) == 2,
                name,
                case,
                f"expected a pair (model, history), got {describe(got)}",
                "return model, history",
            )
            model, history = got
            assert_true(
                not (isinstance(model, dict) and isinstance(history, torch.nn.Module)),
                name,
                case,
                f"expected (model, history), got {describe(got)}",
                "the model comes first: return model, history",
            )
            n_run = _check_history(name, case, history, ref, max_epochs)
            if n_run != n_expected:
                why = [
                    text
                    for rule, text in _RULE_HINTS.items()
                    if _epochs_run(ref["val_loss"], patience, rule) == n_run
                ]
                raise CheckFailed(
                    name,
                    case,
                    f"epochs run: expected {n_expected}, got {n_run} (val loss "
                    f"best at epoch {best + 1} of the first {n_expected}, patience "
                    f"{patience}, max_epochs {max_epochs})",
                    why[0]
                    if len(why) == 1
                    else "stop after `patience` epochs in a row without a val loss "
                    "strictly below the best so far, or at max_epochs",
                )
            assert_type(
                model,
                torch.nn.Module,
                name,
                case,
                what="first element of the result",
                hint="return model, history",
            )
            assert_true(
                _modes(model) == {False},
                name,
                case,
                f"the returned model must be in eval mode: {describe(model)}",
                _eval_hint(model, "switch it to eval mode before returning (the "
                           "caller will predict with it)"),
            )
            state = model.state_dict()
            if not _same_state(state, ref["state"][best]):
                last = _same_state(state, ref["state"][n_run - 1])
                raise CheckFailed(
                    name,
                    case,
                    f"the returned model does not have the weights of the best "
                    f"epoch ({best + 1} of {n_run})"
                    + (": it has those of the last epoch" if last else ""),
                    "restore the best checkpoint before returning. A state dict "
                    "kept in a variable is not a copy: its tensors are the live "
                    "parameters and keep training"
                    if last
                    else "restore the weights saved at the best epoch",
                )
            if not _same_state(saved, ref["state"][best]):
                which = [
                    e + 1 for e in range(n_run) if _same_state(saved, ref["state"][e])
                ]
                raise CheckFailed(
                    name,
                    case,
                    f"best.pt does not hold the weights of the best epoch ({best + 1})"
                    + (f": it holds those of epoch {which[0]}" if which else ""),
                    "save a checkpoint only when the val loss is strictly lower "
                    "than the best so far",
                )
    passed(name, len(_FIT_CASES))


# ---------------------------------------------------------------------------
# confusion matrix and the final model
# ---------------------------------------------------------------------------


def _confusion_by_loops(y_true, y_pred, k):
    out = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        out[t, p] += 1
    return out


def _confusion_hint(got, expected) -> str:
    try:
        g = np.asarray(got, dtype=np.float64)
    except Exception:  # noqa: BLE001 - the comparison reports what it is
        g = None
    if g is not None and g.shape == expected.shape:
        if not np.array_equal(expected, expected.T) and np.array_equal(g, expected.T):
            return (
                "your matrix is the transpose: rows are TRUE labels, columns "
                "PREDICTED labels"
            )
        if np.array_equal(g, expected > 0) and not np.array_equal(g, expected):
            return (
                "each (true, predicted) pair was counted at most once: an "
                "index-array += adds only once per repeated index; the exercise "
                "names two functions that count repeats"
            )
    return (
        "C[i, j] counts the samples whose TRUE label is i and PREDICTED label is j, "
        "shape (num_classes, num_classes)"
    )


def check_confusion_matrix(fn) -> None:
    """``fn(y_true, y_pred, num_classes)`` -> (K, K) integer counts (a NumPy array,
    32- or 64-bit), rows = true labels."""
    name = "check_confusion_matrix"
    rng = np.random.default_rng(33)
    cases = {
        "3 classes, asymmetric errors": (
            np.array([0, 0, 0, 1, 1, 2, 2, 2, 2]),
            np.array([0, 1, 1, 1, 1, 2, 0, 2, 2]),
            3,
        ),
        "all correct": (np.arange(4), np.arange(4), 4),
        "classes 3 and 4 never occur": (
            np.array([0, 1, 2, 2]),
            np.array([1, 1, 2, 0]),
            5,
        ),
        "one sample": (np.array([2]), np.array([0]), 3),
        "no samples": (np.zeros(0, np.int64), np.zeros(0, np.int64), 2),
        "100 random labels, 10 classes": (
            rng.integers(0, 10, 100),
            rng.integers(0, 10, 100),
            10,
        ),
    }
    for case, (t, p, k) in cases.items():
        expected = _confusion_by_loops(t, p, k)
        got = call_learner(
            name,
            case,
            fn,
            t,
            p,
            k,
            hint="start from a (num_classes, num_classes) array of zeros and add "
            "one count per sample",
        )
        full = f"{case}; y_true {describe(t)}, y_pred {describe(p)}, num_classes {k}"
        assert_array_close(
            got,
            expected,
            name,
            full,
            rtol=0,
            atol=0,
            expect_type=np.ndarray,
            dtype="integer",
            what="confusion matrix",
            hint=_confusion_hint(got, expected),
        )
    passed(name, len(cases))


def _learner_eval(name, case, model, loader):
    """Accuracy of the learner's model on the learner's loader, as it is (no mode
    change), without grad; every forward and the iteration go through call_learner."""
    torch = _torch()
    batches = call_learner(
        name,
        case,
        list,
        loader,
        label="test_loader (iterating over it)",
        hint="the test loader comes from your make_loader: its check must pass",
    )
    correct, n = 0, 0
    with torch.no_grad():
        for k, batch in enumerate(batches):
            assert_true(
                isinstance(batch, (tuple, list))
                and len(batch) == 2
                and all(isinstance(t, torch.Tensor) for t in batch),
                name,
                case,
                f"batch {k} of the test loader: expected a pair of tensors (images, "
                f"labels), got {describe(batch)}",
                "pass the test loader made by your make_loader",
            )
            x, y = batch
            out = call_learner(
                name,
                case,
                model,
                x,
                label="model",
                hint="the model is called on one batch of images from the loader",
            )
            assert_true(
                isinstance(out, torch.Tensor) and out.ndim == 2 and len(out) == len(y),
                name,
                case,
                f"the model's output for a batch of {len(y)} images: expected logits "
                f"of shape ({len(y)}, number of classes), got {describe(out)}",
                "return the model whose forward gives one row of logits per image",
            )
            correct += int((out.argmax(dim=1) == y).sum())
            n += len(y)
    return correct / n


def check_final_model(model, test_loader, at_least: float = 0.95) -> None:
    """The trained model, and every submodule, is in eval mode and reaches
    ``at_least`` test accuracy."""
    torch = _torch()
    name = "check_final_model"
    case = "test set"
    assert_type(model, torch.nn.Module, name, case, what="model",
                hint="pass the model that fit returned")
    assert_true(
        _modes(model) == {False},
        name,
        case,
        f"the model must be in eval mode: {describe(model)}",
        _eval_hint(model, "fit must return the model in eval mode"),
    )
    acc = _learner_eval(name, case, model, test_loader)
    assert_true(
        acc >= at_least,
        name,
        case,
        f"test accuracy {acc:.3f} is below {at_least:.2f}",
        "look at the curves: stopped too early (patience), a learning rate too "
        "high or too low, or the best checkpoint not restored",
    )
    passed(name, extra=f": eval mode, test accuracy ≥ {at_least:.2f}")
