"""Linear models (assignment 01): least squares, logistic and softmax regression, minibatch
SGD and a nearest-neighbour baseline.

Bias: none of these functions adds one. A bias is the weight of a constant feature, so to
fit one append a column of ones to X, ``np.hstack([X, np.ones((N, 1))])``; its weight is
then the last entry of w (the last row of W). The L2 penalty shrinks that weight too, as the
notes' J(theta) = E(theta) + l2 * ||theta||^2 / 2 does.

Losses are means over the N examples, and ``l2`` adds (l2 / 2) * ||w||^2 to the loss and
l2 * w to its gradient.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_shape

__all__ = ["least_squares_fit", "logistic_loss", "softmax_regression_loss", "minibatch_sgd",
           "nearest_neighbour_predict"]


def least_squares_fit(X, y, l2=0.0):
    """Least squares (ridge for l2 > 0) through the normal equations.

    Minimizes (1/2) ||X w - y||^2 + (l2/2) ||w||^2, whose gradient X^T (X w - y) + l2 w
    vanishes where

        (X^T X + l2 I) w = X^T y.

    The system is solved with ``np.linalg.solve``, never by forming an inverse (slower and
    less accurate). With l2 = 0 it needs X of full column rank; l2 > 0 always gives a unique
    solution.

    Parameters
    ----------
    X : array of shape (N, D), one example per row (with a ones column for a bias)
    y : array of shape (N,), or (N, K) for K targets fitted at once
    l2 : float >= 0, the ridge penalty

    Returns
    -------
    w : array of shape (D,), or (D, K)
    """
    X = as_array("least_squares_fit", "X", X)
    y = as_array("least_squares_fit", "y", y)
    sizes = require_shape("least_squares_fit", "X", X, ("N", "D"))
    if y.ndim == 2:
        require_shape("least_squares_fit", "y", y, ("N", "K"), sizes)
    else:
        require_shape("least_squares_fit", "y", y, ("N",), sizes, why="or (N, K)")
    if not l2 >= 0:
        raise ValueError(f"least_squares_fit: l2 must be >= 0; got {l2!r}")
    ### BEGIN SOLUTION
    A = X.T @ X + l2 * np.eye(X.shape[1])
    w = np.linalg.solve(A, X.T @ y)
    ### END SOLUTION
    return w


def logistic_loss(w, X, t, l2=0.0):
    """Binary cross-entropy of logistic regression and its gradient.

    With h = sigmoid(X w), the probability of class 1,

        loss = -(1/N) sum_n [t_n log h_n + (1 - t_n) log(1 - h_n)] + (l2/2) ||w||^2
        grad = (1/N) X^T (h - t) + l2 w

    The loss is computed as log(1 + exp(z)) - t z with z = X w (the same number, using
    log h = -log(1 + exp(-z))), through ``np.logaddexp``, so that it stays finite for logits
    of any size where log(sigmoid(z)) would give log(0).

    Parameters
    ----------
    w : array of shape (D,)
    X : array of shape (N, D)
    t : array of shape (N,), targets in [0, 1] (the labels 0 and 1)
    l2 : float >= 0

    Returns
    -------
    loss : float
    grad : array of shape (D,), d loss / d w
    """
    w = as_array("logistic_loss", "w", w)
    X = as_array("logistic_loss", "X", X)
    t = as_array("logistic_loss", "t", t)
    sizes = require_shape("logistic_loss", "X", X, ("N", "D"))
    require_shape("logistic_loss", "w", w, ("D",), sizes, why="to match X of shape (N, D)")
    require_shape("logistic_loss", "t", t, ("N",), sizes, why="to match X of shape (N, D)")
    if t.size and not (t.min() >= 0 and t.max() <= 1):
        raise ValueError("logistic_loss: t must hold targets in [0, 1]; "
                         f"got values in [{t.min()}, {t.max()}]")
    ### BEGIN SOLUTION
    N = X.shape[0]
    z = X @ w
    loss = np.mean(np.logaddexp(0.0, z) - t * z) + 0.5 * l2 * (w @ w)
    h = np.exp(-np.logaddexp(0.0, -z))          # sigmoid(z) = 1 / (1 + exp(-z)), no overflow
    grad = X.T @ (h - t) / N + l2 * w
    ### END SOLUTION
    return float(loss), grad


def softmax_regression_loss(W, X, y, l2=0.0):
    """Cross-entropy of softmax regression and its gradient.

    With scores S = X W and P = softmax(S) row by row,

        loss = -(1/N) sum_n log P[n, y_n] + (l2/2) ||W||^2
        dW = (1/N) X^T (P - Y) + l2 W,      Y the one-hot rows of y

    Subtracting each row's maximum score before exponentiating changes no probability and
    keeps exp from overflowing, so logits of any size are fine.

    Parameters
    ----------
    W : array of shape (D, C), one column of weights per class
    X : array of shape (N, D)
    y : integer array of shape (N,), class indices in [0, C)
    l2 : float >= 0

    Returns
    -------
    loss : float
    dW : array of shape (D, C)
    """
    W = as_array("softmax_regression_loss", "W", W)
    X = as_array("softmax_regression_loss", "X", X)
    y = as_array("softmax_regression_loss", "y", y, dtype=None)
    sizes = require_shape("softmax_regression_loss", "X", X, ("N", "D"))
    require_shape("softmax_regression_loss", "W", W, ("D", "C"), sizes,
                  why="to match X of shape (N, D)")
    require_shape("softmax_regression_loss", "y", y, ("N",), sizes,
                  why="to match X of shape (N, D)")
    C = W.shape[1]
    if not np.issubdtype(y.dtype, np.integer) or (y.size and (y.min() < 0 or y.max() >= C)):
        raise ValueError(f"softmax_regression_loss: y must hold integer class indices in [0, C) = "
                         f"[0, {C}); got dtype {y.dtype}"
                         + (f", values in [{y.min()}, {y.max()}]" if y.size else ""))
    ### BEGIN SOLUTION
    N = X.shape[0]
    scores = X @ W
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = -log_probs[rows, y].mean() + 0.5 * l2 * np.sum(W * W)
    dscores = np.exp(log_probs)                  # P
    dscores[rows, y] -= 1.0                      # P - Y
    dW = X.T @ dscores / N + l2 * W
    ### END SOLUTION
    return float(loss), dW


def minibatch_sgd(loss_fn, w0, X, y, learning_rate, batch_size, epochs, rng):
    """Minibatch stochastic gradient descent: w <- w - learning_rate * grad on each batch.

    Every epoch visits the examples in a new random order (``rng.permutation(N)``), cut into
    consecutive batches of ``batch_size`` (the last one smaller when batch_size does not
    divide N). Each step uses the loss and gradient of one batch only: a noisy but cheap
    estimate of the full gradient.

    Parameters
    ----------
    loss_fn : callable (w, X_batch, y_batch) -> (loss, grad), e.g. logistic_loss, or
              ``lambda w, X, y: softmax_regression_loss(w, X, y, l2=1e-3)`` to fix l2
    w0 : array of shape (P...), the initial parameters (not modified)
    X : array of shape (N, D)
    y : array of shape (N,), targets or class indices (its dtype is kept)
    learning_rate : float > 0
    batch_size : int >= 1
    epochs : int >= 0
    rng : numpy.random.Generator, draws the order of each epoch

    Returns
    -------
    w : array of shape (P...), the parameters after the last step
    history : array of shape (epochs * ceil(N / batch_size),), the loss of each step's batch
              (computed before that step's update)
    """
    if not callable(loss_fn):
        raise ValueError(f"minibatch_sgd: loss_fn must be callable; got {type(loss_fn).__name__}")
    w0 = as_array("minibatch_sgd", "w0", w0)
    X = as_array("minibatch_sgd", "X", X)
    y = as_array("minibatch_sgd", "y", y, dtype=None)
    sizes = require_shape("minibatch_sgd", "X", X, ("N", "D"))
    require_shape("minibatch_sgd", "y", y, ("N",), sizes, why="to match X of shape (N, D)")
    for name, value, low in (("batch_size", batch_size, 1), ("epochs", epochs, 0)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"minibatch_sgd: {name} must be an integer >= {low}; got {value!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError("minibatch_sgd: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    ### BEGIN SOLUTION
    N = X.shape[0]
    w = w0.copy()
    history = []
    for _ in range(epochs):
        order = rng.permutation(N)
        for start in range(0, N, batch_size):
            batch = order[start:start + batch_size]
            loss, grad = loss_fn(w, X[batch], y[batch])
            w = w - learning_rate * grad
            history.append(loss)
    history = np.array(history, dtype=np.float64)
    ### END SOLUTION
    return w, history


def nearest_neighbour_predict(X_train, y_train, X_test, k=1):
    """k-nearest-neighbour classification in Euclidean distance.

    Each test example takes the most common label among its k nearest training examples.
    Ties: between equally distant training examples the lower index wins (a stable sort);
    between labels with equal votes the smallest label wins (as scikit-learn's
    KNeighborsClassifier).

    Squared distances come from ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2, one matrix
    product instead of an (M, N, D) array of differences.

    Parameters
    ----------
    X_train : array of shape (N, D)
    y_train : array of shape (N,), labels of any sortable dtype (usually integers)
    X_test : array of shape (M, D)
    k : int in [1, N]

    Returns
    -------
    y_pred : array of shape (M,), y_train's dtype
    """
    X_train = as_array("nearest_neighbour_predict", "X_train", X_train)
    X_test = as_array("nearest_neighbour_predict", "X_test", X_test)
    y_train = as_array("nearest_neighbour_predict", "y_train", y_train, dtype=None)
    sizes = require_shape("nearest_neighbour_predict", "X_train", X_train, ("N", "D"))
    require_shape("nearest_neighbour_predict", "y_train", y_train, ("N",), sizes,
                  why="to match X_train of shape (N, D)")
    require_shape("nearest_neighbour_predict", "X_test", X_test, ("M", "D"), sizes,
                  why="to match X_train of shape (N, D)")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= X_train.shape[0]:
        raise ValueError(f"nearest_neighbour_predict: k must be an integer in [1, N] = "
                         f"[1, {X_train.shape[0]}]; got {k!r}")
    ### BEGIN SOLUTION
    d2 = ((X_test ** 2).sum(axis=1)[:, None] - 2.0 * X_test @ X_train.T
          + (X_train ** 2).sum(axis=1)[None, :])                     # (M, N)
    nearest = np.argsort(d2, axis=1, kind="stable")[:, :k]           # (M, k) training indices
    classes, label_index = np.unique(y_train, return_inverse=True)   # classes sorted
    votes = np.zeros((X_test.shape[0], classes.size), dtype=np.int64)
    np.add.at(votes, (np.arange(X_test.shape[0])[:, None], label_index[nearest]), 1)
    y_pred = classes[votes.argmax(axis=1)]                           # argmax: first = smallest
    ### END SOLUTION
    return y_pred
