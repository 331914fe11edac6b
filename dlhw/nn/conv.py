"""Convolution layer, the naive way: one output position at a time.

A convolutional layer slides F filters of shape (C, HH, WW) over the zero-padded input and
takes, at every position, the dot product of a filter with the patch under it, plus the
filter's bias. Like ``torch.nn.functional.conv2d`` (and like every deep-learning library) this
is a *cross-correlation*: the kernel is not flipped. A true convolution would flip it; since the
weights are learned, the flip only changes which weights are learned, not what can be learned.

Output size. With zero padding P on every side and stride S, an input of height H and a kernel
of height HH give ``H' = 1 + (H + 2P - HH) // S`` rows (the same for widths). When the stride
does not divide ``H + 2P - HH`` the last rows and columns of the padded input that no window
reaches are ignored: the size is *floored*, as in the lecture notes' formula and in PyTorch,
and those input pixels get a zero gradient.

The loops here run over the H' * W' output positions only; the batch, the filters and the
patch are handled by one ``np.tensordot`` per position. ``dlhw.nn.conv_fast`` does the same
work with one matrix product for all positions (im2col).
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_keys, require_shape

__all__ = ["conv_forward", "conv_backward"]


def conv_forward(x, w, b, conv_param):
    """Forward pass of a convolutional layer (cross-correlation, no kernel flip).

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
        W' = 1 + (W + 2 pad - WW) // stride (floored like PyTorch: windows that would run past
        the padded input are dropped), out[n, f, i, j] = sum of w[f] * the (C, HH, WW) patch of
        the padded x[n] whose top-left corner is (i * stride, j * stride), plus b[f]
    cache : tuple (x, w, b, conv_param) for ``conv_backward``
    """
    fn = "conv_forward"
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
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))   # zeros on H and W only
    out = np.empty((N, F, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            top, left = i * stride, j * stride
            patch = x_pad[:, :, top:top + HH, left:left + WW]          # (N, C, HH, WW)
            # contract the patch axes (C, HH, WW) of every image with those of every filter
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    cache = (x, w, b, conv_param)
    ### END SOLUTION
    return out, cache


def conv_backward(dout, cache):
    """Backward pass of a convolutional layer.

    Parameters
    ----------
    dout : array of shape (N, F, H', W'), the upstream gradient of ``conv_forward``'s out
    cache : the cache returned by ``conv_forward``

    Returns
    -------
    dx : array of shape (N, C, H, W), gradient with respect to x
    dw : array of shape (F, C, HH, WW), gradient with respect to w
    db : array of shape (F,), gradient with respect to b
    """
    fn = "conv_backward"
    dout = as_array(fn, "dout", dout)
    require_shape(fn, "dout", dout, ("N", "F", "H'", "W'"))
    ### BEGIN SOLUTION
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    require_shape(fn, "dout", dout, (N, F, H_out, W_out), why="(the shape of the forward's out)")
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))                    # b[f] was added at every (n, i, j)
    for i in range(H_out):
        for j in range(W_out):
            top, left = i * stride, j * stride
            patch = x_pad[:, :, top:top + HH, left:left + WW]          # (N, C, HH, WW)
            g = dout[:, :, i, j]                                       # (N, F)
            dw += np.tensordot(g, patch, axes=(0, 0))                  # sum over the batch
            # every input pixel under the window collects the gradient of this output;
            # overlapping windows add up, hence +=
            dx_pad[:, :, top:top + HH, left:left + WW] += np.tensordot(g, w, axes=(1, 0))
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]      # the padding zeros are not inputs
    ### END SOLUTION
    return dx, dw, db
