"""Gradient checking: centred-difference numerical gradients and a relative-error measure.

Assignment 01 has students write ``numerical_gradient``; every later assignment uses it to
check a hand-written backward pass.

Why centred differences: ``(f(x + h) - f(x - h)) / 2h`` has error O(h^2) against O(h) for the
one-sided quotient, so with h = 1e-5 in float64 the truncation error (~1e-10) and the
round-off error (~eps * |f| / h ~ 1e-11) are both far below the 1e-7 relative error that
separates a right gradient from a wrong one.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from dlhw.validation import as_array, require_shape

__all__ = ["numerical_gradient", "numerical_gradient_array", "rel_error"]


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of a scalar function.

    Parameters
    ----------
    f : callable taking an array of x's shape and returning a float
    x : array of any shape (S...); it is perturbed in place and restored
    h : step size

    Returns
    -------
    grad : array of shape (S...), grad[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError("numerical_gradient: x must be a float64 numpy array (it is perturbed "
                         f"in place); got {type(x).__name__} of dtype {getattr(x, 'dtype', None)}")
    grad = np.zeros_like(x)
    ### BEGIN SOLUTION
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)   # views: writes reach x and grad
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        f_plus = float(f(x))
        flat_x[i] = old - h
        f_minus = float(f(x))
        flat_x[i] = old                                # restore before the next coordinate
        flat_g[i] = (f_plus - f_minus) / (2 * h)
    ### END SOLUTION
    return grad


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray,
                             h: float = 1e-5) -> np.ndarray:
    """Numerical gradient of ``sum(f(x) * dout)`` with respect to x, for array-valued f.

    This is what a layer's backward computes: given the upstream gradient ``dout`` of the
    layer's output, the gradient of the loss with respect to its input x.

    Parameters
    ----------
    f : callable, x of shape (S...) -> array of dout's shape (O...)
    x : float64 array of shape (S...), perturbed in place and restored
    dout : array of shape (O...)

    Returns
    -------
    dx : array of shape (S...)
    """
    dout = as_array("numerical_gradient_array", "dout", dout)
    return numerical_gradient(lambda z: float(np.sum(np.asarray(f(z), dtype=np.float64) * dout)), x, h)


def rel_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-12) -> float:
    """Largest elementwise relative error ``|a - b| / max(|a| + |b|, floor)``.

    Symmetric in a and b, 0 for equal arrays and at most 1; the floor keeps entries where
    both are ~0 from dividing by zero. Arrays of different shapes raise a ValueError.
    """
    a = as_array("rel_error", "a", a)
    b = as_array("rel_error", "b", b)
    require_shape("rel_error", "b", b, a.shape, why="(the shape of a)")
    if a.size == 0:
        return 0.0
    ### BEGIN SOLUTION
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))
    ### END SOLUTION
