"""Assignment 09: earlier numpy layers ported to PyTorch, forward only.

Each function takes and returns torch tensors and is written with differentiable torch
operations, so that ``torch.autograd`` derives the backward pass that assignments 02-08 wrote
by hand. They run on whatever device and dtype their inputs have (CPU or GPU, float64 or
float32): nothing here creates a tensor without asking its inputs for ``dtype`` and ``device``.

The conventions are those of the numpy layers (``../shared/api.md``), which sometimes differ
from PyTorch's own modules: batch normalization's ``momentum`` is the weight of the OLD running
average (PyTorch's is the weight of the new batch) and its running variance is the biased one
(PyTorch keeps the unbiased one); the LSTM's gates are ordered i, f, o, g (PyTorch: i, f, g, o).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlhw.validation import require_keys, require_one_of, require_shape, require_tensor, shape_str

__all__ = ["softmax_loss_torch", "batchnorm_torch", "conv2d_torch", "lstm_step_torch", "attention_torch"]


def softmax_loss_torch(scores, y):
    """Mean softmax cross-entropy of class scores, stable for scores of any size.

    Parameters
    ----------
    scores : float tensor of shape (N, C), unnormalized class scores (logits)
    y : integer tensor of shape (N,), class indices in [0, C)

    Returns
    -------
    loss : 0-d tensor, ``mean_n -log softmax(scores[n])[y[n]]``, differentiable in scores
    """
    fn = "softmax_loss_torch"
    require_tensor(fn, "scores", scores)
    sizes = require_shape(fn, "scores", scores, ("N", "C"))
    require_tensor(fn, "y", y, floating=False)
    require_shape(fn, "y", y, ("N",), sizes, why="(one class index per row of scores)")
    if sizes["N"] == 0 or sizes["C"] == 0:
        raise ValueError(f"{fn}: scores must have at least one row and one class, shape (N >= 1, C >= 1); "
                         f"got {shape_str(scores.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= sizes["C"]:
        raise ValueError(f"{fn}: y must hold class indices in [0, C) = [0, {sizes['C']}); "
                         f"got values from {int(y.min())} to {int(y.max())}")
    ### BEGIN SOLUTION
    # Subtracting each row's maximum changes no softmax and keeps exp() from overflowing; the
    # shift is a constant for autograd (detach), as its gradient would cancel anyway.
    shifted = scores - scores.max(dim=1, keepdim=True).values.detach()
    log_probs = shifted - torch.logsumexp(shifted, dim=1, keepdim=True)
    loss = -log_probs[torch.arange(sizes["N"], device=scores.device), y].mean()
    ### END SOLUTION
    return loss


def batchnorm_torch(x, gamma, beta, bn_param):
    """Batch normalization of each of the D features over the N examples, in torch.

    The same contract as the numpy ``batchnorm_forward``: train mode normalizes with the
    minibatch mean and BIASED variance and updates the running averages in place,
    ``running = momentum * running + (1 - momentum) * batch``; test mode normalizes with the
    running averages and changes nothing.

    Parameters
    ----------
    x : float tensor of shape (N, D)
    gamma, beta : float tensors of shape (D,), scale and shift
    bn_param : dict with ``mode`` ('train' or 'test') and optionally ``eps`` (1e-5),
        ``momentum`` (0.9), ``running_mean`` and ``running_var``: tensors of shape (D,),
        created as zeros and ones on x's device when absent, updated in place in train mode
        (outside the autograd graph)

    Returns
    -------
    out : tensor of shape (N, D), ``gamma * (x - mean) / sqrt(var + eps) + beta``
    """
    fn = "batchnorm_torch"
    require_tensor(fn, "x", x)
    sizes = require_shape(fn, "x", x, ("N", "D"))
    require_shape(fn, "gamma", require_tensor(fn, "gamma", gamma), ("D",), sizes, why="(one scale per feature)")
    require_shape(fn, "beta", require_tensor(fn, "beta", beta), ("D",), sizes, why="(one shift per feature)")
    require_keys(fn, "bn_param", bn_param, ["mode"])
    mode = bn_param["mode"]
    require_one_of(fn, "bn_param['mode']", mode, ("train", "test"))
    eps = float(bn_param.get("eps", 1e-5))
    momentum = float(bn_param.get("momentum", 0.9))
    running_mean = bn_param.setdefault("running_mean", torch.zeros(sizes["D"], dtype=x.dtype, device=x.device))
    running_var = bn_param.setdefault("running_var", torch.ones(sizes["D"], dtype=x.dtype, device=x.device))
    for key, stat in (("running_mean", running_mean), ("running_var", running_var)):
        require_shape(fn, f"bn_param['{key}']", require_tensor(fn, f"bn_param['{key}']", stat), ("D",), sizes)
    if mode == "train" and sizes["N"] < 2:
        raise ValueError(f"{fn}: train mode needs a batch of at least 2 examples to have a variance, "
                         f"x of shape (N >= 2, D); got {shape_str(x.shape)}")
    ### BEGIN SOLUTION
    if mode == "train":
        mean = x.mean(dim=0)
        var = x.var(dim=0, correction=0)          # biased: torch's default would divide by N - 1
        with torch.no_grad():                     # the averages are state, not part of the graph
            running_mean.mul_(momentum).add_((1 - momentum) * mean)
            running_var.mul_(momentum).add_((1 - momentum) * var)
    else:
        mean, var = running_mean, running_var
    out = gamma * (x - mean) / torch.sqrt(var + eps) + beta
    ### END SOLUTION
    return out


def conv2d_torch(x, w, b, conv_param):
    """Convolution (cross-correlation, as ``torch.nn.functional.conv2d``) by im2col in torch.

    Write it with ``torch.nn.functional.unfold`` (im2col: every receptive field as a column)
    and one matrix product, not with ``conv2d`` itself.

    Parameters
    ----------
    x : float tensor of shape (N, C, H, W)
    w : float tensor of shape (F, C, HH, WW)
    b : float tensor of shape (F,)
    conv_param : dict with ``stride`` and ``pad`` (zero padding on every side)

    Returns
    -------
    out : tensor of shape (N, F, H_out, W_out), H_out = 1 + (H + 2 pad - HH) // stride and
        W_out likewise
    """
    fn = "conv2d_torch"
    require_tensor(fn, "x", x)
    sizes = require_shape(fn, "x", x, ("N", "C", "H", "W"))
    require_shape(fn, "w", require_tensor(fn, "w", w), ("F", "C", "HH", "WW"), sizes,
                  why="(as many input channels as x)")
    require_shape(fn, "b", require_tensor(fn, "b", b), ("F",), sizes, why="(one bias per filter)")
    require_keys(fn, "conv_param", conv_param, ["stride", "pad"])
    stride, pad = int(conv_param["stride"]), int(conv_param["pad"])
    if stride < 1 or pad < 0:
        raise ValueError(f"{fn}: conv_param needs stride >= 1 and pad >= 0; got stride {stride}, pad {pad}")
    N, C, H, W = x.shape
    Fn, _, HH, WW = w.shape
    if H + 2 * pad < HH or W + 2 * pad < WW:
        raise ValueError(f"{fn}: the kernel (HH, WW) = {(HH, WW)} does not fit in the padded image "
                         f"(H + 2 pad, W + 2 pad) = {(H + 2 * pad, W + 2 * pad)}")
    ### BEGIN SOLUTION
    H_out = (H + 2 * pad - HH) // stride + 1
    W_out = (W + 2 * pad - WW) // stride + 1
    cols = F.unfold(x, (HH, WW), padding=pad, stride=stride)     # (N, C*HH*WW, H_out*W_out)
    out = w.reshape(Fn, -1) @ cols + b.reshape(1, Fn, 1)         # (N, F, H_out*W_out)
    out = out.reshape(N, Fn, H_out, W_out)                       # unfold's columns run row by row
    ### END SOLUTION
    return out


def lstm_step_torch(x, prev_h, prev_c, Wx, Wh, b):
    """One LSTM step in torch, gates in the order i, f, o, g (as the numpy lstm_step_forward).

    Parameters
    ----------
    x : float tensor of shape (N, D)
    prev_h, prev_c : float tensors of shape (N, H), the previous hidden and cell state
    Wx : float tensor of shape (D, 4H); Wh : (H, 4H); b : (4H,)

    Returns
    -------
    next_h, next_c : tensors of shape (N, H)
    """
    fn = "lstm_step_torch"
    sizes = require_shape(fn, "x", require_tensor(fn, "x", x), ("N", "D"))
    require_shape(fn, "prev_h", require_tensor(fn, "prev_h", prev_h), ("N", "H"), sizes)
    require_shape(fn, "prev_c", require_tensor(fn, "prev_c", prev_c), ("N", "H"), sizes)
    H = sizes["H"]
    require_shape(fn, "Wx", require_tensor(fn, "Wx", Wx), ("D", 4 * H), sizes, why="(D, 4H): the gates i, f, o, g")
    require_shape(fn, "Wh", require_tensor(fn, "Wh", Wh), ("H", 4 * H), sizes, why="(H, 4H): the gates i, f, o, g")
    require_shape(fn, "b", require_tensor(fn, "b", b), (4 * H,), sizes, why="(4H,): the gates i, f, o, g")
    ### BEGIN SOLUTION
    gates = x @ Wx + prev_h @ Wh + b                             # (N, 4H)
    a_i, a_f, a_o, a_g = gates.chunk(4, dim=1)
    i, f, o, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o), torch.tanh(a_g)
    next_c = f * prev_c + i * g                                  # the cell: keep some, write some
    next_h = o * torch.tanh(next_c)
    ### END SOLUTION
    return next_h, next_c


def attention_torch(q, k, v, mask=None):
    """Scaled dot-product attention ``softmax(q k^T / sqrt(D)) v`` in torch, with a mask.

    Parameters
    ----------
    q : float tensor of shape (..., Tq, D); k : (..., Tk, D); v : (..., Tk, Dv), the same
        leading axes (batch, heads) for all three
    mask : None or boolean tensor broadcastable to (..., Tq, Tk), True where the query may
        attend to the key (as ``scaled_dot_product_attention``'s boolean ``attn_mask``); every
        query keeps at least one key

    Returns
    -------
    out : tensor of shape (..., Tq, Dv)
    """
    fn = "attention_torch"
    sizes = require_shape(fn, "q", require_tensor(fn, "q", q), (..., "Tq", "D"))
    require_shape(fn, "k", require_tensor(fn, "k", k), (..., "Tk", "D"), sizes)
    require_shape(fn, "v", require_tensor(fn, "v", v), (..., "Tk", "Dv"), sizes)
    for name, t in (("k", k), ("v", v)):
        if t.shape[:-2] != q.shape[:-2]:
            raise ValueError(f"{fn}: {name} must have q's leading axes {shape_str(q.shape[:-2])}; "
                             f"got {shape_str(t.shape)}")
    if sizes["Tk"] == 0 or sizes["D"] == 0:
        raise ValueError(f"{fn}: k must hold at least one key of at least one feature, shape "
                         f"(..., Tk >= 1, D >= 1); got {shape_str(k.shape)}")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise ValueError(f"{fn}: mask must be a boolean tensor (True = may attend); got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)}")
        full = tuple(q.shape[:-1]) + (sizes["Tk"],)
        try:
            ok = tuple(torch.broadcast_shapes(mask.shape, full)) == full
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"{fn}: mask must be broadcastable to (..., Tq, Tk) = {shape_str(full)}; "
                             f"got {shape_str(mask.shape)}")
        if not bool(mask.any(dim=-1).all()):
            raise ValueError(f"{fn}: mask leaves a query with no key to attend to (a row all False)")
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(sizes["D"])    # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))       # exp(-inf) = 0: no weight
    out = torch.softmax(scores, dim=-1) @ v
    ### END SOLUTION
    return out
