"""Train the course model and write its weights to ``model2metal/assets/digits_cnn.pt``.

The model is ``model2metal.models.DigitsCNN`` (see that module for the architecture);
the data is ``model2metal.data.load_digits_split()``. Only the training split is used
for training: 10 % of it (stratified) is held out as a validation set that picks the
best epoch, and the test split is touched once, at the end, to report accuracy. Training uses
random shifts of up to one pixel as augmentation, AdamW and a one-cycle learning-rate
schedule. Every source of randomness is seeded (split, initialisation, shuffling,
augmentation), PyTorch runs in deterministic mode and on one thread, so a run on one
machine always writes the same weights. One thread, because the order of floating-point
sums in a multi-threaded convolution depends on the core count (2 and 1 threads gave
different weights here), and because on a busy machine two threads were ten times slower
than one for a model this small. Other CPUs (other SIMD code paths) may still round
differently, which is why the tests check the accuracy of a fresh run, not its bytes.
Usage::

    python tools/train_course_model.py [--out PATH] [--seed N] [--epochs N]

It prints the validation and test accuracy, the training time and the file size.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model2metal.data import COURSE_VAL_FRACTION, load_digits_split, stratified_holdout
from model2metal.models import (
    PIXEL_MEAN,
    PIXEL_STD,
    WEIGHTS_PATH,
    DigitsCNN,
    count_parameters,
    load_course_model,
    preprocess,
)

EPOCHS = 30
BATCH_SIZE = 64
MAX_LR = 1e-2
WEIGHT_DECAY = 1e-4
VAL_FRACTION = COURSE_VAL_FRACTION


def random_shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each (N, 1, 8, 8) image by -1, 0 or +1 pixel in each direction.

    Pixels shifted in are background: the normalised value of a 0 pixel.
    """
    n = x.shape[0]
    background = (0.0 - PIXEL_MEAN) / PIXEL_STD
    padded = nn.functional.pad(x, (1, 1, 1, 1), value=background)
    dy, dx = torch.randint(0, 3, (2, n), generator=generator)
    rows = (dy[:, None] + torch.arange(8))[:, :, None]  # (n, 8, 1)
    cols = (dx[:, None] + torch.arange(8))[:, None, :]  # (n, 1, 8)
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(dim=1) == y).float().mean())


def train(
    out_path: str | Path | None = WEIGHTS_PATH,
    *,
    seed: int = 0,
    epochs: int = EPOCHS,
    verbose: bool = True,
) -> dict:
    """Train DigitsCNN; save its ``state_dict`` to ``out_path`` (None: do not save).

    Returns a dict with the trained ``model`` (eval mode), ``val_accuracy``,
    ``test_accuracy``, ``best_epoch``, ``seconds`` (training time), ``n_params`` and,
    when saved, ``path`` and ``bytes``.
    """
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    threads_before = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # see the module docstring
    try:
        return _train(out_path, seed=seed, epochs=epochs, verbose=verbose)
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        torch.set_num_threads(threads_before)


def _train(out_path, *, seed: int, epochs: int, verbose: bool) -> dict:
    say = print if verbose else (lambda *args, **kwargs: None)
    start = time.perf_counter()
    X_train, X_test, y_train, y_test = load_digits_split()
    rng = np.random.default_rng(seed)
    fit_idx, val_idx = stratified_holdout(y_train, VAL_FRACTION, rng)
    x_fit, y_fit = preprocess(X_train[fit_idx]), torch.from_numpy(y_train[fit_idx])
    x_val, y_val = preprocess(X_train[val_idx]), torch.from_numpy(y_train[val_idx])

    torch.manual_seed(seed)  # initial weights
    model = DigitsCNN()
    generator = torch.Generator().manual_seed(seed)  # shuffling and augmentation
    steps_per_epoch = -(-len(y_fit) // BATCH_SIZE)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=MAX_LR, weight_decay=WEIGHT_DECAY
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=MAX_LR, epochs=epochs, steps_per_epoch=steps_per_epoch
    )
    loss_fn = nn.CrossEntropyLoss()
    best = (-1.0, -1, None)  # (validation accuracy, epoch, state)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(y_fit), generator=generator)
        total = 0.0
        for i in range(0, len(order), BATCH_SIZE):
            batch = order[i : i + BATCH_SIZE]
            xb = random_shift(x_fit[batch], generator)
            loss = loss_fn(model(xb), y_fit[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        val_acc = accuracy(model, x_val, y_val)
        if val_acc >= best[0]:  # ties: the later epoch, trained longer
            best = (val_acc, epoch, copy.deepcopy(model.state_dict()))
        say(
            f"epoch {epoch:2d}  loss {total / len(y_fit):.4f}  "
            f"validation accuracy {val_acc:.4f}"
        )
    seconds = time.perf_counter() - start
    val_acc, best_epoch, state = best
    model.load_state_dict(state)
    model.eval()
    result = {
        "model": model,
        "val_accuracy": val_acc,
        "best_epoch": best_epoch,
        "seconds": seconds,
        "n_params": count_parameters(model),
        "test_accuracy": accuracy(model, preprocess(X_test), torch.from_numpy(y_test)),
    }
    if out_path is not None:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, out_path)
        result["path"], result["bytes"] = out_path, out_path.stat().st_size
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    result = train(args.out, seed=args.seed, epochs=args.epochs)
    print(
        f"best epoch {result['best_epoch']}: validation accuracy "
        f"{result['val_accuracy']:.4f}\n"
        f"test accuracy {result['test_accuracy']:.4f} "
        f"({result['n_params']:,} parameters, trained in {result['seconds']:.1f} s "
        "on one thread)\n"
        f"wrote {result['path']} ({result['bytes'] / 1024:.1f} KiB)"
    )
    reloaded = load_course_model(result["path"])  # the way the book loads it
    X_train, X_test, y_train, y_test = load_digits_split()
    reloaded_acc = accuracy(reloaded, preprocess(X_test), torch.from_numpy(y_test))
    print(f"reloaded with weights_only=True: test accuracy {reloaded_acc:.4f}")
    return 0 if result["test_accuracy"] >= 0.98 else 1


if __name__ == "__main__":
    sys.exit(main())
