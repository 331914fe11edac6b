"""Weight initializers (assignment 05): Xavier (Glorot) and Kaiming (He), uniform and normal.

Why the scale matters: a unit computes s = sum_i w_i x_i over n inputs, and with independent
zero-mean weights and inputs Var(s) = n Var(w) Var(x). Keeping Var(s) = Var(x) from layer to
layer needs Var(w) = 1/n; too small and the activations shrink towards 0 layer after layer,
too large and they blow up (or saturate tanh).

* Xavier/Glorot balances the forward pass (n = fan_in) against the backward pass
  (n = fan_out) with Var(w) = 2 / (fan_in + fan_out). The notes' derivation uses only the
  fan-in, Var(w) = 1/n; the two agree when fan_in == fan_out. Made for tanh-like units.
* Kaiming/He: a ReLU zeroes half of its inputs, halving the variance, so Var(w) = 2 / fan_in
  (the gain sqrt(2) of PyTorch's ``calculate_gain('relu')``).

A uniform distribution on [-bound, bound] has variance bound^2 / 3, so bound = sqrt(3) * std.
These are the formulas of ``torch.nn.init.xavier_*_`` (gain 1) and
``torch.nn.init.kaiming_*_(mode='fan_in', nonlinearity='relu')``. (A bare ``kaiming_uniform_``
call defaults to a = sqrt(5), a smaller bound, which is what ``nn.Linear`` uses.)

Fully connected weights have shape (fan_in, fan_out) = (D, M), the orientation of
``affine_forward``'s w (PyTorch's ``nn.Linear`` stores the transpose). Convolution weights
have shape (F, C, HH, WW) with fan_in = C * HH * WW and fan_out = F * HH * WW, as in PyTorch.
Every function draws from the numpy Generator ``rng`` it is given, so results are
reproducible.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import require_generator, require_int_tuple, require_numbers

__all__ = ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
           "xavier_uniform_conv", "xavier_normal_conv", "kaiming_uniform_conv",
           "kaiming_normal_conv"]


def xavier_uniform(fan_in, fan_out, rng):
    """Xavier/Glorot uniform: U(-bound, bound) with bound = sqrt(6 / (fan_in + fan_out)).

    Parameters
    ----------
    fan_in : int >= 1, D, the number of inputs of the layer
    fan_out : int >= 1, M, the number of outputs
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (D, M), variance 2 / (D + M)
    """
    require_generator("xavier_uniform", "rng", rng)
    require_numbers("xavier_uniform", {"fan_in": fan_in, "fan_out": fan_out}, low=1, integer=True)
    ### BEGIN SOLUTION
    bound = np.sqrt(6.0 / (fan_in + fan_out))    # sqrt(3) * std, std = sqrt(2 / (D + M))
    w = rng.uniform(-bound, bound, size=(fan_in, fan_out))
    ### END SOLUTION
    return w


def xavier_normal(fan_in, fan_out, rng):
    """Xavier/Glorot normal: N(0, std^2) with std = sqrt(2 / (fan_in + fan_out)).

    Parameters
    ----------
    fan_in : int >= 1, D, the number of inputs of the layer
    fan_out : int >= 1, M, the number of outputs
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (D, M)
    """
    require_generator("xavier_normal", "rng", rng)
    require_numbers("xavier_normal", {"fan_in": fan_in, "fan_out": fan_out}, low=1, integer=True)
    ### BEGIN SOLUTION
    std = np.sqrt(2.0 / (fan_in + fan_out))
    w = rng.normal(0.0, std, size=(fan_in, fan_out))
    ### END SOLUTION
    return w


def kaiming_uniform(fan_in, fan_out, rng):
    """Kaiming/He uniform for ReLU layers: U(-bound, bound) with bound = sqrt(6 / fan_in).

    Parameters
    ----------
    fan_in : int >= 1, D, the number of inputs of the layer
    fan_out : int >= 1, M, the number of outputs (sets the shape only)
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (D, M), variance 2 / D
    """
    require_generator("kaiming_uniform", "rng", rng)
    require_numbers("kaiming_uniform", {"fan_in": fan_in, "fan_out": fan_out}, low=1, integer=True)
    ### BEGIN SOLUTION
    bound = np.sqrt(6.0 / fan_in)                # sqrt(3) * std, std = sqrt(2 / D)
    w = rng.uniform(-bound, bound, size=(fan_in, fan_out))
    ### END SOLUTION
    return w


def kaiming_normal(fan_in, fan_out, rng):
    """Kaiming/He normal for ReLU layers: N(0, std^2) with std = sqrt(2 / fan_in).

    Parameters
    ----------
    fan_in : int >= 1, D, the number of inputs of the layer
    fan_out : int >= 1, M, the number of outputs (sets the shape only)
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (D, M)
    """
    require_generator("kaiming_normal", "rng", rng)
    require_numbers("kaiming_normal", {"fan_in": fan_in, "fan_out": fan_out}, low=1, integer=True)
    ### BEGIN SOLUTION
    std = np.sqrt(2.0) / np.sqrt(fan_in)         # gain sqrt(2) over the 1/sqrt(D) of Var = 1/D
    w = rng.normal(0.0, std, size=(fan_in, fan_out))
    ### END SOLUTION
    return w


def xavier_uniform_conv(shape, rng):
    """Xavier/Glorot uniform for a convolution weight: bound = sqrt(6 / (fan_in + fan_out)).

    Parameters
    ----------
    shape : tuple (F, C, HH, WW) of ints >= 1; fan_in = C*HH*WW, fan_out = F*HH*WW
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (F, C, HH, WW)
    """
    require_generator("xavier_uniform_conv", "rng", rng)
    require_int_tuple("xavier_uniform_conv", "shape", shape, ("F", "C", "HH", "WW"))
    ### BEGIN SOLUTION
    F, C, HH, WW = shape
    fan_in, fan_out = C * HH * WW, F * HH * WW   # each output sees C*HH*WW inputs
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    w = rng.uniform(-bound, bound, size=(F, C, HH, WW))
    ### END SOLUTION
    return w


def xavier_normal_conv(shape, rng):
    """Xavier/Glorot normal for a convolution weight: std = sqrt(2 / (fan_in + fan_out)).

    Parameters
    ----------
    shape : tuple (F, C, HH, WW) of ints >= 1; fan_in = C*HH*WW, fan_out = F*HH*WW
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (F, C, HH, WW)
    """
    require_generator("xavier_normal_conv", "rng", rng)
    require_int_tuple("xavier_normal_conv", "shape", shape, ("F", "C", "HH", "WW"))
    ### BEGIN SOLUTION
    F, C, HH, WW = shape
    std = np.sqrt(2.0 / (C * HH * WW + F * HH * WW))
    w = rng.normal(0.0, std, size=(F, C, HH, WW))
    ### END SOLUTION
    return w


def kaiming_uniform_conv(shape, rng):
    """Kaiming/He uniform for a convolution weight feeding a ReLU: bound = sqrt(6 / fan_in).

    Parameters
    ----------
    shape : tuple (F, C, HH, WW) of ints >= 1; fan_in = C*HH*WW
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (F, C, HH, WW)
    """
    require_generator("kaiming_uniform_conv", "rng", rng)
    require_int_tuple("kaiming_uniform_conv", "shape", shape, ("F", "C", "HH", "WW"))
    ### BEGIN SOLUTION
    F, C, HH, WW = shape
    bound = np.sqrt(6.0 / (C * HH * WW))
    w = rng.uniform(-bound, bound, size=(F, C, HH, WW))
    ### END SOLUTION
    return w


def kaiming_normal_conv(shape, rng):
    """Kaiming/He normal for a convolution weight feeding a ReLU: std = sqrt(2 / fan_in).

    Parameters
    ----------
    shape : tuple (F, C, HH, WW) of ints >= 1; fan_in = C*HH*WW
    rng : numpy.random.Generator

    Returns
    -------
    w : array of shape (F, C, HH, WW)
    """
    require_generator("kaiming_normal_conv", "rng", rng)
    require_int_tuple("kaiming_normal_conv", "shape", shape, ("F", "C", "HH", "WW"))
    ### BEGIN SOLUTION
    F, C, HH, WW = shape
    std = np.sqrt(2.0 / (C * HH * WW))
    w = rng.normal(0.0, std, size=(F, C, HH, WW))
    ### END SOLUTION
    return w
