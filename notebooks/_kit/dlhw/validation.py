"""Argument checking that names the argument and the expected shape.

Every public function of dlhw validates its inputs with these helpers, so that a wrong
shape ends in a ``ValueError`` such as::

    affine_forward: w must have shape (D, M) = (12, M) to match x flattened to (N, D) = (4, 12);
    got (10, 5)

instead of a numpy broadcasting traceback from deep inside the computation.

Shapes are written as tuples whose entries are ints (a fixed size), ``None`` (any size) or
strings (a named size: the first use binds it, later uses must agree), e.g.
``require_shape("affine_forward", "w", w, ("D", "M"), sizes)``.
"""
from __future__ import annotations

from typing import Any, MutableMapping

import numpy as np

__all__ = ["as_array", "require_shape", "require_keys", "require_one_of", "require_tensor", "shape_str"]


def shape_str(shape) -> str:
    """``(2, 3)`` -> ``'(2, 3)'`` (and ``(2,)`` -> ``'(2,)'``), names kept as written."""
    parts = ["?" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def as_array(func: str, name: str, x: Any, dtype=np.float64, allow_none: bool = False):
    """``x`` as a numpy array of ``dtype``; a ValueError naming ``func`` and ``name`` otherwise."""
    if x is None:
        if allow_none:
            return None
        raise ValueError(f"{func}: {name} is None; expected a numpy array")
    try:
        arr = np.asarray(x, dtype=dtype) if dtype is not None else np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{func}: {name} must be convertible to a {np.dtype(dtype).name} array "
                         f"({exc})") from None
    return arr


def require_shape(func: str, name: str, x: np.ndarray, expected, sizes: MutableMapping | None = None,
                  why: str = "") -> dict:
    """Check ``x.shape`` against ``expected``; bind named sizes in ``sizes``.

    ``expected`` may start with ``...`` (Ellipsis) to allow any leading axes.
    Returns ``sizes`` (created if None) so that calls can be chained.
    """
    sizes = {} if sizes is None else sizes
    shape = tuple(np.shape(x))
    exp = tuple(expected)
    lead = exp[:1] == (Ellipsis,)
    core = exp[1:] if lead else exp
    ok = len(shape) >= len(core) if lead else len(shape) == len(core)
    if ok:
        tail = shape[len(shape) - len(core):] if core else ()
        for want, got in zip(core, tail):
            if want is None:
                continue
            if isinstance(want, str):
                bound = sizes.get(want)
                if bound is None:
                    sizes[want] = got
                elif bound != got:
                    ok = False
                    break
            elif want != got:
                ok = False
                break
    if not ok:
        def show(e):
            if isinstance(e, str) and e in sizes:
                return f"{e}={sizes[e]}"
            return "?" if e is None else str(e)
        parts = (["..."] if lead else []) + [show(e) for e in core]
        want_str = "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        msg = f"{func}: {name} must have shape {want_str}"
        if why:
            msg += f" {why}"
        raise ValueError(f"{msg}; got {shape_str(shape)}")
    return sizes


def require_keys(func: str, name: str, mapping: Any, keys) -> None:
    """A ValueError naming every key of ``keys`` missing from the dict ``mapping``."""
    if not isinstance(mapping, dict):
        raise ValueError(f"{func}: {name} must be a dict with keys {sorted(keys)}; "
                         f"got {type(mapping).__name__}")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{func}: {name} is missing the key(s) {missing}; it has {sorted(mapping)}")


def require_one_of(func: str, name: str, value: Any, allowed) -> None:
    """A ValueError when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{func}: {name} must be one of {list(allowed)}; got {value!r}")


def require_tensor(func: str, name: str, x: Any, floating: bool = True):
    """``x`` itself when it is a torch tensor (of a floating dtype, by default); a ValueError
    naming ``func`` and ``name`` otherwise (a numpy array passed where a tensor belongs is
    the usual slip when porting numpy code to torch)."""
    import torch
    if not isinstance(x, torch.Tensor):
        hint = " (convert it with torch.as_tensor or torch.from_numpy)" if isinstance(x, np.ndarray) else ""
        raise ValueError(f"{func}: {name} must be a torch.Tensor; got {type(x).__name__}{hint}")
    if floating and not x.dtype.is_floating_point:
        raise ValueError(f"{func}: {name} must be a floating-point tensor; got dtype {x.dtype}")
    return x
