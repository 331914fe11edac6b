"""Convolution layer, the fast way: im2col and one matrix product.

``dlhw.nn.conv`` computes one output position at a time. Here every (C, HH, WW) patch the
filters visit is first copied into a column of a matrix ("im2col"), so that the whole layer is a
single matrix product with the (F, C * HH * WW) weight matrix, run by BLAS (compiled, cache-aware,
multi-threaded) instead of a Python loop. The price is memory: each input pixel is copied up to
HH * WW times.

Layout. The patches of image n form the matrix ``cols[n]`` of shape (C * HH * WW, H' * W'), so
that the weight matrix times ``cols[n]`` is image n's output already in (F, H' * W') order: the
output comes out as a contiguous (N, F, H', W') array with no transpose, and the upstream
gradient is used as it comes. numpy's ``matmul`` broadcasts the weight matrix over the batch.

The bias trick. ``cols`` gets one more row, all ones, and the weight matrix one more column,
the biases: the product then adds b for free, where ``out += b`` would be one more pass over
the largest array of the layer, and in the backward pass the same trick hands back db as the
last column of dw.

The backward pass reuses the cached columns: ``dw`` is ``dout @ cols^T`` summed over the batch,
and ``dx`` multiplies ``dout`` by the transposed weight matrix to get the gradient of every
column, then scatters the columns back onto the image ("col2im"). Overlapping windows must add
up; instead of ``np.add.at`` (slow, element by element) the scatter loops over the HH * WW
kernel offsets, each one adding a whole strided slice at once. The backward pass does this a
block of images at a time so that the column gradients never leave the CPU cache (about 10%
faster than one pass over the whole batch on the benchmark's layer).

Same contract as ``conv_forward`` / ``conv_backward`` (cross-correlation, zero padding on every
side, output size floored like PyTorch), pure numpy.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_keys, require_shape

__all__ = ["conv_forward_fast", "conv_backward_fast"]


def conv_forward_fast(x, w, b, conv_param):
    """Forward pass of a convolutional layer with im2col and one batched matrix product.

    Parameters
    ----------
    x : array of shape (N, C, H, W), a batch of N images with C channels
    w : array of shape (F, C, HH, WW), F filters of height HH and width WW
    b : array of shape (F,), one bias per filter
    conv_param : dict with
        'stride' : int >= 1, the step between neighbouring windows, in both directions
        'pad' : int >= 0, the number of zero rows/columns added on every side of x

    Returns
    -------
    out : array of shape (N, F, H', W') with H' = 1 + (H + 2 pad - HH) // stride and
        W' = 1 + (W + 2 pad - WW) // stride (floored like PyTorch), the same values as
        ``conv_forward``
    cache : tuple for ``conv_backward_fast``: the im2col matrix of shape
        (N, C * HH * WW + 1, H' * W') (its last row all ones), w, x's shape and conv_param
    """
    fn = "conv_forward_fast"
    x = as_array(fn, "x", x)
    w = as_array(fn, "w", w)
    b = as_array(fn, "b", b)
    sizes = require_shape(fn, "x", x, ("N", "C", "H", "W"))
    require_shape(fn, "w", w, ("F", "C", "HH", "WW"), sizes, why="(C: the channels of x)")
    require_shape(fn, "b", b, ("F",), sizes, why="(one bias per filter of w)")
    require_keys(fn, "conv_param", conv_param, ["stride", "pad"])
    stride, pad = conv_param["stride"], conv_param["pad"]
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"{fn}: conv_param['stride'] must be an int >= 1; got {stride!r}")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"{fn}: conv_param['pad'] must be an int >= 0; got {pad!r}")
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    if HH > H + 2 * pad or WW > W + 2 * pad:
        raise ValueError(f"{fn}: w must have a kernel (HH, WW) no larger than the padded input "
                         f"(H + 2 pad, W + 2 pad) = ({H + 2 * pad}, {W + 2 * pad}); "
                         f"got w of shape {w.shape}")
    ### BEGIN SOLUTION
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    K = C * HH * WW                                                # the length of one patch
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    # windows[n, c, i, j, di, dj] = x_pad[n, c, i * stride + di, j * stride + dj]: a view, no copy
    windows = np.lib.stride_tricks.sliding_window_view(x_pad, (HH, WW), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]                    # (N, C, H', W', HH, WW)
    # im2col, the one copy: cols[n, :K, l] is the patch under output position l of image n.
    # The bias trick: an extra row of ones, so that the bias rides along in the matrix product
    # (and db in dw's) instead of costing a pass over the whole output.
    cols = np.empty((N, K + 1, H_out * W_out))
    cols[:, K] = 1.0
    # splitting axes never needs a copy, so this reshape is a view and the copy lands in cols
    cols[:, :K].reshape(N, C, HH, WW, H_out, W_out)[...] = windows.transpose(0, 1, 4, 5, 2, 3)
    w_and_b = np.concatenate([w.reshape(F, K), b.reshape(F, 1)], axis=1)   # (F, K + 1)
    out = (w_and_b @ cols).reshape(N, F, H_out, W_out)            # matmul broadcasts over n
    cache = (cols, w, x.shape, conv_param)
    ### END SOLUTION
    return out, cache


def conv_backward_fast(dout, cache):
    """Backward pass of ``conv_forward_fast``: matrix products and col2im.

    Parameters
    ----------
    dout : array of shape (N, F, H', W'), the upstream gradient of ``conv_forward_fast``'s out
    cache : the cache returned by ``conv_forward_fast``

    Returns
    -------
    dx : array of shape (N, C, H, W), gradient with respect to x
    dw : array of shape (F, C, HH, WW), gradient with respect to w
    db : array of shape (F,), gradient with respect to b
    """
    fn = "conv_backward_fast"
    dout = as_array(fn, "dout", dout)
    require_shape(fn, "dout", dout, ("N", "F", "H'", "W'"))
    ### BEGIN SOLUTION
    cols, w, (N, C, H, W), conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    require_shape(fn, "dout", dout, (N, F, H_out, W_out), why="(the shape of the forward's out)")
    K = C * HH * WW
    dout_rows = dout.reshape(N, F, H_out * W_out)                  # a view of a contiguous dout
    # d(w_and_b)[f, k] = sum over n and positions l of dout[n, f, l] * cols[n, k, l]; the
    # row of ones in cols makes the last column the sum of dout, which is db
    dw_and_db = (dout_rows @ cols.transpose(0, 2, 1)).sum(axis=0)  # (F, K + 1)
    dw = dw_and_db[:, :K].reshape(F, C, HH, WW)
    db = dw_and_db[:, K]
    # the gradient of every column, then col2im: each kernel offset (di, dj) sends its row of
    # the columns back to the pixels x_pad[:, :, i * stride + di, j * stride + dj]. A few
    # images at a time (about 1 MB of column gradients, 2**17 floats): the block's dcols is
    # still in the CPU cache when col2im reads it back, instead of a round trip to memory.
    w_T = w.reshape(F, K).T                                        # (K, F)
    block = max(1, 2**17 // (K * H_out * W_out))
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for n0 in range(0, N, block):
        dcols = (w_T @ dout_rows[n0:n0 + block]).reshape(-1, C, HH, WW, H_out, W_out)
        dx_block = dx_pad[n0:n0 + block]                           # a view: writes reach dx_pad
        for di in range(HH):
            for dj in range(WW):
                hs = slice(di, di + stride * H_out, stride)   # the pixels this offset touched
                ws = slice(dj, dj + stride * W_out, stride)
                dx_block[:, :, hs, ws] += dcols[:, :, di, dj]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    ### END SOLUTION
    return dx, dw, db
