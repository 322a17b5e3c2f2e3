"""The capstone's detector: the committed weights detect, the training tool writes
weights that load, and the network prints within a page's width."""

import subprocess
import sys
from pathlib import Path

import torch

from model2metal.checks import lab06_01
from model2metal.detector import (TinyCenterNet, focal_loss, load_tiny_detector,
                                  size_loss)

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_weights_detect_the_test_set():
    found = lab06_01.reference_detections(lab06_01.test_set()[0])
    assert lab06_01.score_detections(found) > 0.95


def test_shapes_and_losses():
    net = load_tiny_detector()
    heat, size = net(torch.zeros(2, 1, 32, 32))
    assert heat.shape == (2, 3, 16, 16) and size.shape == (2, 2, 16, 16)
    target = torch.zeros(2, 3, 16, 16)
    target[0, 1, 4, 5] = 1.0
    assert focal_loss(heat, target).item() > 0
    mask = torch.zeros(2, 16, 16)
    assert size_loss(size, torch.zeros_like(size), mask).item() == 0.0
    assert max(map(len, repr(TinyCenterNet()).splitlines())) <= 76


def test_the_training_tool_writes_weights_that_load(tmp_path):
    out = tmp_path / "w.pt"
    done = subprocess.run([sys.executable, str(ROOT / "tools/train_tiny_detector.py"),
                           "--epochs", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test mAP@0.5" in done.stdout
    load_tiny_detector(out)
