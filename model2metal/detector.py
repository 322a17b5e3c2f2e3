"""The tiny anchor-free detector of lab 02_03, and its trained weights for the capstone.

``TinyCenterNet`` looks at a 32 × 32 grey image (``model2metal.shapes.make_shapes``)
and predicts, on a 16 × 16 grid (stride 2), a heatmap of object centres per class
(logits) and each object's width and height in grid cells, as CenterNet does (Zhou et
al., *Objects as Points*, 2019). Lab 02_03 trains it from scratch with the losses
below; the capstone (lab 06_01) starts from the weights that
``tools/train_tiny_detector.py`` trains the same way and commits as
``assets/tiny_detector.pt``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .models import _short_repr
from .shapes import CLASS_NAMES

__all__ = ["TinyCenterNet", "focal_loss", "size_loss", "load_tiny_detector",
           "DETECTOR_PATH", "STRIDE", "GRID", "IMAGE_SIZE"]

#: image side, grid side and the stride between them
IMAGE_SIZE, GRID, STRIDE = 32, 16, 2

#: The committed weights (a ``state_dict``), written by ``tools/train_tiny_detector.py``.
DETECTOR_PATH = Path(__file__).resolve().parent / "assets" / "tiny_detector.pt"


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def _conv_repr(layer: nn.Conv2d) -> str:
    """'Conv2d(16, 32, kernel_size=3, stride=2, padding=1, bias=False)': square
    sizes as one number, defaults left out."""
    args = [str(layer.in_channels), str(layer.out_channels),
            f"kernel_size={layer.kernel_size[0]}"]
    if layer.stride[0] != 1:
        args.append(f"stride={layer.stride[0]}")
    if layer.padding[0] != 0:
        args.append(f"padding={layer.padding[0]}")
    if layer.bias is None:
        args.append("bias=False")
    return f"Conv2d({', '.join(args)})"


class TinyCenterNet(nn.Module):
    """Five 3×3 conv-BN-ReLU blocks (the second with stride 2), then two heads of a
    3×3 convolution, a ReLU and a 1×1 convolution: ``heat`` (one logit per class and
    cell; its bias starts at -2.19, so first scores are about 0.1) and ``size``
    (width and height in cells). ``forward`` returns ``(heat logits, sizes)``, shaped
    ``(N, C, 16, 16)`` and ``(N, 2, 16, 16)`` for ``(N, 1, 32, 32)`` images."""

    def __init__(self, num_classes: int = len(CLASS_NAMES), width: int = 32):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(1, 16), _conv_bn(16, width, stride=2),
                                  _conv_bn(width, width), _conv_bn(width, width),
                                  _conv_bn(width, width))
        self.heat = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, num_classes, 1))
        self.size = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 2, 1))
        nn.init.constant_(self.heat[-1].bias, -2.19)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.heat(features), self.size(features)

    def __repr__(self) -> str:  # one line per layer, within a book page's width
        lines = [f"{type(self).__name__}("]
        for name, part in (("body", self.body), ("heat", self.heat),
                           ("size", self.size)):
            lines.append(f"  ({name}):")
            for layer in part.modules():
                if isinstance(layer, nn.Conv2d):
                    lines.append(f"    {_conv_repr(layer)}")
                elif not isinstance(layer, nn.Sequential):
                    lines.append(f"    {_short_repr(layer)}")
        return "\n".join(lines + [")"])


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    centre = target.eq(1).float()
    pos = -(torch.log(p) * (1 - p) ** 2 * centre).sum()
    neg = -(torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - centre)).sum()
    return (pos + neg) / centre.sum().clamp(min=1)


def size_loss(pred: torch.Tensor, target: torch.Tensor,
              mask: torch.Tensor) -> torch.Tensor:
    """L1 loss of the sizes at the centre cells only."""
    per_cell = (pred - target).abs().sum(1) * mask
    return per_cell.sum() / mask.sum().clamp(min=1)


def load_tiny_detector(path: str | Path | None = None) -> TinyCenterNet:
    """The trained detector in eval mode (``weights_only=True``); ``path`` defaults
    to the committed asset :data:`DETECTOR_PATH`."""
    state = torch.load(path or DETECTOR_PATH, map_location="cpu", weights_only=True)
    model = TinyCenterNet()
    model.load_state_dict(state)
    return model.eval()
