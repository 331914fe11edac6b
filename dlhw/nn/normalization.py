"""Batch normalization, layer normalization and spatial batch normalization.

Both normalizations standardize, x_hat = (x - mean) / sqrt(var + eps), then let the network
rescale and shift, out = gamma * x_hat + beta. They differ in what they average over:

* batch norm: each feature over the batch (axis 0). Training uses the minibatch statistics
  and keeps exponential running averages of them; test mode uses the running averages, so
  that one example's output does not depend on the others in its batch.
* layer norm: each example over its features (the last axis); train and test are the same.

The variance is the biased one (divide by N) both for normalizing and for the running
variance. PyTorch normalizes with the biased variance too, but keeps the UNBIASED variance
(divide by N - 1) in its running_var: comparisons with it must rescale by N / (N - 1).
PyTorch's momentum is the weight of the NEW batch: its 0.1 is our momentum 0.9.

The backward passes use the compact form of the gradient. With g = dout * gamma (the
gradient with respect to x_hat), averaging over the normalized axis,

    dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps),

the two subtracted terms being what flows back through the mean and through the variance.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_keys, require_one_of, require_shape, shape_str

__all__ = ["batchnorm_forward", "batchnorm_backward", "layernorm_forward", "layernorm_backward",
           "spatial_batchnorm_forward", "spatial_batchnorm_backward"]


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalization forward pass, each of the D features over the N examples.

    Parameters
    ----------
    x : array of shape (N, D)
    gamma : array of shape (D,), scale
    beta : array of shape (D,), shift
    bn_param : dict with keys
        'mode' : 'train' (minibatch statistics; running averages updated) or 'test'
            (running averages used)
        'eps' : optional float, added to the variance (default 1e-5)
        'momentum' : optional float, weight of the old running value (default 0.9)
        'running_mean' : optional array of shape (D,), created as zeros when absent
        'running_var' : optional array of shape (D,), created as ones when absent
        In train mode the dict is updated in place:
        running = momentum * running + (1 - momentum) * batch statistic, with the biased
        (divide by N) batch variance. With N = 1 the batch variance is 0 and out = beta.

    Returns
    -------
    out : array of shape (N, D)
    cache : tuple (mode, centered, gamma, inv_std) for batchnorm_backward; centered of shape
        (N, D) is x minus the mean used, inv_std of shape (D,) is 1 / sqrt(var + eps) of the
        variance used, so that the normalized input is x_hat = centered * inv_std
    """
    x = as_array("batchnorm_forward", "x", x)
    gamma = as_array("batchnorm_forward", "gamma", gamma)
    beta = as_array("batchnorm_forward", "beta", beta)
    sizes = require_shape("batchnorm_forward", "x", x, ("N", "D"))
    require_shape("batchnorm_forward", "gamma", gamma, ("D",), sizes)
    require_shape("batchnorm_forward", "beta", beta, ("D",), sizes)
    require_keys("batchnorm_forward", "bn_param", bn_param, ["mode"])
    mode = bn_param["mode"]
    require_one_of("batchnorm_forward", "bn_param['mode']", mode, ["train", "test"])
    if x.shape[0] == 0:
        raise ValueError(f"batchnorm_forward: x must have shape (N, D) with N >= 1; got {shape_str(x.shape)}")
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    running_mean = as_array("batchnorm_forward", "bn_param['running_mean']",
                            bn_param.get("running_mean", np.zeros(x.shape[1])))
    running_var = as_array("batchnorm_forward", "bn_param['running_var']",
                           bn_param.get("running_var", np.ones(x.shape[1])))
    require_shape("batchnorm_forward", "bn_param['running_mean']", running_mean, ("D",), sizes)
    require_shape("batchnorm_forward", "bn_param['running_var']", running_var, ("D",), sizes)
    ### BEGIN SOLUTION
    # numpy applies a (D,) vector to an (N, D) array one row at a time, a loop call per row,
    # and at D ~ 1000 the calls take about a third of the time: viewed as N / r rows of r
    # examples, with the vector tiled r times, the same operations (bit for bit) take r times
    # fewer calls.
    N, D = x.shape
    r = 8 if N % 8 == 0 and D <= 1024 else 1
    if mode == "train":
        mean = x.mean(axis=0)
        centered = (x.reshape(N // r, r * D) - np.tile(mean, r)).reshape(N, D)
        # biased variance, mean of (x - mean)^2, without an (N, D) temporary for the squares
        var = np.einsum("ij,ij->j", centered, centered) / x.shape[0]
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        centered = x - running_mean
        var = running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    # gamma * x_hat + beta with x_hat = centered * inv_std folded into one per-feature factor:
    # x_hat itself is never stored, which saves a pass over (N, D) here and in the backward
    out = centered.reshape(N // r, r * D) * np.tile(gamma * inv_std, r)
    out += np.tile(beta, r)
    out = out.reshape(N, D)
    cache = (mode, centered, gamma, inv_std)
    ### END SOLUTION
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """Batch normalization backward pass, in the compact form.

    In train mode the mean and variance depend on every example, so
    dx = gamma * inv_std / N * (N dout - sum_n dout - x_hat * sum_n (dout x_hat)), sums over
    the batch axis. In test mode the running statistics are constants and
    dx = gamma * inv_std * dout.

    Parameters
    ----------
    dout : array of shape (N, D), gradient of the loss with respect to out
    cache : tuple (mode, centered, gamma, inv_std) from batchnorm_forward

    Returns
    -------
    dx : array of shape (N, D)
    dgamma : array of shape (D,)
    dbeta : array of shape (D,)
    """
    mode, centered, gamma, inv_std = cache
    dout = as_array("batchnorm_backward", "dout", dout)
    require_shape("batchnorm_backward", "dout", dout, centered.shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    # sum over the batch of dout * x_hat, x_hat = centered * inv_std
    dgamma = np.einsum("ij,ij->j", dout, centered) * inv_std
    scale = gamma * inv_std
    if mode == "train":
        # dx = scale * (dout - (dbeta + x_hat * dgamma) / N): for g = dout * gamma the sums
        # over the batch of g and of g * x_hat are gamma * dbeta and gamma * dgamma, so the
        # mean and variance terms reuse dbeta and dgamma. Built in one (N, D) buffer,
        # in place, because at this size every extra temporary costs as much as the arithmetic,
        # on rows of r examples with the per-feature vectors tiled r times (one numpy loop call
        # per row: see batchnorm_forward)
        D = dout.shape[1]
        r = 8 if N % 8 == 0 and D <= 1024 else 1
        dx = centered.reshape(N // r, r * D) * np.tile(inv_std * dgamma / N, r)
        dx += np.tile(dbeta / N, r)
        np.subtract(dout.reshape(N // r, r * D), dx, out=dx)
        dx *= np.tile(scale, r)
        dx = dx.reshape(N, D)
    else:
        dx = scale * dout                            # running statistics are constants
    ### END SOLUTION
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalization forward pass, each example over its D features.

    The statistics are taken over the last axis only, so leading axes (the batch, and time
    steps in a transformer) are all examples; train and test behave the same.

    Parameters
    ----------
    x : array of shape (N, D), or (..., D) with any leading axes
    gamma : array of shape (D,), scale
    beta : array of shape (D,), shift
    ln_param : dict with optional key 'eps' (default 1e-5), added to the variance

    Returns
    -------
    out : array of the shape of x
    cache : tuple (x_hat, gamma, inv_std) for layernorm_backward; x_hat of x's shape,
        inv_std of shape (..., 1) is 1 / sqrt(var + eps) per example
    """
    x = as_array("layernorm_forward", "x", x)
    gamma = as_array("layernorm_forward", "gamma", gamma)
    beta = as_array("layernorm_forward", "beta", beta)
    sizes = require_shape("layernorm_forward", "x", x, (..., "D"))
    require_shape("layernorm_forward", "gamma", gamma, ("D",), sizes)
    require_shape("layernorm_forward", "beta", beta, ("D",), sizes)
    if not isinstance(ln_param, dict):
        raise ValueError("layernorm_forward: ln_param must be a dict (optional key 'eps'); "
                         f"got {type(ln_param).__name__}")
    if x.shape[-1] == 0:
        raise ValueError(f"layernorm_forward: x must have shape (..., D) with D >= 1; got {shape_str(x.shape)}")
    eps = ln_param.get("eps", 1e-5)
    ### BEGIN SOLUTION
    x_hat = x - x.mean(axis=-1, keepdims=True)
    var = np.mean(x_hat ** 2, axis=-1, keepdims=True)        # biased, as PyTorch's layer_norm
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat *= inv_std
    out = x_hat * gamma + beta
    cache = (x_hat, gamma, inv_std)
    ### END SOLUTION
    return out, cache


def layernorm_backward(dout, cache):
    """Layer normalization backward pass, in the compact form (means over the last axis).

    Parameters
    ----------
    dout : array of the shape of x, (N, D) or (..., D), gradient of the loss with respect to out
    cache : tuple (x_hat, gamma, inv_std) from layernorm_forward

    Returns
    -------
    dx : array of the shape of x
    dgamma : array of shape (D,), summed over every leading axis
    dbeta : array of shape (D,)
    """
    x_hat, gamma, inv_std = cache
    dout = as_array("layernorm_backward", "dout", dout)
    require_shape("layernorm_backward", "dout", dout, x_hat.shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    D = x_hat.shape[-1]
    dbeta = dout.reshape(-1, D).sum(axis=0)
    dgamma = (dout * x_hat).reshape(-1, D).sum(axis=0)
    g = dout * gamma                                          # gradient with respect to x_hat
    dx = inv_std * (g - g.mean(axis=-1, keepdims=True)
                    - x_hat * np.mean(g * x_hat, axis=-1, keepdims=True))
    ### END SOLUTION
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Spatial batch normalization: each of the C channels over the batch and all positions.

    A convolutional feature map shares its filter over positions, so each channel gets one
    mean and variance over the N * H * W values it takes. Moving the channel axis last makes
    it ordinary batch normalization of an (N*H*W, C) matrix.

    Parameters
    ----------
    x : array of shape (N, C, H, W)
    gamma : array of shape (C,), scale
    beta : array of shape (C,), shift
    bn_param : dict as for batchnorm_forward ('mode', optional 'eps', 'momentum',
        'running_mean' and 'running_var' of shape (C,)), updated in place in train mode

    Returns
    -------
    out : array of shape (N, C, H, W)
    cache : tuple (x_shape, bn_cache) for spatial_batchnorm_backward
    """
    x = as_array("spatial_batchnorm_forward", "x", x)
    gamma = as_array("spatial_batchnorm_forward", "gamma", gamma)
    beta = as_array("spatial_batchnorm_forward", "beta", beta)
    sizes = require_shape("spatial_batchnorm_forward", "x", x, ("N", "C", "H", "W"))
    require_shape("spatial_batchnorm_forward", "gamma", gamma, ("C",), sizes)
    require_shape("spatial_batchnorm_forward", "beta", beta, ("C",), sizes)
    ### BEGIN SOLUTION
    N, C, H, W = x.shape
    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)           # (N*H*W, C): one row per position
    out, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)
    out = out.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    cache = (x.shape, bn_cache)
    ### END SOLUTION
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """Spatial batch normalization backward pass.

    Parameters
    ----------
    dout : array of shape (N, C, H, W), gradient of the loss with respect to out
    cache : tuple (x_shape, bn_cache) from spatial_batchnorm_forward

    Returns
    -------
    dx : array of shape (N, C, H, W)
    dgamma : array of shape (C,)
    dbeta : array of shape (C,)
    """
    x_shape, bn_cache = cache
    dout = as_array("spatial_batchnorm_backward", "dout", dout)
    require_shape("spatial_batchnorm_backward", "dout", dout, x_shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    N, C, H, W = x_shape
    rows = dout.transpose(0, 2, 3, 1).reshape(-1, C)
    dx, dgamma, dbeta = batchnorm_backward(rows, bn_cache)
    dx = dx.reshape(N, H, W, C).transpose(0, 3, 1, 2)
    ### END SOLUTION
    return dx, dgamma, dbeta
