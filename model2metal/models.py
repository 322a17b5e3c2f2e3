"""The course model: one small CNN for scikit-learn's 8×8 digits.

The same network travels through the book: trained in chapter 2
(``tools/train_course_model.py`` writes ``assets/digits_cnn.pt``), exported to ONNX and
folded in chapter 3, compiled by TVM in chapter 4, and its convolutions rewritten as
SIMD and CUDA kernels in chapter 5. It is kept deliberately plain so that every one of
those tools handles it:

* input: NCHW ``float32`` of shape ``(N, 1, 8, 8)``, normalised by :func:`preprocess`;
* three blocks ``conv 3×3 (padding 1, no bias) → BatchNorm → ReLU``, the last two
  followed by ``max-pool 2×2``: 8×8 → 8×8 → 4×4 → 2×2 spatially, 1 → 16 → 32 → 32
  channels;
* flatten (C, H, W order) and one linear layer to 10 logits (no softmax: apply it
  yourself when you need probabilities);
* no data-dependent control flow, no dropout, only standard operators.

The BatchNorm layers are there on purpose. In eval mode each one is an affine map per
channel, ``y = γ (x - μ) / √(σ² + ε) + β``, that can be folded into the weights and a
new bias of the convolution before it — one of chapter 3's lessons. That is also why the
convolutions have no bias of their own: BatchNorm's β replaces it.

    from model2metal.models import load_course_model, preprocess
    model = load_course_model()            # eval mode, trained weights
    logits = model(preprocess(images))     # images: (n, 8, 8) floats in [0, 1]
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = [
    "DigitsCNN",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "WEIGHTS_PATH",
    "preprocess",
    "load_course_model",
    "count_parameters",
]

#: Normalisation constants: mean and standard deviation of all pixels of the training
#: split of ``model2metal.data.load_digits_split()`` (images scaled to [0, 1]), rounded.
PIXEL_MEAN = 0.3054
PIXEL_STD = 0.3761

#: The committed weights (a ``state_dict``), written by ``tools/train_course_model.py``.
WEIGHTS_PATH = Path(__file__).resolve().parent / "assets" / "digits_cnn.pt"


class DigitsCNN(nn.Module):
    """Conv-BN-ReLU ×3 with two max-pools, then one linear layer: 8×8 digit → 10 logits.

    ==========  ===========================  ==============
    layer       operation                    output shape
    ==========  ===========================  ==============
    input                                    (N, 1, 8, 8)
    conv1       3×3, 1→16, pad 1, no bias    (N, 16, 8, 8)
    bn1, relu                                (N, 16, 8, 8)
    conv2       3×3, 16→32, pad 1, no bias   (N, 32, 8, 8)
    bn2, relu, pool  max 2×2, stride 2       (N, 32, 4, 4)
    conv3       3×3, 32→32, pad 1, no bias   (N, 32, 4, 4)
    bn3, relu, pool  max 2×2, stride 2       (N, 32, 2, 2)
    flatten     C, H, W order                (N, 128)
    fc          linear 128→10                (N, 10)
    ==========  ===========================  ==============
    """

    def __init__(self, channels: tuple[int, int, int] = (16, 32, 32), n_classes=10):
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = nn.Conv2d(1, c1, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c2)
        self.conv3 = nn.Conv2d(c2, c3, kernel_size=3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(c3)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c3 * 2 * 2, n_classes)

    def __repr__(self) -> str:
        """PyTorch's layer list, with arguments at their defaults left out, so that
        every line fits a book page (``Conv2d`` without ``stride=(1, 1)``,
        ``BatchNorm2d(16)`` without its five default settings)."""
        lines = [f"{type(self).__name__}("]
        for name, layer in self.named_children():
            lines.append(f"  ({name}): {_short_repr(layer)}")
        return "\n".join(lines + [")"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.relu(self.bn2(self.conv2(x))))
        x = self.pool(self.relu(self.bn3(self.conv3(x))))
        return self.fc(self.flatten(x))


def _short_repr(layer: nn.Module) -> str:
    if isinstance(layer, nn.Conv2d):
        args = [str(layer.in_channels), str(layer.out_channels),
                f"kernel_size={layer.kernel_size}"]
        if layer.stride != (1, 1):
            args.append(f"stride={layer.stride}")
        if layer.padding != (0, 0):
            args.append(f"padding={layer.padding}")
        args.append(f"bias={layer.bias is not None}")
        return f"Conv2d({', '.join(args)})"
    if isinstance(layer, nn.BatchNorm2d):
        defaults = (layer.eps == 1e-5 and layer.momentum == 0.1 and layer.affine
                    and layer.track_running_stats)
        return f"BatchNorm2d({layer.num_features})" if defaults else repr(layer)
    if isinstance(layer, nn.MaxPool2d):
        return f"MaxPool2d(kernel_size={layer.kernel_size}, stride={layer.stride})"
    return repr(layer)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters; BatchNorm's running statistics are buffers, not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def preprocess(images) -> torch.Tensor:
    """(n, 8, 8) images in [0, 1] (NumPy or torch) → normalised (n, 1, 8, 8) float32.

    The one place the normalisation constants are applied; a single (8, 8) image becomes
    a batch of one.
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or tuple(x.shape[1:]) != (8, 8):
        raise ValueError(f"expected images of shape (n, 8, 8), got {tuple(x.shape)}")
    return ((x - PIXEL_MEAN) / PIXEL_STD).unsqueeze(1).contiguous()


def load_course_model(path: str | Path | None = None) -> DigitsCNN:
    """The trained course model in eval mode, loaded with ``weights_only=True``.

    ``path`` defaults to the committed asset :data:`WEIGHTS_PATH`.
    """
    state = torch.load(path or WEIGHTS_PATH, map_location="cpu", weights_only=True)
    model = DigitsCNN()
    model.load_state_dict(state)
    return model.eval()
