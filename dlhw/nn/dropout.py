"""Inverted dropout.

In training, dropout keeps each unit with probability p and zeroes it otherwise, so every
minibatch trains a different thinned network that shares its weights with all the others.
At test time every unit is on. To make a unit's expected value the same in both modes, the
kept units are divided by p during training ("inverted" dropout): E[mask * x / p] = x. Then
the test-time forward is the identity, and no weight scaling is needed at inference.

Here p is the probability of KEEPING a unit, as in the lecture notes. PyTorch's
``torch.nn.functional.dropout(x, p)`` takes the probability of DROPPING one: our p = 1 - its p.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, require_keys, require_one_of, require_shape

__all__ = ["dropout_forward", "dropout_backward"]


def dropout_forward(x, dropout_param):
    """Inverted dropout forward pass.

    Parameters
    ----------
    x : array of any shape (S...)
    dropout_param : dict with keys
        'mode' : 'train' (drop units) or 'test' (identity)
        'p' : float in (0, 1], the probability of keeping each unit
        'seed' : optional int; when given (and not None) the mask is drawn from
                 ``np.random.default_rng(seed)``, so the same seed gives the same mask;
                 otherwise from numpy's global generator (``np.random.seed`` controls it)

    Returns
    -------
    out : array of shape (S...)
    cache : tuple (mode, mask) for dropout_backward; mask of shape (S...) holds 1/p for kept
        units and 0 for dropped ones in train mode, None in test mode
    """
    x = as_array("dropout_forward", "x", x)
    require_keys("dropout_forward", "dropout_param", dropout_param, ["mode", "p"])
    mode, p = dropout_param["mode"], dropout_param["p"]
    require_one_of("dropout_forward", "dropout_param['mode']", mode, ["train", "test"])
    if not np.isscalar(p) or isinstance(p, (str, bool)) or not 0 < p <= 1:
        raise ValueError("dropout_forward: dropout_param['p'] (the probability of keeping a unit) "
                         f"must be a number in (0, 1]; got {p!r}")
    seed = dropout_param.get("seed")
    ### BEGIN SOLUTION
    if mode == "train":
        rng = np.random if seed is None else np.random.default_rng(seed)
        mask = (rng.random(x.shape) < p) / p      # kept units scaled by 1/p, dropped ones 0
        out = x * mask
    else:
        mask = None
        out = x.copy()                            # identity; a copy, so out never aliases x
    cache = (mode, mask)
    ### END SOLUTION
    return out, cache


def dropout_backward(dout, cache):
    """Inverted dropout backward pass: the gradient passes through the same mask.

    Parameters
    ----------
    dout : array of shape (S...), gradient of the loss with respect to out
    cache : tuple (mode, mask) from dropout_forward

    Returns
    -------
    dx : array of shape (S...)
    """
    mode, mask = cache
    dout = as_array("dropout_backward", "dout", dout)
    if mask is not None:
        require_shape("dropout_backward", "dout", dout, mask.shape, why="(the shape of x)")
    ### BEGIN SOLUTION
    if mode == "train":
        dx = dout * mask
    else:
        dx = dout.copy()
    ### END SOLUTION
    return dx
