"""Max pooling: the largest value of each window, channel by channel.

A pooling layer has no weights. It shrinks every channel of the input by keeping, for each
pool_height x pool_width window (windows ``stride`` apart), only the largest value. As with the
convolution, the output size is floored like PyTorch's ``max_pool2d`` (no padding, no
``ceil_mode``): H' = 1 + (H - pool_height) // stride, and rows or columns that no window reaches
get a zero gradient.

The gradient of a maximum flows only to the input that was the maximum. When a window holds
several equal maxima, the whole gradient goes to the *first* of them in row-major order within
the window (the one ``np.argmax`` would pick), which is what PyTorch does too; any split among
the tied inputs would be a valid subgradient, but only this choice matches PyTorch bit for bit.
When windows overlap (stride < pool size) one input can be the maximum of several windows and
collects the sum of their gradients.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_keys, require_shape

__all__ = ["max_pool_forward", "max_pool_backward"]


def max_pool_forward(x, pool_param):
    """Forward pass of a max-pooling layer.

    Parameters
    ----------
    x : array of shape (N, C, H, W)
    pool_param : dict with
        'pool_height' : int >= 1, at most H, the height PH of each window
        'pool_width' : int >= 1, at most W, the width PW of each window
        'stride' : int >= 1, the step between neighbouring windows, in both directions

    Returns
    -------
    out : array of shape (N, C, H', W') with H' = 1 + (H - PH) // stride and
        W' = 1 + (W - PW) // stride (floored like PyTorch), out[n, c, i, j] = the maximum of
        x[n, c, i * stride : i * stride + PH, j * stride : j * stride + PW]
    cache : tuple for ``max_pool_backward``: x's shape, pool_param, the window pixels of shape
        (PH * PW, N, C, H', W')
    """
    fn = "max_pool_forward"
    x = as_array(fn, "x", x)
    require_shape(fn, "x", x, ("N", "C", "H", "W"))
    require_keys(fn, "pool_param", pool_param, ["pool_height", "pool_width", "stride"])
    for key in ("pool_height", "pool_width", "stride"):
        v = pool_param[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{fn}: pool_param[{key!r}] must be an int >= 1; got {v!r}")
    N, C, H, W = x.shape
    PH, PW, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    if PH > H or PW > W:
        raise ValueError(f"{fn}: the pool window (pool_height, pool_width) = ({PH}, {PW}) must "
                         f"fit in x of shape (N, C, H, W) = {x.shape}")
    ### BEGIN SOLUTION
    # windows[n, c, i, j, p, q] = x[n, c, i * stride + p, j * stride + q]: a view, no copy
    windows = np.lib.stride_tricks.sliding_window_view(x, (PH, PW), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]                    # (N, C, H', W', PH, PW)
    H_out, W_out = windows.shape[2], windows.shape[3]
    # one copy with the window offsets in front: candidates[k] holds, for every window, its
    # pixel at offset (p, q) = divmod(k, PW), so the max is an elementwise max over k
    candidates = windows.transpose(4, 5, 0, 1, 2, 3).reshape(PH * PW, N, C, H_out, W_out)
    out = candidates.max(axis=0)
    cache = (x.shape, pool_param, candidates)
    ### END SOLUTION
    return out, cache


def max_pool_backward(dout, cache):
    """Backward pass of a max-pooling layer.

    Parameters
    ----------
    dout : array of shape (N, C, H', W'), the upstream gradient of ``max_pool_forward``'s out
    cache : the cache returned by ``max_pool_forward``

    Returns
    -------
    dx : array of shape (N, C, H, W), dout[n, c, i, j] added to the first maximum of window
        (i, j) of x[n, c], zero elsewhere
    """
    fn = "max_pool_backward"
    dout = as_array(fn, "dout", dout)
    require_shape(fn, "dout", dout, ("N", "C", "H'", "W'"))
    ### BEGIN SOLUTION
    x_shape, pool_param, candidates = cache
    PH, PW, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    require_shape(fn, "dout", dout, candidates.shape[1:], why="(the shape of the forward's out)")
    H_out, W_out = dout.shape[2], dout.shape[3]
    out = candidates.max(axis=0)           # recomputed: the caller may have changed its copy
    dx = np.zeros(x_shape)
    unclaimed = np.ones(out.shape, dtype=bool)       # windows whose gradient is not routed yet
    # one strided slice per window offset, in row-major order: each window sends its gradient
    # to the first offset that holds its maximum (later ties find the window claimed);
    # overlapping windows add up
    for k in range(PH * PW):
        p, q = divmod(k, PW)
        first_max = unclaimed & (candidates[k] == out)
        unclaimed &= ~first_max
        dx[:, :, p:p + stride * H_out:stride, q:q + stride * W_out:stride] += first_max * dout
    ### END SOLUTION
    return dx
