"""Train lab 02_03's tiny detector and write ``model2metal/assets/tiny_detector.pt``.

The capstone (lab 06_01) starts from these weights instead of training, so that its
compared outputs do not depend on how this CPU rounds a training run. The recipe is
lab 02_03's: ``model2metal.detector.TinyCenterNet`` on ``make_shapes(1200, seed=1)``,
CenterNet targets (the reference of ``model2metal.checks.lab02_03``), the focal and
size losses of ``model2metal.detector``, Adam with a one-cycle learning rate, batches
of 32, one thread, every source of randomness seeded. The test set is
the capstone's (``lab06_01.test_set()``, ``make_shapes(200, seed=2)``); its mAP@0.5
is printed, scored by the capstone's reference pipeline (decoding, class-aware NMS).
Usage::

    python tools/train_tiny_detector.py [--epochs N] [--out PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model2metal.checks import lab06_01  # noqa: E402
from model2metal.checks.lab02_03 import _targets_by_loops  # noqa: E402
from model2metal.detector import (  # noqa: E402
    DETECTOR_PATH, GRID, STRIDE, TinyCenterNet, focal_loss, size_loss)
from model2metal.seeding import seed_everything  # noqa: E402
from model2metal.shapes import CLASS_NAMES, make_shapes  # noqa: E402


def targets(all_boxes, all_labels):
    parts = [_targets_by_loops(b, lab, len(CLASS_NAMES), GRID, GRID, STRIDE)
             for b, lab in zip(all_boxes, all_labels)]
    return [torch.tensor(np.stack(p), dtype=torch.float32) for p in zip(*parts)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--out", type=Path, default=DETECTOR_PATH)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    seed_everything(0)
    X, boxes, labels = make_shapes(1200, seed=1)
    heat_t, wh_t, mask_t = targets(boxes, labels)
    net = TinyCenterNet(len(CLASS_NAMES))
    images = torch.from_numpy(X)
    batch = 32
    steps = args.epochs * (len(images) // batch)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3,
                                                   total_steps=steps)
    shuffle = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    net.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(images), generator=shuffle)
        losses = []
        for i in range(0, len(images) - batch + 1, batch):
            idx = order[i:i + batch]
            logits, sizes = net(images[idx])
            loss = (focal_loss(logits, heat_t[idx])
                    + 0.1 * size_loss(sizes, wh_t[idx], mask_t[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        print(f"epoch {epoch + 1}: mean loss {np.mean(losses):.3f}")
    took = time.perf_counter() - start
    net.eval()
    found = lab06_01.reference_detections(lab06_01.test_set()[0], net)
    print(f"trained in {took:.1f} s; test mAP@0.5 "
          f"{lab06_01.score_detections(found):.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
