"""Data the course can use offline: scikit-learn's digits, and generators."""

from __future__ import annotations

__all__ = ["load_digits_split"]


def load_digits_split(test_size: float = 0.2, seed: int = 0):
    """scikit-learn's 1,797 8×8 digit images, split with a fixed seed, stratified.

    Returns ``X_train, X_test, y_train, y_test``: images as float32 in [0, 1] with shape
    (n, 8, 8) and labels as int64.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
