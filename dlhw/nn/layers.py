"""Basic layers: the affine (fully connected) layer and elementwise activations.

Assignment 02 has students write these. Each layer is a pair: ``NAME_forward`` returns
``(out, cache)`` and ``NAME_backward(dout, cache)`` turns the upstream gradient ``dout``
(the gradient of the loss with respect to ``out``) into gradients with respect to the
forward inputs, using only what the forward put in the cache.

Activations cache their *output* where the derivative is cheapest to write in terms of it:
sigmoid' = s (1 - s) and tanh' = 1 - t^2, so the backward pass never recomputes an exp.

Derivatives at the kink x = 0 of relu and leaky relu follow PyTorch: the slope for x <= 0.
(One lecture table writes leaky relu as 0.01 for x < 0; it is 0.01 * x.)
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_shape, shape_str

__all__ = ["affine_forward", "affine_backward", "relu_forward", "relu_backward",
           "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward",
           "tanh_forward", "tanh_backward"]


def affine_forward(x, w, b):
    """Affine (fully connected) layer: out = x w + b, with x flattened to one row per example.

    Parameters
    ----------
    x : array of shape (N, d1, ..., dk), k >= 1; each example is flattened to D = d1 * ... * dk
    w : array of shape (D, M)
    b : array of shape (M,)

    Returns
    -------
    out : array of shape (N, M)
    cache : tuple (x, w) for affine_backward
    """
    x = as_array("affine_forward", "x", x)
    w = as_array("affine_forward", "w", w)
    b = as_array("affine_forward", "b", b)
    if x.ndim < 2:
        raise ValueError("affine_forward: x must have shape (N, d1, ..., dk) with k >= 1; "
                         f"got {shape_str(x.shape)}")
    sizes = {"N": x.shape[0], "D": int(np.prod(x.shape[1:]))}
    require_shape("affine_forward", "w", w, ("D", "M"), sizes, why="to match x flattened to (N, D)")
    require_shape("affine_forward", "b", b, ("M",), sizes)
    ### BEGIN SOLUTION
    out = x.reshape(x.shape[0], -1) @ w + b
    cache = (x, w)
    ### END SOLUTION
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of affine_forward.

    Parameters
    ----------
    dout : array of shape (N, M), gradient of the loss with respect to out
    cache : tuple (x, w) from affine_forward, x of shape (N, d1, ..., dk), w of shape (D, M)

    Returns
    -------
    dx : array of shape (N, d1, ..., dk), the shape of x
    dw : array of shape (D, M)
    db : array of shape (M,)
    """
    x, w = cache
    dout = as_array("affine_backward", "dout", dout)
    require_shape("affine_backward", "dout", dout, (x.shape[0], w.shape[1]),
                  why="(the shape of affine_forward's out)")
    ### BEGIN SOLUTION
    dx = (dout @ w.T).reshape(x.shape)          # back to the input's shape, e.g. images
    dw = x.reshape(x.shape[0], -1).T @ dout     # sums the per-example outer products
    db = dout.sum(axis=0)                       # b was broadcast over the batch
    ### END SOLUTION
    return dx, dw, db


def relu_forward(x):
    """Rectified linear unit: out = max(x, 0), elementwise.

    Parameters
    ----------
    x : array of any shape (S...)

    Returns
    -------
    out : array of shape (S...)
    cache : x, for relu_backward
    """
    x = as_array("relu_forward", "x", x)
    ### BEGIN SOLUTION
    out = np.maximum(x, 0.0)
    cache = x
    ### END SOLUTION
    return out, cache


def relu_backward(dout, cache):
    """Backward pass of relu_forward: the gradient flows only where x > 0.

    Parameters
    ----------
    dout : array of shape (S...), gradient of the loss with respect to out
    cache : x of shape (S...), from relu_forward

    Returns
    -------
    dx : array of shape (S...)
    """
    x = cache
    dout = as_array("relu_backward", "dout", dout)
    require_shape("relu_backward", "dout", dout, x.shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    dx = dout * (x > 0)                         # slope 0 at x = 0, as PyTorch
    ### END SOLUTION
    return dx


def leaky_relu_forward(x, negative_slope=0.01):
    """Leaky relu: out = x where x > 0, negative_slope * x elsewhere.

    Parameters
    ----------
    x : array of any shape (S...)
    negative_slope : float, the slope for x <= 0 (PyTorch's default 0.01)

    Returns
    -------
    out : array of shape (S...)
    cache : tuple (x, negative_slope), for leaky_relu_backward
    """
    x = as_array("leaky_relu_forward", "x", x)
    slope = as_array("leaky_relu_forward", "negative_slope", negative_slope)
    if slope.ndim != 0 or not np.isfinite(slope):
        raise ValueError("leaky_relu_forward: negative_slope must be a finite float; "
                         f"got {negative_slope!r}")
    negative_slope = float(slope)
    ### BEGIN SOLUTION
    out = np.where(x > 0, x, negative_slope * x)
    cache = (x, negative_slope)
    ### END SOLUTION
    return out, cache


def leaky_relu_backward(dout, cache):
    """Backward pass of leaky_relu_forward.

    Parameters
    ----------
    dout : array of shape (S...), gradient of the loss with respect to out
    cache : tuple (x, negative_slope) from leaky_relu_forward, x of shape (S...)

    Returns
    -------
    dx : array of shape (S...)
    """
    x, negative_slope = cache
    dout = as_array("leaky_relu_backward", "dout", dout)
    require_shape("leaky_relu_backward", "dout", dout, x.shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    dx = np.where(x > 0, dout, negative_slope * dout)
    ### END SOLUTION
    return dx


def sigmoid_forward(x):
    """Logistic sigmoid: out = 1 / (1 + exp(-x)), elementwise, without overflow.

    exp(-x) overflows for x < -709; exp(-|x|) never does (it lies in (0, 1]), and
    1 / (1 + exp(-x)) = exp(x) / (1 + exp(x)) lets each sign use it.

    Parameters
    ----------
    x : array of any shape (S...)

    Returns
    -------
    out : array of shape (S...), values in [0, 1]
    cache : out, for sigmoid_backward
    """
    x = as_array("sigmoid_forward", "x", x)
    ### BEGIN SOLUTION
    z = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    cache = out
    ### END SOLUTION
    return out, cache


def sigmoid_backward(dout, cache):
    """Backward pass of sigmoid_forward: d sigmoid / dx = out (1 - out).

    Parameters
    ----------
    dout : array of shape (S...), gradient of the loss with respect to out
    cache : out of shape (S...), from sigmoid_forward

    Returns
    -------
    dx : array of shape (S...)
    """
    out = cache
    dout = as_array("sigmoid_backward", "dout", dout)
    require_shape("sigmoid_backward", "dout", dout, out.shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    dx = dout * out * (1.0 - out)
    ### END SOLUTION
    return dx


def tanh_forward(x):
    """Hyperbolic tangent, elementwise (np.tanh saturates to +-1 without overflow).

    Parameters
    ----------
    x : array of any shape (S...)

    Returns
    -------
    out : array of shape (S...), values in [-1, 1]
    cache : out, for tanh_backward
    """
    x = as_array("tanh_forward", "x", x)
    ### BEGIN SOLUTION
    out = np.tanh(x)
    cache = out
    ### END SOLUTION
    return out, cache


def tanh_backward(dout, cache):
    """Backward pass of tanh_forward: d tanh / dx = 1 - out^2 = (1 - out)(1 + out).

    Parameters
    ----------
    dout : array of shape (S...), gradient of the loss with respect to out
    cache : out of shape (S...), from tanh_forward

    Returns
    -------
    dx : array of shape (S...)
    """
    out = cache
    dout = as_array("tanh_backward", "dout", dout)
    require_shape("tanh_backward", "dout", dout, out.shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    # (1 - out)(1 + out) rather than 1 - out**2: near out = +-1, where the derivative is
    # tiny, 1 - out and 1 + out are exact and out**2 would be rounded before the subtraction
    dx = dout * ((1.0 - out) * (1.0 + out))
    ### END SOLUTION
    return dx
