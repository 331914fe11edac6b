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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"xavier_uniform: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in (fan_in, fan_out)):
        raise ValueError("xavier_uniform: fan_in and fan_out must be integers >= 1; "
                         f"got fan_in={fan_in!r}, fan_out={fan_out!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"xavier_normal: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in (fan_in, fan_out)):
        raise ValueError("xavier_normal: fan_in and fan_out must be integers >= 1; "
                         f"got fan_in={fan_in!r}, fan_out={fan_out!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"kaiming_uniform: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in (fan_in, fan_out)):
        raise ValueError("kaiming_uniform: fan_in and fan_out must be integers >= 1; "
                         f"got fan_in={fan_in!r}, fan_out={fan_out!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"kaiming_normal: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in (fan_in, fan_out)):
        raise ValueError("kaiming_normal: fan_in and fan_out must be integers >= 1; "
                         f"got fan_in={fan_in!r}, fan_out={fan_out!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"xavier_uniform_conv: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not (isinstance(shape, (tuple, list)) and len(shape) == 4
            and all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape)):
        raise ValueError("xavier_uniform_conv: shape must be (F, C, HH, WW), four integers >= 1; "
                         f"got {shape!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"xavier_normal_conv: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not (isinstance(shape, (tuple, list)) and len(shape) == 4
            and all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape)):
        raise ValueError("xavier_normal_conv: shape must be (F, C, HH, WW), four integers >= 1; "
                         f"got {shape!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"kaiming_uniform_conv: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not (isinstance(shape, (tuple, list)) and len(shape) == 4
            and all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape)):
        raise ValueError("kaiming_uniform_conv: shape must be (F, C, HH, WW), four integers >= 1; "
                         f"got {shape!r}")
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
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"kaiming_normal_conv: rng must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    if not (isinstance(shape, (tuple, list)) and len(shape) == 4
            and all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape)):
        raise ValueError("kaiming_normal_conv: shape must be (F, C, HH, WW), four integers >= 1; "
                         f"got {shape!r}")
    ### BEGIN SOLUTION
    F, C, HH, WW = shape
    std = np.sqrt(2.0 / (C * HH * WW))
    w = rng.normal(0.0, std, size=(F, C, HH, WW))
    ### END SOLUTION
    return w
