"""Lab 01_02's checks reject training loops that lie and accept other correct ones.

Each wrong implementation is a mistake learners really make; every test also asserts
that the message names the case and points at the problem. Wrong implementations
marked "passed before" were accepted by the checks before issue 9 (verified by running
them against the previous version of ``model2metal/checks/lab01_02.py``).
"""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from check_helpers import raises_cleanly, rejects

from model2metal.checks import lab01_02 as checks




def re_search(pattern, text):
    import re

    return re.search(pattern, text, re.S)


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


def loader_plain(X, y, bs, shuffle, seed=0):
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X).unsqueeze(1),
                                        torch.from_numpy(y))
    return torch.utils.data.DataLoader(
        ds, batch_size=bs, shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed),
    )


def test_make_loader_accepts_explicit_sampler_and_reshape():
    checks.check_make_loader(loader_ok)
    checks.check_make_loader(loader_plain)

    def by_reshape(X, y, bs, shuffle, seed=0):
        images = torch.as_tensor(X).reshape(len(X), 1, 8, 8)
        ds = torch.utils.data.TensorDataset(images, torch.as_tensor(y))
        g = torch.Generator()
        g.manual_seed(seed)
        return torch.utils.data.DataLoader(ds, bs, shuffle, generator=g)

    checks.check_make_loader(by_reshape)


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


def labels_with_an_axis(X, y, bs, shuffle, seed=0):  # passed before: (B, 1) labels
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X).unsqueeze(1),
                                        torch.from_numpy(y).unsqueeze(1))
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


def returns_dataset(X, y, bs, shuffle, seed=0):
    return torch.utils.data.TensorDataset(torch.from_numpy(X).unsqueeze(1),
                                          torch.from_numpy(y))


def scales_in_place(X, y, bs, shuffle, seed=0):
    X /= X.max()  # "normalise" the caller's array
    return loader_plain(X, y, bs, shuffle, seed)


class RotationSampler(torch.utils.data.Sampler):
    """Wrong: a random starting point, then the samples in their order."""

    def __init__(self, n, generator):
        self.n, self.g = n, generator

    def __len__(self):
        return self.n

    def __iter__(self):
        start = 1 + int(torch.randint(self.n - 1, (1,), generator=self.g))
        return iter([(start + k) % self.n for k in range(self.n)])


class BlockSampler(torch.utils.data.Sampler):
    """Wrong: shuffles whole batches; the samples of a batch stay together."""

    def __init__(self, n, bs, generator):
        self.blocks = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
        self.g = generator

    def __len__(self):
        return len(self.blocks)

    def __iter__(self):
        for b in torch.randperm(len(self.blocks), generator=self.g).tolist():
            yield self.blocks[b]


class WithinBatchSampler(BlockSampler):
    """Wrong: shuffles inside each batch; the batches keep their samples."""

    def __iter__(self):
        for block in self.blocks:
            perm = torch.randperm(len(block), generator=self.g).tolist()
            yield [block[k] for k in perm]


def custom_sampler(kind):
    def make(X, y, bs, shuffle, seed=0):
        ds = torch.utils.data.TensorDataset(torch.from_numpy(X).unsqueeze(1),
                                            torch.from_numpy(y))
        if not shuffle:
            return torch.utils.data.DataLoader(ds, batch_size=bs)
        g = torch.Generator().manual_seed(seed)
        if kind == "rotation":
            return torch.utils.data.DataLoader(
                ds, batch_size=bs, sampler=RotationSampler(len(ds), g)
            )
        sampler = (BlockSampler if kind == "blocks" else WithinBatchSampler)(
            len(ds), bs, g
        )
        return torch.utils.data.DataLoader(ds, batch_sampler=sampler)

    return make


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (no_generator, r"the same seed twice.*different orders.*global random state"),
        (no_channel, r"images: expected a float32 torch.Tensor of shape \(B, 1, 8, 8\)"
         r".*channel axis"),
        (float_labels, r"labels: expected an int64 torch.Tensor of shape \(B,\)"),
        (labels_with_an_axis, r"labels: expected an int64 torch.Tensor of shape "
         r"\(B,\), got torch.Tensor shape \(4, 1\).*one axis"),
        (always_shuffle, r"shuffle=False.*label order.*validation and test"),
        (drop_last, r"batch sizes: expected \[4, 4, 2\].*drop_last=False"),
        (returns_dataset, r"result: expected a torch.utils.data.DataLoader, got .*TensorDataset"
         r".*DataLoader itself"),
        (scales_in_place, r"changed its input `X` in place"),
        # passed before: random order of the right samples, new every epoch, seeded
        (custom_sampler("rotation"), r"200 epochs: a uniform permutation.*sample i "
         r"\+ 1 came directly after sample i in \d+% .*rotation"),
        (custom_sampler("blocks"), r"uniform permutation.*directly after.*blocks"),
        (custom_sampler("within batch"), r"uniform permutation.*sample 0 was in the "
         r"first batch in 100% of them.*any batch"),
    ],
)
def test_make_loader_rejects(wrong, expect):
    rejects(checks.check_make_loader, wrong, expect=expect)


def test_make_loader_learner_errors_are_one_message():
    def raises(X, y, bs, shuffle, seed=0):
        return torch.utils.data.DataLoader(torch.from_numpy(X), batch_size=bs,
                                           shuffle=shuffle, generatr=seed)

    raises_cleanly(checks.check_make_loader, raises,
                   expect=r"10 samples, batch 4.*TypeError.*generatr.*Hint: build")

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return self.images[i]  # never set

    def broken_dataset(X, y, bs, shuffle, seed=0):
        return torch.utils.data.DataLoader(Broken(), batch_size=bs)

    msg = raises_cleanly(checks.check_make_loader, broken_dataset,
                         expect=r"your DataLoader \(iterating over it\) raised "
                         r"AttributeError.*input: DataLoader of 3 batches.*"
                         r"return self.images\[i\].*Hint: the error happens")
    assert "detach" not in msg


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
    checks.check_evaluate(make_evaluate())


def make_evaluate(eval_mode="method", no_grad=True, restore="method", per_sample=True,
                  as_tensor=False, acc_scale=1, container=tuple, to=float):
    def evaluate(model, loader, loss_fn):
        was = model.training
        if eval_mode == "method":
            model.eval()
        elif eval_mode == "attribute":
            model.training = False
        total, correct, n, means = 0.0, 0, 0, []
        with torch.set_grad_enabled(not no_grad):
            for x, y in loader:
                out = model(x)
                loss = loss_fn(out, y)
                total = total + (loss if as_tensor else loss.item()) * len(y)
                means.append(loss.item())
                correct += (out.argmax(1) == y).sum().item()
                n += len(y)
        if restore == "method":
            model.train(was)
        elif restore == "attribute":
            model.training = was
        mean = total / n if per_sample else float(np.mean(means))
        result = mean if as_tensor else to(mean), to(acc_scale * correct / n)
        return container(result)

    return evaluate


@pytest.mark.parametrize(
    "kwargs, expect",
    [
        ({"eval_mode": None}, r"in train mode.*ran in training mode.*dropout.*"
         r"eval mode before the loop"),
        # rejected before, but blamed on the loss averaging: the dropout child stayed
        # in training mode and the spy only looked at the outer module
        ({"eval_mode": "attribute", "restore": "attribute"},
         r"model itself was in eval mode, but its submodules.*training mode.*"
         r"attribute model.training switches only the outer module"),
        ({"no_grad": False}, r"recorded the forward pass.*torch.no_grad\(\)"),
        ({"restore": None}, r"training mode before evaluate; after it: .*eval mode\)"
         r".*switch back"),
        ({"per_sample": False}, r"batches of 4.*mean loss.*mean of the batch means.*"
         r"SAMPLES"),
        ({"as_tensor": True}, r"mean loss: expected a float, got torch.Tensor.*"
         r"\.item\(\)"),
        ({"acc_scale": 100}, r"accuracy.*percentage"),
        ({"container": list}, r"result: expected a tuple, got a list: \[.*as a tuple"),
        ({"to": np.float32}, r"mean loss: expected a float, got numpy.float32"),
    ],
)
def test_evaluate_rejects(kwargs, expect):
    rejects(checks.check_evaluate, make_evaluate(**kwargs), expect=expect)


def test_evaluate_rejects_restoring_only_the_outer_module():
    # passed before: the check looked at model.training only
    def evaluate(model, loader, loss_fn):
        was = model.training
        out = make_evaluate()(model, loader, loss_fn)
        model.eval()
        model.training = was
        return out

    rejects(checks.check_evaluate, evaluate,
            expect=r"after it: .*but \d of its submodules in the other mode.*"
            r"attribute model.training")


def test_evaluate_learner_errors_are_one_message():
    def raises(model, loader, loss_fn):
        model.eval()
        with torch.no_grad():
            for x, y in loader:
                loss_fn(model(x), y.float())
        return 0.0, 0.0

    msg = raises_cleanly(checks.check_evaluate, raises,
                         expect=r"batches of 4.*your raises\(\) raised .*input: "
                         r"nn.Module SpyNet.*DataLoader of 3 batches.*Hint: the loader")
    assert "detach" not in msg


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
    checks.check_train_one_epoch(make_train())


def make_train(zero_grad="every step", train_mode="method", per_sample=True,
               own_optimizer=False, as_tensor=False):
    def train(model, loader, optimizer, loss_fn):
        if train_mode == "method":
            model.train()
        elif train_mode == "attribute":
            model.training = True
        if own_optimizer:
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        if zero_grad == "once":
            optimizer.zero_grad()
        total, n, means = 0.0, 0, []
        for x, y in loader:
            if zero_grad == "every step":
                optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            if zero_grad == "before step":
                optimizer.zero_grad()
            optimizer.step()
            total += (loss.detach() if as_tensor else loss.item()) * len(y)
            n += len(y)
            means.append(loss.item())
        return total / n if per_sample else float(np.mean(means))

    return train


@pytest.mark.parametrize(
    "kwargs, expect",
    [
        ({"zero_grad": "never"}, r"batches of 4.*parameter .*values differ.*sum of "
         r"all gradients"),
        ({"zero_grad": "once"}, r"parameter .*after one epoch.*sum of all gradients"),
        ({"zero_grad": "before step"}, r"parameter .*did not change"),
        ({"train_mode": None}, r"ran in eval mode.*training mode at the start"),
        # passed before: dropout p=0 made the outer flag the only thing looked at
        ({"train_mode": "attribute"}, r"model itself was in training mode, but its "
         r"submodules.*eval mode.*model.train\(\) switches"),
        ({"per_sample": False}, r"last batch 2.*mean training loss.*mean of the batch "
         r"means"),
        # passed before: the check's lr was 0.1, like the learner's own optimizer
        ({"own_optimizer": True}, r"momentum 0.9.*plain SGD with lr 0.1, not of the "
         r"optimizer passed in"),
        ({"as_tensor": True}, r"mean training loss: expected a float, got "
         r"torch.Tensor.*\.item\(\)"),
    ],
)
def test_train_one_epoch_rejects(kwargs, expect):
    rejects(checks.check_train_one_epoch, make_train(**kwargs), expect=expect)


def test_train_one_epoch_learner_errors_are_one_message():
    def raises(model, loader, optimizer, loss_fn):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss_fn(model(x.float()), y).backward()
        return 0.0

    raises_cleanly(checks.check_train_one_epoch, raises,
                   expect=r"last batch 2.*raised RuntimeError.*input: nn.Module "
                   r"SpyNet.*optimizer SGD \(lr 0.1\).*Hint: the loader")


# --- fit ------------------------------------------------------------------------------


def _evaluate(model, loader, loss_fn):
    return make_evaluate()(model, loader, loss_fn)


def make_fit(restore="disk", reset=True, eval_at_end="method", sched_per_batch=False,
             off_by_one=False, save="on improvement", improves=lambda a, b: a < b,
             record_val="current", record_train="epoch", acc_scale=1,
             file_name="best.pt"):
    def fit(model, train_loader, val_loader, optimizer, loss_fn, scheduler,
            max_epochs, patience, checkpoint_dir):
        history = {"train_loss": [], "val_loss": [], "val_acc": [], "lr": []}
        best, bad, best_state = float("inf"), 0, None
        path = Path(checkpoint_dir) / file_name
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
            history["train_loss"].append(
                total / n if record_train == "epoch" else loss.item()
            )
            vl, va = _evaluate(model, val_loader, loss_fn)
            history["val_acc"].append(acc_scale * va)
            if scheduler is not None and not sched_per_batch:
                scheduler.step()
            if save == "every epoch":
                torch.save(model.state_dict(), path)
            if improves(vl, best):
                best = vl
                if reset:
                    bad = 0
                if save == "on improvement":
                    torch.save(model.state_dict(), path)
                elif save == "whole model":
                    torch.save(model, path)
                if restore == "deepcopy":
                    best_state = copy.deepcopy(model.state_dict())
                elif restore == "reference":
                    best_state = model.state_dict()
            else:
                bad += 1
            history["val_loss"].append(vl if record_val == "current" else best)
            if (bad > patience) if off_by_one else (bad >= patience):
                break
        if restore == "disk":
            model.load_state_dict(torch.load(path, weights_only=True))
        elif restore == "whole model":
            model = torch.load(path, weights_only=False)
        elif restore in ("deepcopy", "reference"):
            model.load_state_dict(best_state)
        if eval_at_end == "method":
            model.eval()
        elif eval_at_end == "attribute":
            model.training = False
        return model, history

    return fit


def test_fit_accepts_disk_and_deepcopy_of_best_state():
    checks.check_fit(make_fit())
    checks.check_fit(make_fit(restore="deepcopy"))


def test_fit_accepts_a_returned_copy_and_other_loop_shapes():
    def fit(model, train_loader, val_loader, optimizer, loss_fn, scheduler,
            max_epochs, patience, checkpoint_dir):
        history = {"train_loss": [], "val_loss": [], "val_acc": [], "lr": []}
        best_model, since_best = None, 0
        epoch = 0
        while epoch < max_epochs and since_best < patience:
            epoch += 1
            history["lr"].append(float(scheduler.get_last_lr()[0]) if scheduler
                                 else optimizer.param_groups[0]["lr"])
            history["train_loss"].append(train_ok(model, train_loader, optimizer,
                                                  loss_fn))
            loss, acc = evaluate_ok(model, val_loader, loss_fn)
            history["val_loss"].append(loss)
            history["val_acc"].append(acc)
            if scheduler:
                scheduler.step()
            if best_model is None or loss < min(history["val_loss"][:-1]):
                best_model, since_best = copy.deepcopy(model), 0
                torch.save(best_model.state_dict(), checkpoint_dir / "best.pt")
            else:
                since_best += 1
        return best_model.eval(), history

    checks.check_fit(fit)


@pytest.mark.parametrize(
    "kwargs, expect",
    [
        ({"restore": "none"}, r"patience 3.*does not have the weights of the best "
         r"epoch.*those of the last epoch.*restore the best checkpoint"),
        ({"restore": "reference"}, r"weights of the best epoch.*last epoch.*not a "
         r"copy"),
        ({"reset": False}, r"patience 3.*epochs run.*never reset"),
        ({"off_by_one": True}, r"epochs run: expected 7, got 8.*one epoch longer"),
        ({"eval_at_end": None}, r"returned model must be in eval mode: .*training "
         r"mode.*switch it to eval mode before returning"),
        ({"sched_per_batch": True}, r"history\['lr'\].*once per epoch"),
        ({"save": None, "restore": "deepcopy"}, r"no file best.pt in checkpoint_dir "
         r"\(it is empty\)"),
        ({"file_name": "ckpt.pt"}, r"no file best.pt.*found: ckpt.pt"),
        # passed before: never compared with anything
        ({"record_val": "best"}, r"history\['val_loss'\] \(the val loss evaluate "
         r"returned in each epoch\).*values differ"),
        ({"record_train": "last batch"}, r"history\['train_loss'\].*values differ"),
        ({"acc_scale": 100}, r"history\['val_acc'\].*values differ"),
        # passed before: no case had a tie
        ({"improves": lambda a, b: a <= b}, r"learning rate 0.*epochs run: expected "
         r"3, got 8.*equal val loss as an improvement"),
        # passed before: the checkpoint was never loaded
        ({"save": "whole model", "restore": "whole model"}, r"best.pt does not load "
         r"with torch.load\(path, weights_only=True\).*state dict.*not the model"),
        ({"save": "every epoch", "restore": "deepcopy"}, r"best.pt does not hold the "
         r"weights of the best epoch \(\d+\): it holds those of epoch \d+"),
        # passed before: only the outer flag was looked at
        ({"eval_at_end": "attribute"}, r"eval mode: .*but \d of its submodules in the "
         r"other mode.*attribute model.training"),
    ],
)
def test_fit_rejects(kwargs, expect):
    rejects(checks.check_fit, make_fit(**kwargs), expect=expect)


def test_fit_rejects_an_extra_return_value_and_describes_it():
    def fit(*args, **kwargs):
        model, history = make_fit()(*args, **kwargs)
        return model, history, 0

    rejects(checks.check_fit, fit,
            expect=r"expected a pair \(model, history\), got tuple of 3 \[nn.Module "
            r"Sequential .*eval mode\), dict with keys \['train_loss'")


def test_fit_learner_errors_are_one_message():
    def raises(model, train_loader, val_loader, optimizer, loss_fn, scheduler,
               max_epochs, patience, checkpoint_dir):
        for _ in range(max_epochs):
            _evaluate(model, train_loader, loss_fn)
            torch.save(model.state_dict(), checkpoint_dir + "/best.pt")

    msg = raises_cleanly(checks.check_fit, raises,
                         expect=r"patience 3.*raised TypeError.*input: nn.Module "
                         r"Sequential.*DataLoader.*optimizer SGD.*"
                         r"checkpoint_dir=.*Hint: fit calls")
    assert "detach" not in msg


def test_fit_cases_have_early_stopping_decisions_far_from_rounding():
    """Each val loss of the reference runs is either an exact tie with the best so far
    (the lr-0 case) or differs from it by far more than float64 rounding, so no
    machine decides an epoch differently."""
    loss_fn = torch.nn.CrossEntropyLoss()
    for case, params in checks._FIT_CASES.items():
        ref = checks._reference_curves(params, loss_fn, params[4])
        best = np.minimum.accumulate(ref["val_loss"])
        gaps = np.abs(np.asarray(ref["val_loss"][1:]) - best[:-1]) / best[:-1]
        assert np.all((gaps == 0) | (gaps > 1e-6)), (case, gaps.min())


# --- confusion matrix and final model -------------------------------------------------


def test_confusion_matrix_accepts_bincount_add_at_and_histogram():
    def by_bincount(t, p, k):
        return np.bincount(t * k + p, minlength=k * k).reshape(k, k)

    def by_add_at(t, p, k):
        out = np.zeros((k, k), dtype=np.int32)
        np.add.at(out, (t, p), 1)
        return out

    def by_histogram(t, p, k):
        counts, _, _ = np.histogram2d(t, p, bins=k, range=[[0, k], [0, k]])
        return counts.astype(np.int64)

    for fn in (by_bincount, by_add_at, by_histogram):
        checks.check_confusion_matrix(fn)


def fancy_index_add(t, p, k):  # repeated pairs are counted once
    out = np.zeros((k, k), dtype=np.int64)
    out[t, p] += 1
    return out


def bincount_in_place(t, p, k):
    t *= k
    t += p
    return np.bincount(t, minlength=k * k).reshape(k, k)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (  # swapped axes: rows = predicted
            lambda t, p, k: np.bincount(p * k + t, minlength=k * k).reshape(k, k),
            r"asymmetric errors.*values differ.*transpose.*rows are TRUE",
        ),
        (  # size from the data, not num_classes
            lambda t, p, k: np.bincount(
                t * (max(t.max(initial=0), p.max(initial=0)) + 1) + p
            ).reshape(-1, max(t.max(initial=0), p.max(initial=0)) + 1),
            r"never occur.*expected shape \(5, 5\)",
        ),
        (
            lambda t, p, k: np.bincount(t * k + p, minlength=k * k)
            .reshape(k, k)
            .astype(float),
            r"expected an integer dtype.*got dtype float64",
        ),
        (
            lambda t, p, k: np.bincount(t * k + p, minlength=k * k)
            .reshape(k, k)
            .astype(np.int8),
            r"expected an integer dtype \(int32 or int64\), got dtype int8",
        ),
        (
            lambda t, p, k: np.bincount(t * k + p, minlength=k * k)
            .reshape(k, k)
            .tolist(),
            r"expected a numpy.ndarray, got list",
        ),
        # rejected before, but told its axes were swapped
        (fancy_index_add, r"asymmetric errors.*counted at most once.*repeat"),
        (bincount_in_place, r"changed its input `t` in place"),
    ],
)
def test_confusion_matrix_rejects(wrong, expect):
    msg = rejects(checks.check_confusion_matrix, wrong, expect=expect)
    if wrong is fancy_index_add:
        assert "transpose" not in msg


def test_confusion_matrix_learner_errors_are_one_message():
    def raises(t, p, k):
        out = np.zeros((k, k), dtype=np.int64)
        for a, b in zip(t, p):
            out[a][b] += 1
        return out[t.max() + 1]

    raises_cleanly(checks.check_confusion_matrix, raises,
                   expect=r"asymmetric errors.*raised IndexError.*input: .*line \d+: "
                   r"return out\[t.max\(\) \+ 1\].*Hint: start")


def _digits_like():
    torch.manual_seed(0)
    X = torch.randn(40, 1, 2, 2)
    y = (X.flatten(1).sum(1) > 0).long()
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), 16)


class Perfect(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        s = self.drop(x.flatten(1)).sum(1, keepdim=True)
        return torch.cat([-s, s], dim=1)


def test_final_model_check():
    loader = _digits_like()
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


def test_final_model_rejects_a_child_in_training_mode():
    # passed before: the check evaluated in eval mode itself and read model.training
    model = Perfect()
    model.training = False
    rejects(checks.check_final_model, model, _digits_like(),
            expect=r"eval mode: .*but 1 of its submodules in the other mode.*"
            r"attribute model.training")


def test_final_model_learner_errors_are_one_message():
    class WrongShape(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x.flatten(1))

    msg = raises_cleanly(checks.check_final_model, WrongShape().eval(),
                         _digits_like(),
                         expect=r"test set.*your model raised RuntimeError.*input: "
                         r"torch.Tensor shape \(16, 1, 2, 2\).*Hint: the model is "
                         r"called")
    assert "detach" not in msg

    class Tuple(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1), None

    rejects(checks.check_final_model, Tuple().eval(), _digits_like(),
            expect=r"expected logits of shape \(16, number of classes\), got tuple")
    rejects(checks.check_final_model, "model", _digits_like(),
            expect=r"model: expected a torch.nn.Module, got a str: 'model'")


def test_fit_rejects_the_pair_in_the_other_order():
    def fit(*args, **kwargs):
        model, history = make_fit()(*args, **kwargs)
        return history, model

    rejects(checks.check_fit, fit, expect=r"expected \(model, history\), got tuple "
            r"of 2 \[dict with keys.*the model comes first")


def test_final_model_rejects_a_loader_of_something_else():
    X = torch.randn(8, 1, 2, 2)
    rejects(checks.check_final_model, Perfect().eval(),
            torch.utils.data.DataLoader(X, 4),
            expect=r"batch 0 of the test loader: expected a pair of tensors")
