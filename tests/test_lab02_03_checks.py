"""Lab 02_03's checks reject typical mistakes and accept other correct solutions.

Each wrong implementation is a mistake learners (and published code) really make; the
test also asserts that the message names the case and points at the problem.
"""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from check_helpers import boom, raises_cleanly, rejects

from model2metal.checks import lab02_03 as checks

# --- correct solutions, written differently from the lab's --------------------------


def area(b):
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou_torch(a, b):
    """IoU through PyTorch broadcasting, like torchvision.ops.box_iou (+ union 0)."""
    a = torch.as_tensor(np.asarray(a, dtype=np.float64)).reshape(-1, 4)
    b = torch.as_tensor(np.asarray(b, dtype=np.float64)).reshape(-1, 4)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = torch.as_tensor(area(a))[:, None] + torch.as_tensor(area(b))[None] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-300), 0.0).numpy()


def nms_mask(boxes, scores, thr):
    """NMS with a precomputed IoU matrix and a 'removed' mask."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores)))
    ious = iou_torch(boxes, boxes)
    removed = np.zeros(len(scores), bool)
    keep = []
    for i in order:
        if not removed[i]:
            keep.append(i)
            removed |= ious[i] > thr
    return np.array(keep, dtype=np.int64)


def batched_per_class(boxes, scores, classes, thr):
    keep = [
        np.flatnonzero(classes == c)[nms_mask(boxes[classes == c], scores[classes == c],
                                              thr)]
        for c in np.unique(classes)
    ]
    keep = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    return keep[np.lexsort((keep, -scores[keep]))].astype(np.int64)


def ap_voc(recall, precision):
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def make_map(ap=ap_voc, iou=iou_torch, *, voc_matching=False, mark_used=True,
             strict=False, pool_images=False, empty_class_zero=False,
             rank_per_image=False, first_match=False):
    """mAP with switches that turn it into the typical mistakes."""

    def fn(predictions, ground_truths, num_classes, iou_threshold=0.5):
        aps = []
        for c in range(num_classes):
            gts = [b[lab == c] for b, lab in ground_truths]
            if pool_images:
                pooled = np.concatenate(gts) if gts else np.zeros((0, 4))
                gts = [pooled] * len(gts)
            n_gt = sum(len(g) for g in ground_truths_of(ground_truths, c))
            if n_gt == 0:
                if empty_class_zero:
                    aps.append(0.0)
                continue
            dets = [(s, img, b) for img, (bx, sc, lb) in enumerate(predictions)
                    for b, s in zip(bx[lb == c], sc[lb == c])]
            if not rank_per_image:
                dets.sort(key=lambda d: -d[0])
            used = [np.zeros(len(g), bool) for g in gts]
            hits = []
            for s, img, b in dets:
                if len(gts[img]) == 0:
                    hits.append(0)
                    continue
                ov = iou(b[None], gts[img])[0]
                if not voc_matching:
                    ov = np.where(used[img], -1.0, ov)
                j = int(np.argmax(ov))
                if first_match:  # the first unmatched box above the threshold
                    above = np.flatnonzero(ov >= iou_threshold)
                    j = int(above[0]) if len(above) else j
                ok = ov[j] > iou_threshold if strict else ov[j] >= iou_threshold
                hit = ok and not used[img][j]
                if hit and mark_used:
                    used[img][j] = True
                hits.append(int(hit))
            tp = np.cumsum(hits)
            aps.append(ap(tp / n_gt, tp / np.arange(1, len(hits) + 1)))
        return float(np.mean(aps))

    return fn


def ground_truths_of(ground_truths, c):
    return [b[lab == c] for b, lab in ground_truths]


def peaks_torch(heat, threshold):
    h = torch.as_tensor(heat)[None]
    pooled = F.max_pool2d(h, 3, stride=1, padding=1)
    return ((h == pooled) & (h > threshold))[0].numpy()


def make_decode(*, suppress=True, swap_xy=False, per_class_k=False, half=0.5,
                interior_only=False, at_least=False):
    def fn(heatmap, wh, k=100, stride=1, threshold=0.0):
        heat = np.asarray(heatmap, dtype=np.float32)
        mask = peaks_torch(heat, threshold) if suppress else heat > threshold
        if at_least:  # score >= threshold
            mask = peaks_torch(heat, -np.inf) & (heat >= threshold)
        if interior_only:
            mask[:, [0, -1], :] = False
            mask[:, :, [0, -1]] = False
        c, y, x = np.nonzero(mask)
        s = heat[c, y, x]
        order = np.argsort(-s, kind="stable")
        if per_class_k:
            order = np.concatenate([order[c[order] == cl][:k] for cl in np.unique(c)])
        else:
            order = order[:k]
        c, y, x, s = c[order], y[order], x[order], s[order]
        if swap_xy:
            x, y = y, x
        w, h = wh[0][y % wh.shape[1], x % wh.shape[2]], wh[1][y % wh.shape[1],
                                                             x % wh.shape[2]]
        cx, cy = x + half, y + half
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) * stride
        by_score = np.argsort(-s, kind="stable")
        return (boxes[by_score].astype(np.float32), s[by_score],
                c[by_score].astype(np.int64))

    return fn


def sigma(w, h):
    return max(0.5, min(w, h) / 6)


def make_targets_fn(*, combine=np.maximum, swap_xy=False, divide_wh=True,
                    centre=np.floor):
    def fn(boxes, labels, num_classes, out_h, out_w, stride):
        heat = np.zeros((num_classes, out_h, out_w), np.float32)
        wh = np.zeros((2, out_h, out_w), np.float32)
        mask = np.zeros((out_h, out_w), np.float32)
        yy, xx = np.mgrid[0:out_h, 0:out_w]
        for (x1, y1, x2, y2), c in zip(boxes, labels):
            div = stride if divide_wh else 1
            w, h = (x2 - x1) / div, (y2 - y1) / div
            cx = min(int(centre((x1 + x2) / 2 / stride)), out_w - 1)
            cy = min(int(centre((y1 + y2) / 2 / stride)), out_h - 1)
            if swap_xy:
                cx, cy = min(cy, out_w - 1), min(cx, out_h - 1)
            s = sigma((x2 - x1) / stride, (y2 - y1) / stride)
            g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
            heat[c] = combine(heat[c], g)
            wh[:, cy, cx] = (w, h)
            mask[cy, cx] = 1
        return heat, wh, mask

    return fn


# --- 1. areas and IoU ---------------------------------------------------------------


def test_box_area_accepts_loop_and_rejects_plus_one():
    checks.check_box_area(lambda b: np.array([(x2 - x1) * (y2 - y1)
                                              for x1, y1, x2, y2 in b]))
    rejects(
        checks.check_box_area,
        lambda b: (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1),
        expect=r"5 random boxes.*values differ.*no \+1",
    )


def test_pairwise_iou_accepts_torch_version():
    checks.check_pairwise_iou(iou_torch)


def iou_unclamped(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).prod(-1)
    union = area(a)[:, None] + area(b)[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_clamp_product(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.maximum((rb - lt).prod(-1), 0)
    union = area(a)[:, None] + area(b)[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_nan_on_empty_union(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return inter / (area(a)[:, None] + area(b)[None] - inter)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (iou_unclamped, r"3 random boxes against 4.*values differ.*BEFORE multiply"),
        (iou_clamp_product, r"values differ.*BEFORE multiplying"),
        (iou_nan_on_empty_union, r"zero-area boxes.*NaN.*union is 0"),
        (lambda a, b: iou_torch(b, a), r"expected shape \(3, 4\), got shape \(4, 3\)"),
        (lambda a, b: iou_torch(a[:, [1, 0, 3, 2]], b), r"3 random.*values differ"),
    ],
    ids=["no clamp", "clamp the product", "0/0", "transposed", "x and y swapped"],
)
def test_pairwise_iou_rejects(wrong, expect):
    rejects(checks.check_pairwise_iou, wrong, expect=expect)


def iou_epsilon(a, b):
    """inter / (union + 1e-9): no NaN for union 0, but an IoU of 0.5 comes out as
    0.4999999999. Passed before (every case compared with rtol 1e-5), and then
    made mAP reject a match at exactly 0.5."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


def iou_like_integers(a, b):
    """Right formula, but the output array takes the dtype of integer boxes.
    Passed before (every case had float boxes); the lab's next cell crashed."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    union = area(a)[:, None].astype(a.dtype) + area(b)[None].astype(a.dtype) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou_float32(a, b):
    """All arithmetic in float32 (as torchvision on float32 boxes): still right."""
    a = torch.as_tensor(np.asarray(a, dtype=np.float32)).reshape(-1, 4)
    b = torch.as_tensor(np.asarray(b, dtype=np.float32)).reshape(-1, 4)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-30), 0.0).numpy()


def test_pairwise_iou_accepts_float32_arithmetic():
    checks.check_pairwise_iou(iou_float32)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (iou_epsilon, r"IoU exactly 0\.5.*got 0\.4999999999.*slightly BELOW.*exact"),
        (iou_like_integers, r"integer coordinates.*raised UFuncTypeError.*work in "
         r"floats"),
        (lambda a, b: torch.as_tensor(iou_torch(a, b)),
         r"expected a numpy.ndarray, got torch.Tensor"),
        (lambda a, b: iou_torch(a, b).tolist(), r"expected a numpy.ndarray, got"),
        (lambda a, b: (iou_torch(a, b) > 0.5), r"expected a floating-point dtype, got "
         r"dtype bool"),
    ],
    ids=["epsilon in the union", "integer output array", "tensor", "list", "bool"],
)
def test_pairwise_iou_rejects_types_and_near_threshold(wrong, expect):
    rejects(checks.check_pairwise_iou, wrong, expect=expect)


def test_box_area_rejects_types_and_names_plus_one():
    rejects(checks.check_box_area, lambda b: list(area(b)),
            expect=r"expected a numpy.ndarray")
    rejects(
        checks.check_box_area,
        lambda b: (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1),
        expect=r"\(width \+ 1\) × \(height \+ 1\)",
    )


# --- 2. NMS ---------------------------------------------------------------------------


def test_nms_accepts_mask_version():
    checks.check_nms(nms_mask)


def nms_no_suppression(boxes, scores, thr):
    return np.argsort(-scores, kind="stable")


def nms_index_order(boxes, scores, thr):
    ious, keep = iou_torch(boxes, boxes), []
    for i in range(len(scores)):  # ignores the scores
        if all(ious[i, j] <= thr for j in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def nms_against_suppressed_too(boxes, scores, thr):
    order = np.argsort(-scores, kind="stable")
    ious = iou_torch(boxes, boxes)
    keep = [i for n, i in enumerate(order) if all(ious[i, j] <= thr for j in order[:n])]
    return np.array(keep, dtype=np.int64)


def nms_greater_equal(boxes, scores, thr):
    order = np.argsort(-scores, kind="stable")
    ious, keep = iou_torch(boxes, boxes), []
    for i in order:
        if all(ious[i, j] < thr for j in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def nms_reverse_ties(boxes, scores, thr):
    order = np.argsort(scores, kind="stable")[::-1]  # equal scores: higher index first
    ious, keep = iou_torch(boxes, boxes), []
    for i in order:
        if all(ious[i, j] <= thr for j in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (nms_no_suppression, r"two identical boxes.*both kept.*IoU is 1\.000"),
        (nms_index_order, r"scores not sorted.*wrong order.*descending score"),
        (nms_against_suppressed_too, r"a chain.*expected \[0, 2\], got \[0\].*IT"),
        (nms_greater_equal, r"exactly equal to the threshold.*expected \[0, 1\]"),
        (nms_reverse_ties, r"equal scores.*expected \[0\], got \[1\].*lower index"),
        (lambda b, s, t: nms_mask(b, s, t).astype(float), r"integer dtype"),
        (lambda b, s, t: list(nms_mask(b, s, t)) or None, r"no boxes.*got None"),
    ],
    ids=["keeps overlaps", "ignores scores", "wrong box", ">=", "ties", "floats",
         "None"],
)
def test_nms_rejects(wrong, expect):
    rejects(checks.check_nms, wrong, expect=expect)


def nms_writes_scores(boxes, scores, thr):
    """Marks suppressed boxes by writing -inf into the caller's scores. Passed
    before: the check handed over copies and never looked at them again."""
    ious, keep = iou_torch(boxes, boxes), []
    while len(scores) and np.isfinite(scores).any():
        i = int(np.argmax(scores))
        keep.append(i)
        scores[ious[i] > thr] = -np.inf
        scores[i] = -np.inf
    return np.array(keep, dtype=np.int64)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (nms_writes_scores, r"changed its input `scores` in place.*not by overwriting"),
        (lambda b, s, t: list(nms_mask(b, s, t)), r"no boxes.*expected a "
         r"numpy.ndarray, got a list: \[\]"),
        (nms_against_suppressed_too, r"a chain.*itself been suppressed"),
        (nms_index_order, r"scores not sorted.*visit them by descending score"),
    ],
    ids=["writes -inf into scores", "list", "suppressed suppress", "index order"],
)
def test_nms_rejects_with_evidence(wrong, expect):
    rejects(checks.check_nms, wrong, expect=expect)


def test_batched_nms_accepts_per_class_loop():
    checks.check_batched_nms(batched_per_class)


def batched_offset(boxes, scores, classes, thr):
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    shift = (boxes.max() + 1) * classes[:, None]
    return nms_mask(boxes + shift, scores, thr)


def test_batched_nms_accepts_offset_trick():
    checks.check_batched_nms(batched_offset)


def batched_unsorted(boxes, scores, classes, thr):
    keep = [np.flatnonzero(classes == c)[nms_mask(boxes[classes == c],
                                                  scores[classes == c], thr)]
            for c in np.unique(classes)]
    return np.concatenate(keep).astype(np.int64) if keep else np.zeros(0, np.int64)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (lambda b, s, c, t: nms_mask(b, s, t), r"same box in two classes.*missing \[0\]"
         r".*ANOTHER class.*never suppress"),
        (batched_unsorted, r"wrong order.*sort"),
    ],
    ids=["class-agnostic", "not sorted across classes"],
)
def test_batched_nms_rejects(wrong, expect):
    rejects(checks.check_batched_nms, wrong, expect=expect)


def batched_ties_in_class_order(boxes, scores, classes, thr):
    """Per-class NMS, then a stable sort by score alone: equal scores of different
    classes stay in class order. Passed before: no case had equal scores in two
    classes."""
    keep = batched_unsorted(boxes, scores, classes, thr)
    return keep[np.argsort(-scores[keep], kind="stable")]


def batched_shifts_in_place(boxes, scores, classes, thr):
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    boxes += (boxes.max() + 1) * classes[:, None]
    return nms_mask(boxes, scores, thr)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (batched_ties_in_class_order, r"equal scores in different classes.*expected "
         r"\[1, 0, 2, 3, 4\], got \[1, 2, 0, 3, 4\].*lower index first, over all "
         r"classes"),
        (batched_shifts_in_place, r"changed its input `boxes` in place.*`\+=`"),
    ],
    ids=["ties in class order", "boxes += offsets"],
)
def test_batched_nms_rejects_new_cases(wrong, expect):
    rejects(checks.check_batched_nms, wrong, expect=expect)


# --- 3. AP and mAP --------------------------------------------------------------------


def test_average_precision_accepts_voc_code():
    checks.check_average_precision(ap_voc)


def ap_no_envelope(recall, precision):
    r = np.concatenate([[0.0], recall])
    return float(np.sum((r[1:] - r[:-1]) * precision))


def ap_11_point(recall, precision):
    return float(np.mean([max(precision[recall >= t], default=0.0)
                          for t in np.linspace(0, 1, 11)]))


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (ap_no_envelope, r"precision rises again.*AP: expected 0\.55.*monotone"),
        (lambda r, p: float(np.trapezoid(p, r)) if len(r) else 0.0,
         r"a perfect ranking.*expected 1, got 0\.5"),
        (ap_11_point, r"AP: expected"),
        (lambda r, p: np.array([ap_voc(r, p)]), r"AP: expected a float, got ndarray"),
    ],
    ids=["no envelope", "trapezoid", "11-point", "array"],
)
def test_average_precision_rejects(wrong, expect):
    rejects(checks.check_average_precision, wrong, expect=expect)


def ap_left_envelope(recall, precision):
    r = np.concatenate([[0.0], recall])
    env = np.maximum.accumulate(np.asarray(precision, dtype=float))
    return float(np.sum((r[1:] - r[:-1]) * env))


def ap_int_zero_when_empty(recall, precision):
    return ap_voc(recall, precision) if len(recall) else 0


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (ap_no_envelope, r"own precision.*HIGHER"),
        (ap_left_envelope, r"precision rises again.*looks to the left"),
        (lambda r, p: float(np.trapezoid(p, r)) if len(r) else 0.0, r"trapezoid"),
        (ap_11_point, r"11-point"),
        (lambda r, p: np.float32(ap_voc(r, p)), r"expected a float, got numpy.float32"),
        (ap_int_zero_when_empty, r"no detections.*expected a float, got int 0"),
    ],
    ids=["no envelope", "left envelope", "trapezoid", "11-point", "float32",
         "int 0"],
)
def test_average_precision_names_the_mistake(wrong, expect):
    rejects(checks.check_average_precision, wrong, expect=expect)


def test_map_accepts_coco_and_voc_matching():
    checks.check_map_at_50(make_map())
    checks.check_map_at_50(make_map(voc_matching=True))


@pytest.mark.parametrize(
    "kw, expect",
    [
        (dict(mark_used=False), r"a duplicate detection.*expected 0\.833.*got 1\b"
         r".*second detection"),
        (dict(ap=ap_no_envelope), r"duplicate.*mAP"),
        (dict(strict=True), r"IoU exactly 0\.5.*expected 1, got 0"),
        (dict(pool_images=True), r"wrong image.*mAP.*SAME image"),
        (dict(empty_class_zero=True), r"predictions but no ground truth.*expected 1,"
         r" got 0\.6666.*without ground truth"),
        (dict(rank_per_image=True), r"ranked across images.*expected 1, got 0\.5"),
        (dict(iou=iou_unclamped), r"mAP"),
    ],
    ids=["duplicates are TPs", "AP without envelope", "IoU > 0.5", "pooled images",
         "empty class counted", "ranked per image", "unclamped IoU"],
)
def test_map_rejects(kw, expect):
    rejects(checks.check_map_at_50, make_map(**kw), expect=expect)


def test_map_rejects_ignored_threshold():
    def fixed(predictions, ground_truths, num_classes, iou_threshold=0.5):
        return make_map()(predictions, ground_truths, num_classes)

    rejects(checks.check_map_at_50, fixed,
            expect=r"iou_threshold=0\.75.*mAP.*use the iou_threshold argument")


def map_sorts_in_place(predictions, ground_truths, num_classes, iou_threshold=0.5):
    for boxes, scores, labels in predictions:
        order = np.argsort(-scores)
        boxes[:], scores[:], labels[:] = boxes[order], scores[order], labels[order]
    return make_map()(predictions, ground_truths, num_classes, iou_threshold)


@pytest.mark.parametrize(
    "wrong, expect",
    [
        # Passed before: in every case with two ground-truth boxes in one image they
        # lay 20 px apart, so the first box above the threshold was also the best.
        (make_map(first_match=True), r"two ground truths \(best match.*expected "
         r"0\.83+, got 1 .*FIRST unmatched.*highest IoU"),
        # The IoU with an epsilon (see pairwise_iou): a match at exactly 0.5 is lost.
        (make_map(iou=iou_epsilon), r"IoU exactly 0\.5 counts.*expected 1, got 0.*"
         r"exactly the threshold.*epsilon"),
        (lambda *a, **k: torch.tensor(make_map()(*a, **k)),
         r"mAP: expected a float, got torch.Tensor"),
        (map_sorts_in_place, r"changed its input `predictions\S*` in place"),
    ],
    ids=["first match", "IoU with epsilon", "tensor", "sorts in place"],
)
def test_map_rejects_new_cases(wrong, expect):
    rejects(checks.check_map_at_50, wrong, expect=expect)


@pytest.mark.parametrize(
    "kw, expect",
    [
        (dict(mark_used=False), r"second detection .* already matched.*at most once"),
        (dict(strict=True), r"exactly the threshold"),
        (dict(pool_images=True), r"another image.*SAME image"),
        (dict(empty_class_zero=True), r"counted as AP 0.*leave it out"),
        (dict(rank_per_image=True), r"image by image"),
    ],
    ids=["duplicates are TPs", "IoU > 0.5", "pooled images", "empty class counted",
         "ranked per image"],
)
def test_map_hints_name_the_mistake_they_see(kw, expect):
    rejects(checks.check_map_at_50, make_map(**kw), expect=expect)


# --- 4. decoding --------------------------------------------------------------------


def test_decode_accepts_torch_maxpool_version():
    checks.check_decode_heatmap(make_decode())


@pytest.mark.parametrize(
    "kw, expect",
    [
        (dict(suppress=False), r"two peaks.*expected 2 detections, got 10.*3x3"),
        (dict(swap_xy=True), r"two peaks.*values differ.*wh\[0\] is the width"),
        (dict(per_class_k=True), r"k smaller.*expected 2 detections, got 3"),
        (dict(half=0.0), r"two peaks.*values differ.*half a cell off.*\(x \+ 0\.5"),
        (dict(interior_only=True), r"border.*expected \d detections"),
    ],
    ids=["no peak suppression", "x/y swapped", "top-k per class", "no +0.5",
         "border peaks dropped"],
)
def test_decode_rejects(kw, expect):
    rejects(checks.check_decode_heatmap, make_decode(**kw), expect=expect)


def test_decode_rejects_unsorted_scores():
    def ascending(*args, **kw):
        boxes, scores, classes = make_decode()(*args, **kw)
        return boxes[::-1], scores[::-1], classes[::-1]

    rejects(checks.check_decode_heatmap, ascending, expect=r"descending order")


def decode_by_lists(heatmap, wh, k=100, stride=1, threshold=0.0):
    """Right for every heatmap with a peak; with none, np.array of an empty list
    has shape (0,) and classes become float64. Passed before: every case had a
    peak."""
    boxes, scores, classes = make_decode()(heatmap, wh, k, stride, threshold)
    rows = [list(b) for b in boxes]
    return (np.array(rows, dtype=np.float32), scores,
            np.array(list(classes), dtype=np.int64 if len(classes) else float))


@pytest.mark.parametrize(
    "wrong, expect",
    [
        (decode_by_lists, r"no peak.*boxes \(n, 4\).*got shapes \(0,\).*also when"
         r" n = 0"),
        (make_decode(at_least=True), r"plateau.*expected 2 detections.*equal to the "
         r"threshold was kept"),
        (lambda *a, **k: list(make_decode()(*a, **k)), r"expected a tuple \(boxes, "
         r"scores, classes\), got list"),
        (lambda *a, **k: tuple(torch.as_tensor(v) for v in make_decode()(*a, **k)),
         r"boxes: expected a numpy.ndarray, got torch.Tensor"),
        (lambda *a, **k: (*make_decode()(*a, **k)[:2],
                          make_decode()(*a, **k)[2].astype(np.int32)),
         r"classes: expected int64, got dtype int32"),
        (lambda *a, **k: (make_decode()(*a, **k)[0].astype(np.float64),
                          *make_decode()(*a, **k)[1:]),
         r"boxes: expected float32, got dtype float64"),
    ],
    ids=["empty outputs", ">= threshold", "list", "tensors", "int32 classes",
         "float64 boxes"],
)
def test_decode_rejects_types_and_empty_results(wrong, expect):
    rejects(checks.check_decode_heatmap, wrong, expect=expect)


# --- 5. targets -----------------------------------------------------------------------


def test_make_targets_accepts_other_code():
    checks.check_make_targets(make_targets_fn())


@pytest.mark.parametrize(
    "kw, expect",
    [
        (dict(combine=np.add), r"overlapping objects.*heat.*values differ.*MAX"),
        (dict(swap_xy=True), r"one square.*mask.*values differ"),
        (dict(divide_wh=False), r"one square.*wh at the centre.*/ stride"),
        (dict(centre=np.round), r"one square.*mask.*floor"),
    ],
    ids=["sum of Gaussians", "x/y swapped", "wh in pixels", "rounded centre"],
)
def test_make_targets_rejects(kw, expect):
    rejects(checks.check_make_targets, make_targets_fn(**kw), expect=expect)


def test_make_targets_rejects_float64_heat():
    def f64(*args):
        heat, wh, mask = make_targets_fn()(*args)
        return heat.astype(np.float64), wh, mask

    rejects(checks.check_make_targets, f64, expect=r"expected dtype float32")


def test_make_targets_rejects_other_types():
    rejects(checks.check_make_targets, lambda *a: list(make_targets_fn()(*a)),
            expect=r"expected a tuple \(heat, wh, mask\), got list")

    def f64_wh(*args):
        heat, wh, mask = make_targets_fn()(*args)
        return heat, wh.astype(np.float64), mask

    rejects(checks.check_make_targets, f64_wh, expect=r"wh: expected dtype float32")


# --- learner code that raises: one message, the case, the input and a hint ----------


@pytest.mark.parametrize(
    "check",
    [
        checks.check_box_area,
        checks.check_pairwise_iou,
        checks.check_nms,
        checks.check_batched_nms,
        checks.check_average_precision,
        checks.check_map_at_50,
        checks.check_decode_heatmap,
        checks.check_make_targets,
    ],
    ids=lambda check: check.__name__,
)
def test_learner_errors_are_one_message(check):
    msg = raises_cleanly(
        check,
        boom,
        expect=r"your boom\(\) raised ZeroDivisionError: a learner's bug\n"
        r"  input: .+\n  in boom\(\), line \d+: raise ZeroDivisionError",
    )
    assert "Traceback" not in msg


# --- 6. anchors: match, encode, decode -------------------------------------------------


def make_matcher(forced="own best", ties="all", strict=False, ignore=True):
    """A matcher written with torch (as torchvision's Matcher is), with switches for
    the mistakes the check names."""
    def match(anchors, gts, pos, neg):
        out = torch.full((len(anchors),), -1, dtype=torch.int64)
        if len(gts) == 0:
            return out.numpy()
        iou = torch.as_tensor(iou_torch(anchors, gts))
        best, best_gt = iou.max(dim=1)
        positive = best > pos if strict else best >= pos
        if ignore:
            out[(best >= neg) & ~positive] = -2
        out[positive] = best_gt[positive]
        if forced is None:
            return out.numpy()
        col_best = iou.max(dim=0).values
        if ties == "all":
            pairs = torch.nonzero((iou == col_best) & (col_best > 0))
        else:
            first = iou.argmax(dim=0)
            keep = col_best > 0
            pairs = torch.stack([first[keep], torch.nonzero(keep)[:, 0]], dim=1)
        for a, g in pairs.tolist():
            if forced == "own best":
                out[a] = best_gt[a]
            elif out[a] < 0 or (a, g) == tuple(pairs[pairs[:, 0] == a][0].tolist()):
                out[a] = g  # the first ground truth that picked it
        return out.numpy()

    return match


def match_loops(anchors, gts, pos, neg):
    """Another correct matcher, by plain loops over anchors and ground truths."""
    ious = [[checks._iou_one(a, g) for g in gts] for a in anchors]
    out = []
    for row in ious:
        best = max(row, default=-1.0)
        out.append(row.index(best) if row and best >= pos
                   else -1 if not row or best < neg else -2)
    for g in range(len(gts)):
        col = [row[g] for row in ious]
        top = max(col, default=0.0)
        for a, v in enumerate(col):
            if top > 0 and v == top:
                out[a] = ious[a].index(max(ious[a]))
    return np.array(out, dtype=np.int32)


def centres(b):
    b = np.asarray(b, dtype=np.float64)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h


def make_box_encode(variant=None):
    def encode(anchors, boxes):
        ax, ay, aw, ah = centres(anchors)
        gx, gy, gw, gh = centres(boxes)
        if variant == "corners":
            ax, ay, gx, gy = anchors[:, 0], anchors[:, 1], boxes[:, 0], boxes[:, 1]
        nx, ny = (gw, gh) if variant == "by box" else (aw, ah)
        tw, th = (gw / aw, gh / ah) if variant == "no log" else (
            np.log(gw / aw), np.log(gh / ah))
        return np.stack([(gx - ax) / nx, (gy - ay) / ny, tw, th], axis=1)

    return encode


def make_box_decode(variant=None):
    def decode(anchors, deltas):
        ax, ay, aw, ah = centres(anchors)
        if variant == "corner":
            ax, ay = anchors[:, 0], anchors[:, 1]
        cx, cy = ax + deltas[:, 0] * aw, ay + deltas[:, 1] * ah
        w = aw * (deltas[:, 2] if variant == "no exp" else np.exp(deltas[:, 2]))
        h = ah * (deltas[:, 3] if variant == "no exp" else np.exp(deltas[:, 3]))
        return torch.as_tensor(np.stack(
            [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)).numpy()

    return decode


def test_match_anchors_accepts_other_code():
    checks.check_match_anchors(make_matcher())
    checks.check_match_anchors(match_loops)


@pytest.mark.parametrize(
    "kw, expect",
    [
        (dict(forced=None), r"small object.*no anchor at all.*best anchor"),
        (dict(strict=True), r"exactly 0.5.*IoU >= pos_threshold"),
        (dict(ignore=False), r"between the thresholds.*ignored \(-2\)"),
        (dict(forced="picker"), r"share a best anchor.*ITS OWN best ground truth"),
        (dict(ties="first"), r"four-way tie.*all\s+of them become positives"),
    ],
    ids=["no forced matches", "> instead of >=", "no ignore band", "to the picker",
         "argmax ties"],
)
def test_match_anchors_rejects(kw, expect):
    rejects(checks.check_match_anchors, make_matcher(**kw), expect=expect)


def test_match_anchors_rejects_floats_and_lists():
    rejects(checks.check_match_anchors,
            lambda *a: make_matcher()(*a).astype(np.float64),
            expect=r"expected integers, got dtype float64")
    rejects(checks.check_match_anchors, lambda *a: list(make_matcher()(*a)),
            expect=r"expected a numpy.ndarray, got a list")


def test_encode_decode_accepts_other_code():
    checks.check_encode_decode(make_box_encode(), make_box_decode())


@pytest.mark.parametrize(
    "encode, decode, expect",
    [
        (make_box_encode("corners"), make_box_decode(), r"encode's deltas.*CENTRES"),
        (make_box_encode("by box"), make_box_decode(), r"encode's deltas.*ANCHOR's width"),
        (make_box_encode("no log"), make_box_decode(), r"encode's deltas.*logarithms"),
        (make_box_encode(), make_box_decode("no exp"), r"decode.*wa \* exp\(tw\)"),
        (make_box_encode(), make_box_decode("corner"), r"decode.*anchor's CENTRE"),
        (make_box_encode(), lambda a, d: a.copy(), r"decode\(anchors, encode"),
    ],
    ids=["corner offsets", "divided by the box", "no log", "no exp",
         "corner centre", "returns the anchors"],
)
def test_encode_decode_rejects(encode, decode, expect):
    rejects(checks.check_encode_decode, encode, decode, expect=expect)


def test_anchor_checks_report_learner_errors_cleanly():
    raises_cleanly(checks.check_match_anchors, boom,
                   expect=r"your boom\(\) raised ZeroDivisionError")
    raises_cleanly(checks.check_encode_decode, boom, make_box_decode(),
                   expect=r"your boom\(\) raised ZeroDivisionError")
    raises_cleanly(checks.check_encode_decode, make_box_encode(), boom,
                   expect=r"your boom\(\) raised ZeroDivisionError")
