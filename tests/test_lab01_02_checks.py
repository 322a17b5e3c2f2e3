"""Lab 01_02's checks reject training loops that lie and accept other correct ones.

Each wrong implementation is a mistake learners really make; every test also asserts
that the message names the case and points at the problem.
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from model2metal.checks import lab01_02 as checks

from check_helpers import rejects


# --- loaders --------------------------------------------------------------------------


def loader_ok(X, y, batch_size, shuffle, seed=0):
    ds = torch.utils.data.TensorDataset(
        torch.tensor(X[:, None, :, :]), torch.tensor(y, dtype=torch.long)
    )
    g = torch.Generator()
    g.manual_seed(seed)
    sampler = (
        torch.utils.data.RandomSampler(ds, generator=g)
        if shuffle
        else torch.utils.data.SequentialSampler(ds)
    )
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, sampler=sampler)


def test_make_loader_accepts_explicit_sampler():
    checks.check_make_loader(loader_ok)


def no_generator(X, y, bs, shuffle, seed=0):
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X).unsqueeze(1),
                                        torch.from_numpy(y))
    return torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=shuffle)


def no_channel(X, y, bs, shuffle, seed=0):
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    return torch.utils.data.DataLoader(
        ds, batch_size=bs, shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
    )


def float_labels(X, y, bs, shuffle, seed=0):
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X).unsqueeze(1),
                                        torch.from_numpy(y).float())
    return torch.utils.data.DataLoader(
        ds, batch_size=bs, shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
    )


def always_shuffle(X, y, bs, shuffle, seed=0):
    return loader_ok(X, y, bs, True, seed)


def drop_last(X, y, bs, shuffle, seed=0):
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X).unsqueeze(1),
                                        torch.from_numpy(y))
    return torch.utils.data.DataLoader(
        ds, batch_size=bs, shuffle=shuffle, drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (no_generator, r"the same seed twice.*different orders.*torch.Generator"),
        (no_channel, r"shape \(4, 1, 8, 8\).*unsqueeze\(1\)"),
        (float_labels, r"int64 tensor"),
        (always_shuffle, r"shuffle=False.*label order.*validation and test"),
        (drop_last, r"batch sizes: expected \[4, 4, 2\].*drop_last=False"),
    ],
)
def test_make_loader_rejects(wrong, expect):
    rejects(checks.check_make_loader, wrong, expect=expect)


# --- evaluate -------------------------------------------------------------------------


def evaluate_ok(model, loader, loss_fn):
    mode = model.training
    model.eval()
    losses, hits = [], []
    with torch.inference_mode():
        for x, y in loader:
            out = model(x)
            losses.append(torch.nn.functional.cross_entropy(out, y, reduction="none"))
            hits.append(out.argmax(1) == y)
    model.train(mode)
    return torch.cat(losses).mean().item(), torch.cat(hits).float().mean().item()


def test_evaluate_accepts_inference_mode_and_concatenation():
    checks.check_evaluate(evaluate_ok)


def make_evaluate(eval_mode=True, no_grad=True, restore=True, per_sample=True,
                  as_tensor=False):
    def evaluate(model, loader, loss_fn):
        was = model.training
        if eval_mode:
            model.eval()
        total, correct, n, means = 0.0, 0, 0, []
        with torch.set_grad_enabled(not no_grad):
            for x, y in loader:
                out = model(x)
                loss = loss_fn(out, y)
                total = total + (loss if as_tensor else loss.item()) * len(y)
                means.append(loss.item())
                correct += (out.argmax(1) == y).sum().item()
                n += len(y)
        if restore:
            model.train(was)
        return (total / n if per_sample else float(np.mean(means))), correct / n

    return evaluate


@pytest.mark.parametrize(
    "kwargs, expect",
    [
        ({"eval_mode": False}, r"in train mode.*training mode.*model.eval\(\)"),
        ({"no_grad": False}, r"recorded the forward pass.*torch.no_grad\(\)"),
        ({"restore": False}, r"model.training after evaluate.*was_training"),
        ({"per_sample": False}, r"batches of 4.*mean loss.*SAMPLES"),
        ({"as_tensor": True, "no_grad": True}, r"loss: expected a Python float.*item"),
    ],
)
def test_evaluate_rejects(kwargs, expect):
    rejects(checks.check_evaluate, make_evaluate(**kwargs), expect=expect)


# --- train_one_epoch ------------------------------------------------------------------


def train_ok(model, loader, optimizer, loss_fn):
    model.train()
    losses, sizes = [], []
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        sizes.append(len(y))
    return float(np.average(losses, weights=sizes))


def test_train_one_epoch_accepts_zero_grad_after_forward():
    checks.check_train_one_epoch(train_ok)


def make_train(zero_grad="every step", train_mode=True, per_sample=True):
    def train(model, loader, optimizer, loss_fn):
        if train_mode:
            model.train()
        if zero_grad == "once":
            optimizer.zero_grad()
        total, n, means = 0.0, 0, []
        for x, y in loader:
            if zero_grad == "every step":
                optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            n += len(y)
            means.append(loss.item())
        return total / n if per_sample else float(np.mean(means))

    return train


@pytest.mark.parametrize(
    "kwargs, expect",
    [
        ({"zero_grad": "never"}, r"batches of 4.*parameter .*values differ.*zero_grad"),
        ({"zero_grad": "once"}, r"parameter .*after one epoch.*Without zero_grad"),
        ({"train_mode": False}, r"ran in eval mode.*model.train\(\)"),
        ({"per_sample": False}, r"last batch 2.*mean training loss.*SAMPLES"),
    ],
)
def test_train_one_epoch_rejects(kwargs, expect):
    rejects(checks.check_train_one_epoch, make_train(**kwargs), expect=expect)


# --- fit ------------------------------------------------------------------------------


def _evaluate(model, loader, loss_fn):
    return make_evaluate()(model, loader, loss_fn)


def make_fit(restore="disk", reset=True, eval_at_end=True, sched_per_batch=False,
             off_by_one=False, save=True):
    def fit(model, train_loader, val_loader, optimizer, loss_fn, scheduler,
            max_epochs, patience, checkpoint_dir):
        history = {"train_loss": [], "val_loss": [], "val_acc": [], "lr": []}
        best, bad, best_state = float("inf"), 0, None
        path = Path(checkpoint_dir) / "ckpt.pt"
        for _ in range(max_epochs):
            history["lr"].append(optimizer.param_groups[0]["lr"])
            model.train()
            total, n = 0.0, 0
            for x, y in train_loader:
                optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                if sched_per_batch and scheduler is not None:
                    scheduler.step()
                total += loss.item() * len(y)
                n += len(y)
            history["train_loss"].append(total / n)
            vl, va = _evaluate(model, val_loader, loss_fn)
            history["val_loss"].append(vl)
            history["val_acc"].append(va)
            if scheduler is not None and not sched_per_batch:
                scheduler.step()
            if vl < best:
                best = vl
                if reset:
                    bad = 0
                if save:
                    torch.save(model.state_dict(), path)
                if restore == "deepcopy":
                    best_state = copy.deepcopy(model.state_dict())
                elif restore == "reference":
                    best_state = model.state_dict()
            else:
                bad += 1
            if (bad > patience) if off_by_one else (bad >= patience):
                break
        if restore == "disk":
            model.load_state_dict(torch.load(path, weights_only=True))
        elif restore in ("deepcopy", "reference"):
            model.load_state_dict(best_state)
        if eval_at_end:
            model.eval()
        return model, history

    return fit


def test_fit_accepts_deepcopy_of_best_state():
    checks.check_fit(make_fit(restore="deepcopy"))


@pytest.mark.parametrize(
    "kwargs, expect",
    [
        ({"restore": "none"}, r"patience 3.*val loss of the returned model.*best"),
        (
            {"restore": "reference"},
            r"val loss of the returned model.*not a copy",
        ),
        ({"reset": False}, r"patience 3.*epochs run.*reset the count"),
        ({"off_by_one": True}, r"epochs run.*expected int 7, got int 8"),
        ({"eval_at_end": False}, r"returned model is in training mode.*model.eval"),
        ({"sched_per_batch": True}, r"history\['lr'\].*once per epoch"),
        ({"save": False, "restore": "deepcopy"}, r"no file was written"),
    ],
)
def test_fit_rejects(kwargs, expect):
    rejects(checks.check_fit, make_fit(**kwargs), expect=expect)


# --- confusion matrix and final model -------------------------------------------------


def test_confusion_matrix_accepts_bincount():
    def by_bincount(t, p, k):
        return np.bincount(t * k + p, minlength=k * k).reshape(k, k)

    checks.check_confusion_matrix(by_bincount)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (  # swapped axes: rows = predicted
            lambda t, p, k: np.bincount(p * k + t, minlength=k * k).reshape(k, k),
            r"asymmetric errors.*values differ.*rows: true",
        ),
        (  # size from the data, not num_classes
            lambda t, p, k: np.bincount(
                t * (max(t.max(initial=0), p.max(initial=0)) + 1) + p
            ).reshape(-1, max(t.max(initial=0), p.max(initial=0)) + 1),
            r"expected shape",
        ),
        (
            lambda t, p, k: np.bincount(t * k + p, minlength=k * k)
            .reshape(k, k)
            .astype(float),
            r"integer counts",
        ),
    ],
)
def test_confusion_matrix_rejects(wrong, expect):
    rejects(checks.check_confusion_matrix, wrong, expect=expect)


def test_final_model_check():
    torch.manual_seed(0)
    X = torch.randn(40, 1, 2, 2)
    y = (X.flatten(1).sum(1) > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), 16)

    class Perfect(torch.nn.Module):
        def forward(self, x):
            s = x.flatten(1).sum(1, keepdim=True)
            return torch.cat([-s, s], dim=1)

    model = Perfect().eval()
    checks.check_final_model(model, loader)
    rejects(checks.check_final_model, model.train(), loader, expect=r"training mode")

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(len(x), 2)

    rejects(
        checks.check_final_model,
        Constant().eval(),
        loader,
        expect=r"test accuracy 0\.\d+ is below 0.95",
    )
