"""Checks for lab 01_02 "A training loop that tells the truth (PyTorch)".

The checks run the learner's functions on small models built here whose behaviour is
known in advance: a "spy" network records, on every forward call, whether it was in
training mode and whether autograd was recording, and contains dropout so that the
training mode also changes its output. Parameter updates are compared with a reference
computed with ``torch.autograd.grad`` and manual SGD (no optimizer, no ``zero_grad``).
Every check runs inside ``torch.random.fork_rng``, so the learner's random state is
the same after a check as before.
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


def _spy_net(n_in: int = 4, n_out: int = 3, p: float = 0.5, dtype=None):
    """A small classifier that records (training, grad enabled) on each forward."""
    torch = _torch()
    nn = torch.nn

    class SpyNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(n_in, 8)
            self.drop = nn.Dropout(p)
            self.out = nn.Linear(8, n_out)
            self.calls: list[tuple[bool, bool]] = []

        def forward(self, x):
            self.calls.append((self.training, torch.is_grad_enabled()))
            return self.out(self.drop(torch.relu(self.hidden(x))))

    net = SpyNet()
    return net.to(dtype) if dtype is not None else net


def _loader(X, y, batch_size):
    torch = _torch()
    ds = torch.utils.data.TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False)


def _reference_eval(model, loader, loss_fn):
    """Per-sample mean loss and accuracy with the model in eval mode, without grad."""
    torch = _torch()
    was = model.training
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            total += float(loss_fn(out, y)) * len(y)
            correct += int((out.argmax(dim=1) == y).sum())
            n += len(y)
    model.train(was)
    return total / n, correct / n


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(
        x, bool
    )


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def _order(loader, name, case):
    """Labels in the order the loader yields them, plus batch sizes and one batch."""
    labels, sizes, first = [], [], None
    batches = call_learner(name, case, lambda: list(loader), label="iterating loader")
    for batch in batches:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise CheckFailed(
                name,
                case,
                f"each batch must be a pair (images, labels), got {describe(batch)}",
                "wrap the tensors in torch.utils.data.TensorDataset(X, y)",
            )
        x, y = batch
        first = first if first is not None else (x, y)
        labels += [int(v) for v in y]
        sizes.append(len(y))
    return labels, sizes, first


def check_make_loader(fn) -> None:
    """``fn(X, y, batch_size, shuffle, seed)`` -> DataLoader of (B, 1, 8, 8) float32."""
    torch = _torch()
    name = "check_make_loader"
    rng = np.random.default_rng(30)
    n = 10
    X = rng.random((n, 8, 8), dtype=np.float32)
    y = np.arange(n, dtype=np.int64)  # label i marks sample i: the order is visible
    with _fork_rng():
        case = "10 samples, batch 4, shuffle=False"
        labels, sizes, (xb, yb) = _order(
            call_learner(name, case, fn, X, y, 4, False, 0), name, case
        )
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
        assert_true(
            isinstance(xb, torch.Tensor)
            and tuple(xb.shape) == (4, 1, 8, 8)
            and xb.dtype == torch.float32,
            name,
            case,
            f"images: expected a float32 tensor of shape (4, 1, 8, 8), "
            f"got {describe(xb)}",
            "add the channel axis: torch.from_numpy(X).unsqueeze(1)",
        )
        assert_array_close(
            xb[:, 0], X[:4], name, case, rtol=0, atol=0, what="first batch of images"
        )
        assert_true(
            isinstance(yb, torch.Tensor) and yb.dtype == torch.int64,
            name,
            case,
            f"labels: expected an int64 tensor, got {describe(yb)}",
            "cross_entropy needs integer class labels: torch.from_numpy(y) of int64",
        )

        case = "shuffle=True, seed=0"
        first_loader = call_learner(name, case, fn, X, y, 4, True, 0)
        epoch1, _, _ = _order(first_loader, name, case)
        epoch2, _, _ = _order(first_loader, name, case)
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
            "pass shuffle=shuffle to the DataLoader",
        )
        assert_true(
            epoch1 != epoch2,
            name,
            case,
            "two epochs of the same loader gave the same order",
            "create the generator once and let the DataLoader draw a new "
            "permutation every epoch (do not re-seed inside the loop)",
        )
        torch.manual_seed(12345)  # a different global state must not matter
        again, _, _ = _order(
            call_learner(name, case, fn, X, y, 4, True, 0), name, case
        )
        assert_true(
            again == epoch1,
            name,
            "shuffle=True, the same seed twice",
            f"two loaders made with seed=0 gave different orders: {epoch1} and {again}",
            "give the DataLoader its own generator: "
            "generator=torch.Generator().manual_seed(seed)",
        )
        other, _, _ = _order(
            call_learner(name, case, fn, X, y, 4, True, 1), name, case
        )
        assert_true(
            other != epoch1,
            name,
            "shuffle=True, seed=1",
            "seed=1 gave the same order as seed=0",
            "use the seed argument for the generator",
        )
    passed(name, 4)


# ---------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------


def check_evaluate(fn) -> None:
    """``fn(model, loader, loss_fn)`` -> (mean loss per sample, accuracy), as floats.

    It must run the model in eval mode without recording gradients, and leave the
    model in the mode it found it.
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
            got = call_learner(name, case, fn, net, loader, loss_fn)
            assert_true(
                bool(net.calls),
                name,
                case,
                "the model was never called",
                "loop over the loader and call model(x)",
            )
            assert_true(
                not any(training for training, _ in net.calls),
                name,
                case,
                "the model ran in training mode: its dropout was active, so the "
                "result is random",
                "call model.eval() before the loop",
            )
            assert_true(
                not any(grad for _, grad in net.calls),
                name,
                case,
                "autograd recorded the forward pass (torch.is_grad_enabled() was "
                "True): that stores every activation for a backward pass that never "
                "comes",
                "wrap the loop in `with torch.no_grad():`",
            )
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise CheckFailed(
                    name,
                    case,
                    f"expected a pair (loss, accuracy), got {describe(got)}",
                    "return mean_loss, accuracy",
                )
            for value, what in zip(got, ("loss", "accuracy")):
                assert_true(
                    _is_number(value),
                    name,
                    case,
                    f"{what}: expected a Python float, got {describe(value)}",
                    "convert with .item() (a tensor keeps its graph and its memory)",
                )
            assert_array_close(
                np.float64(got[0]),
                np.float64(expected[0]),
                name,
                case,
                rtol=1e-5,
                atol=1e-6,
                what="mean loss",
                hint="the mean over SAMPLES: add loss.item() * len(y) per batch and "
                "divide by the number of samples (the last batch can be smaller)",
            )
            assert_array_close(
                np.float64(got[1]),
                np.float64(expected[1]),
                name,
                case,
                rtol=1e-6,
                atol=1e-6,
                what="accuracy",
                hint="the fraction (0 to 1) of samples whose argmax equals the label",
            )
            assert_equal(
                net.training,
                start_mode,
                name,
                case,
                what="model.training after evaluate",
                hint="remember model.training at the start and restore it with "
                "model.train(was_training) at the end",
            )
            n_cases += 1
    passed(name, n_cases)


# ---------------------------------------------------------------------------
# train_one_epoch
# ---------------------------------------------------------------------------


def _manual_epoch(model, loader, loss_fn, lr):
    """One epoch of plain SGD by torch.autograd.grad: no optimizer, no .grad."""
    torch = _torch()
    params = list(model.parameters())
    total, n = 0.0, 0
    model.train()
    for x, y in loader:
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
        total += float(loss.detach()) * len(y)
        n += len(y)
    return total / n


def check_train_one_epoch(fn) -> None:
    """``fn(model, loader, optimizer, loss_fn)`` -> mean training loss per sample."""
    torch = _torch()
    name = "check_train_one_epoch"
    rng = np.random.default_rng(32)
    X = rng.normal(size=(10, 4))
    y = torch.as_tensor(rng.integers(0, 3, size=10))
    loss_fn = torch.nn.CrossEntropyLoss()
    lr = 0.1
    n_cases = 0
    with _fork_rng():
        for case, batch_size in [
            ("10 samples in batches of 4 (last batch 2)", 4),
            ("batch 1", 1),
        ]:
            torch.manual_seed(32)
            net = _spy_net(p=0.0, dtype=torch.float64)
            ref = copy.deepcopy(net)
            loader = _loader(X, y, batch_size)
            expected_loss = _manual_epoch(ref, loader, loss_fn, lr)
            net.eval()  # the learner's function must switch to training mode
            net.calls.clear()
            opt = torch.optim.SGD(net.parameters(), lr=lr)
            got = call_learner(name, case, fn, net, loader, opt, loss_fn)
            assert_true(
                bool(net.calls) and all(training for training, _ in net.calls),
                name,
                case,
                "the model ran in eval mode: dropout and batch norm would behave "
                "as at test time",
                "call model.train() at the start (evaluate switches to eval)",
            )
            for (key, p), p_ref in zip(net.named_parameters(), ref.parameters()):
                assert_array_close(
                    p.detach(),
                    p_ref.detach(),
                    name,
                    case,
                    rtol=1e-9,
                    atol=1e-12,
                    what=f"parameter {key} after one epoch",
                    hint="per batch: optimizer.zero_grad(), loss = loss_fn(model(x), "
                    "y), loss.backward(), optimizer.step(). Without zero_grad every "
                    "step adds the new gradient to all the previous ones",
                )
            assert_true(
                _is_number(got),
                name,
                case,
                f"expected the mean training loss as a float, got {describe(got)}",
                "accumulate loss.item() * len(y); return total / number of samples",
            )
            assert_array_close(
                np.float64(got),
                np.float64(expected_loss),
                name,
                case,
                rtol=1e-9,
                atol=1e-12,
                what="mean training loss",
                hint="the mean over SAMPLES of the losses computed before each "
                "step: add loss.item() * len(y) and divide by the number of samples",
            )
            n_cases += 1
    passed(name, n_cases)


# ---------------------------------------------------------------------------
# fit: early stopping, schedule, best checkpoint
# ---------------------------------------------------------------------------


def _fit_problem(seed: int, n_train: int, noise: float):
    """Few noisy training labels, clean validation labels: overfits after a while."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(6, 3))
    X_tr = rng.normal(size=(n_train, 6)).astype(np.float32)
    X_va = rng.normal(size=(60, 6)).astype(np.float32)
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
}


def _check_checkpoint_dir(name, case, folder: Path) -> None:
    written = [p for p in folder.rglob("*") if p.is_file()]
    assert_true(
        bool(written),
        name,
        case,
        "no file was written to checkpoint_dir",
        "torch.save(model.state_dict(), checkpoint_dir / 'best.pt') whenever the "
        "validation loss improves",
    )


def check_fit(fn) -> None:
    """``fn(model, train_loader, val_loader, optimizer, loss_fn, scheduler,
    max_epochs, patience, checkpoint_dir)`` -> (model, history)."""
    import tempfile

    torch = _torch()
    name = "check_fit"
    loss_fn = torch.nn.CrossEntropyLoss()
    with _fork_rng():
        for case, (seed, n_train, noise, lr, max_epochs, patience, gamma) in (
            _FIT_CASES.items()
        ):
            torch.manual_seed(seed)
            net = torch.nn.Sequential(
                torch.nn.Linear(6, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3)
            )
            train_loader, val_loader = _fit_problem(seed, n_train, noise)
            opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
            sched = (
                None
                if gamma is None
                else torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=gamma)
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
                )
                _check_checkpoint_dir(name, case, Path(tmp))
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise CheckFailed(
                    name,
                    case,
                    f"expected (model, history), got {describe(got)}",
                    "return model, history",
                )
            model, history = got
            keys = ("train_loss", "val_loss", "val_acc", "lr")
            assert_true(
                isinstance(history, dict) and all(k in history for k in keys),
                name,
                case,
                f"history must be a dict with the lists {keys}, got "
                + describe(list(history) if isinstance(history, dict) else history),
                "append one value per epoch to each list",
            )
            n_run = len(history["val_loss"])
            assert_true(
                all(len(history[k]) == n_run for k in keys) and n_run >= 1,
                name,
                case,
                "the history lists have different lengths: "
                + ", ".join(f"{k}: {len(history[k])}" for k in keys),
                "append one value per epoch to each list",
            )
            val = np.asarray(history["val_loss"], dtype=np.float64)
            best = int(np.argmin(val))
            expected_run = min(max_epochs, best + 1 + patience)
            assert_equal(
                n_run,
                expected_run,
                name,
                case,
                what=f"epochs run (best val loss at epoch {best + 1}, patience "
                f"{patience}, max_epochs {max_epochs})",
                hint="count the epochs since the last improvement of the BEST val "
                "loss, reset the count to 0 on improvement, stop when it reaches "
                "patience",
            )
            expected_lr = [lr * (gamma or 1.0) ** e for e in range(n_run)]
            assert_array_close(
                np.asarray(history["lr"], dtype=np.float64),
                np.asarray(expected_lr),
                name,
                case,
                rtol=1e-9,
                what="history['lr'] (the learning rate used in each epoch)",
                hint="record optimizer.param_groups[0]['lr'] before training the "
                "epoch, and call scheduler.step() once per epoch (if it is not None)",
            )
            assert_true(
                isinstance(model, torch.nn.Module),
                name,
                case,
                f"expected the model first, got {type(model).__name__}",
                "return model, history",
            )
            assert_true(
                not model.training,
                name,
                case,
                "the returned model is in training mode",
                "call model.eval() before returning: the caller will predict with it",
            )
            final_loss, _ = _reference_eval(model, val_loader, loss_fn)
            assert_array_close(
                np.float64(final_loss),
                np.float64(val[best]),
                name,
                case,
                rtol=1e-5,
                atol=1e-7,
                what="val loss of the returned model (expected: the best epoch's)",
                hint="restore the best checkpoint before returning: "
                "model.load_state_dict(torch.load(path, weights_only=True)). "
                "Keeping model.state_dict() in a variable is not a copy: its "
                "tensors keep changing with the model",
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


def check_confusion_matrix(fn) -> None:
    """``fn(y_true, y_pred, num_classes)`` -> (K, K) counts, rows = true labels."""
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
        got = call_learner(name, case, fn, t.copy(), p.copy(), k)
        expected = _confusion_by_loops(t, p, k)
        assert_array_close(
            got,
            expected,
            name,
            case,
            rtol=0,
            atol=0,
            what="confusion matrix",
            hint="C[i, j] counts samples whose TRUE label is i and PREDICTED label "
            "is j (rows: true, columns: predicted), shape (num_classes, num_classes)",
        )
        assert_true(
            np.issubdtype(np.asarray(got).dtype, np.integer),
            name,
            case,
            f"expected integer counts, got dtype {np.asarray(got).dtype}",
            "np.zeros((num_classes, num_classes), dtype=np.int64)",
        )
    passed(name, len(cases))


def check_final_model(model, test_loader, at_least: float = 0.95) -> None:
    """The trained model is in eval mode and reaches ``at_least`` test accuracy."""
    torch = _torch()
    name = "check_final_model"
    assert_true(
        isinstance(model, torch.nn.Module),
        name,
        "test set",
        f"expected a torch.nn.Module, got {type(model).__name__}",
    )
    assert_true(
        not model.training,
        name,
        "test set",
        "the model is in training mode",
        "fit must return the model in eval mode",
    )
    _, acc = _reference_eval(model, test_loader, torch.nn.CrossEntropyLoss())
    assert_true(
        acc >= at_least,
        name,
        "test set",
        f"test accuracy {acc:.3f} is below {at_least:.2f}",
        "look at the curves: stopped too early (patience), a learning rate too "
        "high or too low, or the best checkpoint not restored",
    )
    passed(name, extra=f": eval mode, test accuracy ≥ {at_least:.2f}")
