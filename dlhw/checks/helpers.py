"""Helpers every check module shares: torch on demand, copies of inputs, sizes, results as numbers.

One definition each, so that "a copy of the inputs" means the same in every check (a deep copy:
a student's function may modify any array it is given, even one inside a dict or a list).
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from dlhw.checks.core import as_wire_array, fail

__all__ = ["torch", "deep_copy", "ri", "sizes", "as_wire_array", "as_float_array", "scalar"]


def torch():
    """The torch module, imported when a judge first needs it (the kit imports without it)."""
    import torch as _torch
    return _torch


def deep_copy(v: Any) -> Any:
    """A deep copy of arrays, dicts, lists and tuples of them (anything else is passed as it is)."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, dict):
        return {k: deep_copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(deep_copy(x) for x in v)
    return v


def ri(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer drawn uniformly from ``low .. high``, both included."""
    return int(rng.integers(low, high + 1))


def sizes(rng: np.random.Generator, low: int, high: int, n: int) -> tuple:
    """``n`` integers drawn uniformly from ``low .. high - 1`` (numpy's half-open range)."""
    return tuple(int(s) for s in rng.integers(low, high, size=n))


def as_float_array(what: str, x) -> np.ndarray:
    """``x`` as a float64 array, or a failure naming ``what`` (None, or not numbers)."""
    if x is None:
        fail(f"{what} is None: the function did not compute it (is a variable left unassigned?)")
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"{what} should be a numpy array of numbers; got {type(x).__name__}")


def scalar(what: str, got, why: Optional[str] = "the mean over the batch") -> np.ndarray:
    """``got`` as a 0-d array, or a failure: a loss is one number (``why`` says which)."""
    if np.ndim(got) != 0 and np.size(got) != 1:
        fail(f"{what} should be a single number{f' ({why})' if why else ''}; got an array of shape "
             f"{np.shape(got)}")
    return np.reshape(got, ())
