"""A synthetic "shapes" detection data set: squares, discs and triangles on noise.

Small enough to train a detector on a laptop CPU in seconds, hard enough that the
detector has to tell the shapes apart (every class has the same brightness range) and
find each object's extent. Deterministic for a seed::

    images, boxes, labels = make_shapes(256, seed=0)
    images.shape            # (256, 1, 32, 32) float32
    boxes[0], labels[0]     # (k, 4) float32 boxes (x1, y1, x2, y2), (k,) int64 classes

Boxes are in pixel-edge coordinates: pixel column ``j`` covers ``[j, j + 1)``, so a
square filling columns 3..8 has ``x1 = 3`` and ``x2 = 9``. This module is scaffolding
(data and drawing), never the answer to a lab.
"""

from __future__ import annotations

__all__ = ["CLASS_NAMES", "make_shapes", "draw_boxes"]

CLASS_NAMES = ("square", "disc", "triangle")


def _mask(kind: int, x0: float, y0: float, s: float, size: int):
    """Boolean (size, size) mask of one shape whose bounding box is [x0, x0+s)²."""
    import numpy as np

    yc, xc = np.mgrid[0:size, 0:size] + 0.5  # pixel centres
    u, v = xc - x0, yc - y0  # position inside the bounding box
    inside = (u >= 0) & (u < s) & (v >= 0) & (v < s)
    if kind == 0:  # square
        return inside
    if kind == 1:  # disc inscribed in the box
        r = s / 2
        return (u - r) ** 2 + (v - r) ** 2 <= r * r
    # triangle: apex at the top middle, base along the bottom edge
    return inside & (np.abs(u - s / 2) <= v / 2)


def make_shapes(
    n_images: int,
    size: int = 32,
    max_objects: int = 4,
    seed: int = 0,
    *,
    min_side: int = 5,
    max_side: int = 14,
    noise: float = 0.2,
    max_tries: int = 50,
):
    """Generate ``n_images`` grey images with 1 to ``max_objects`` shapes each.

    Every object is a filled square (class 0), disc (1) or triangle (2) with an integer
    side between ``min_side`` and ``max_side`` pixels, a random brightness in
    [0.5, 1.0], placed at integer coordinates without touching another object (a gap
    of at least one pixel). Gaussian pixel noise of standard deviation ``noise`` is
    added, and the image is clipped to [0, 1].

    Returns ``images`` (n, 1, size, size) float32, ``boxes`` (a list of (k, 4) float32
    arrays, (x1, y1, x2, y2) in pixels) and ``labels`` (a list of (k,) int64 arrays).
    """
    import numpy as np

    if not 1 <= min_side <= max_side < size:
        raise ValueError("need 1 <= min_side <= max_side < size")
    rng = np.random.default_rng(seed)
    images = np.zeros((n_images, 1, size, size), dtype=np.float32)
    all_boxes, all_labels = [], []
    for n in range(n_images):
        k = int(rng.integers(1, max_objects + 1))
        occupied = np.zeros((size, size), dtype=bool)
        boxes, labels = [], []
        for _ in range(k):
            for _ in range(max_tries):
                s = int(rng.integers(min_side, max_side + 1))
                x0 = int(rng.integers(0, size - s + 1))
                y0 = int(rng.integers(0, size - s + 1))
                lo_x, lo_y = max(x0 - 1, 0), max(y0 - 1, 0)
                if not occupied[lo_y : y0 + s + 1, lo_x : x0 + s + 1].any():
                    break
            else:  # no free spot: fewer objects in this image
                continue
            kind = int(rng.integers(0, len(CLASS_NAMES)))
            brightness = rng.uniform(0.5, 1.0)
            images[n, 0][_mask(kind, x0, y0, s, size)] = brightness
            occupied[y0 : y0 + s, x0 : x0 + s] = True
            boxes.append((x0, y0, x0 + s, y0 + s))
            labels.append(kind)
        all_boxes.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
        all_labels.append(np.array(labels, dtype=np.int64))
    images += rng.normal(0.0, noise, size=images.shape).astype(np.float32)
    np.clip(images, 0.0, 1.0, out=images)
    return images, all_boxes, all_labels


def draw_boxes(
    ax,
    image,
    boxes=None,
    labels=None,
    *,
    scores=None,
    pred_boxes=None,
    pred_labels=None,
    title: str | None = None,
):
    """Show one image with ground-truth boxes (solid) and predicted boxes (dashed).

    ``image`` is (1, H, W), (H, W) or (3, H, W); boxes are (k, 4) arrays in pixels.
    Labels are drawn as the first letter of the class name, under ground-truth boxes
    and above predictions; ``scores`` (one per predicted box) follow the letter.
    """
    import matplotlib.patches as patches
    import numpy as np

    from .plotting import COLORS

    img = np.asarray(image)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1)
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest",
              extent=(0, img.shape[1], img.shape[0], 0))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)

    def _draw(bxs, lbls, color, style, scr=None, below=False):
        if bxs is None:
            return
        bxs = np.asarray(bxs, dtype=float).reshape(-1, 4)
        for i, (x1, y1, x2, y2) in enumerate(bxs):
            ax.add_patch(
                patches.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                  edgecolor=color, linewidth=1.5, linestyle=style)
            )
            text = "" if lbls is None else CLASS_NAMES[int(lbls[i])][0]
            if scr is not None:
                text += f" {float(scr[i]):.2f}"
            if text:  # ground truth under the box, predictions above it
                ax.text(x1, y2 + 0.3 if below else y1 - 0.3, text.strip(),
                        color=color, fontsize=7, va="top" if below else "bottom",
                        clip_on=False)

    _draw(boxes, labels, COLORS["tvm"], "-", below=True)
    _draw(pred_boxes, pred_labels, COLORS["numba"], "--", scores)
    if title:
        ax.set_title(title, fontsize=8)
    return ax
