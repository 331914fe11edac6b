"""Loss layers: softmax cross-entropy for classification, mean squared error for regression.

A loss takes the network's output ``x`` and the targets ``y`` and returns ``(loss, dx)``:
the scalar loss and its gradient with respect to x, which starts the backward pass. Both
average, so that the size of a gradient step does not depend on the batch size.

Softmax is computed from logits shifted by their row maximum: softmax(x) = softmax(x - c)
for any constant c per row, and after the shift the largest exponent is exp(0) = 1, so
nothing overflows however large the logits. The log-probabilities come straight from the
shifted logits (log-sum-exp), never as log(softmax), which would give log(0) = -inf for a
class whose probability underflows.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_shape, shape_str

__all__ = ["softmax_loss", "mse_loss"]


def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the batch, and its gradient.

    loss = -(1/N) sum_i log softmax(x_i)[y_i], the same as PyTorch's
    ``torch.nn.functional.cross_entropy(x, y)``; its gradient is (softmax(x) - onehot(y)) / N.

    Parameters
    ----------
    x : array of shape (N, C), logits (unnormalized scores) of N examples over C classes
    y : integer array of shape (N,), class indices with 0 <= y[i] < C

    Returns
    -------
    loss : float
    dx : array of shape (N, C), gradient of loss with respect to x
    """
    x = as_array("softmax_loss", "x", x)
    y = as_array("softmax_loss", "y", y, dtype=None)
    sizes = require_shape("softmax_loss", "x", x, ("N", "C"))
    require_shape("softmax_loss", "y", y, ("N",), sizes, why="(one class index per row of x)")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"softmax_loss: x must have shape (N, C) with N, C >= 1; got {shape_str(x.shape)}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"softmax_loss: y must hold integer class indices; got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= x.shape[1]:
        raise ValueError(f"softmax_loss: y must hold class indices in [0, C) = [0, {x.shape[1]}); "
                         f"got values from {y.min()} to {y.max()}")
    ### BEGIN SOLUTION
    N = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)        # largest logit per row is now 0
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = -log_probs[rows, y].mean()
    dx = np.exp(log_probs)                            # softmax probabilities
    dx[rows, y] -= 1.0
    dx /= N
    ### END SOLUTION
    return float(loss), dx


def mse_loss(x, y):
    """Mean squared error over all elements, and its gradient.

    loss = mean over every element of (x - y)^2, i.e. sum((x - y)^2) / x.size. This is
    exactly PyTorch's ``torch.nn.functional.mse_loss(x, y)`` (reduction='mean'). Note the
    other common convention, (1/N) sum_i 0.5 ||x_i - y_i||^2, differs from it by a factor
    D / 2 for x of shape (N, D); for one output per example, x of shape (N,), this loss is
    the mean over the batch of (x_i - y_i)^2.

    Parameters
    ----------
    x : array of any non-empty shape (N, ...), predictions
    y : array of the shape of x, targets

    Returns
    -------
    loss : float
    dx : array of the shape of x, gradient 2 (x - y) / x.size
    """
    x = as_array("mse_loss", "x", x)
    y = as_array("mse_loss", "y", y)
    require_shape("mse_loss", "y", y, x.shape, why="(the shape of x)")
    if x.size == 0:
        raise ValueError(f"mse_loss: x must not be empty; got shape {shape_str(x.shape)}")
    ### BEGIN SOLUTION
    diff = x - y
    loss = np.mean(diff ** 2)
    dx = (2.0 / x.size) * diff
    ### END SOLUTION
    return float(loss), dx
