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

import numbers
from typing import Any, Mapping, MutableMapping, Sequence

import numpy as np

__all__ = ["as_array", "as_array_like", "as_config", "state_array", "require_shape", "require_keys",
           "require_one_of", "require_generator", "require_numbers", "require_int_tuple", "require_tensor",
           "require_count", "require_index", "shape_str"]


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


def as_array_like(func: str, name: str, x: Any, like: np.ndarray, like_name: str) -> np.ndarray:
    """``x`` as a float64 array of the shape of ``like`` (an argument called ``like_name``), e.g.
    a gradient ``dw`` of the parameters ``w``; a ValueError naming both otherwise."""
    x = as_array(func, name, x)
    require_shape(func, name, x, np.shape(like), why=f"(the shape of {like_name})")
    return x


def as_config(func: str, name: str, config: Any) -> dict:
    """An optional dict argument: ``config`` itself (the caller's dict, which the function may
    update), a new empty dict when it is None; a ValueError for anything else."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"{func}: {name} must be a dict or None; got {type(config).__name__}")
    return config


def state_array(func: str, config: dict, key: str, like: np.ndarray, config_name: str = "config",
                like_name: str = "w") -> np.ndarray:
    """The state array ``config[key]`` (an optimizer's velocity, cache or moments), of the shape of
    ``like``: zeros when the key is absent, otherwise checked to be a float64 array of that shape.
    It is stored back in ``config`` (converted when it was not float64) and returned, so that
    in-place updates of the returned array are the state's."""
    if key not in config:              # not setdefault: no zeros built on every call
        config[key] = np.zeros_like(like)
    name = f"{config_name}[{key!r}]"
    config[key] = as_array(func, name, config[key])   # the same array when it is float64
    require_shape(func, name, config[key], np.shape(like), why=f"(the shape of {like_name})")
    return config[key]


def require_generator(func: str, name: str, rng: Any) -> np.random.Generator:
    """``rng`` itself when it is a numpy Generator (the legacy RandomState and seeds are refused:
    results must be reproducible from the Generator the caller owns)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{func}: {name} must be a numpy.random.Generator "
                         f"(np.random.default_rng(seed)); got {type(rng).__name__}")
    return rng


def _names(names: Sequence[str]) -> str:
    """``['a']`` -> ``'a'``, ``['a', 'b', 'c']`` -> ``'a, b and c'``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def require_numbers(func: str, values: Mapping[str, Any], low=None, high=None, integer: bool = False) -> None:
    """A ValueError unless every value of ``values`` ({argument name: value}) is a real number in
    [low, high] (either bound may be None), and an int or numpy integer when ``integer``;
    e.g. ``require_numbers("f", {"fan_in": fan_in, "fan_out": fan_out}, low=1, integer=True)``
    fails with ``f: fan_in and fan_out must be integers >= 1; got fan_in=0, fan_out=4``."""
    def ok(v) -> bool:
        if integer:
            kind_ok = isinstance(v, (numbers.Integral, np.integer))
        else:   # a Python or numpy real, or a 0-d array of one (np.float64(t), np.array(t))
            kind_ok = isinstance(v, numbers.Real) or (isinstance(v, (np.generic, np.ndarray))
                                                      and np.ndim(v) == 0 and np.asarray(v).dtype.kind in "biuf")
        return kind_ok and (low is None or v >= low) and (high is None or v <= high)

    if all(ok(v) for v in values.values()):
        return
    names = list(values)
    what = ("integers " if len(names) > 1 else "an integer ") if integer else ""
    bounds = (f"in [{low}, {high}]" if low is not None and high is not None
              else f">= {low}" if low is not None else f"<= {high}" if high is not None else "")
    got = repr(values[names[0]]) if len(names) == 1 else ", ".join(f"{k}={v!r}" for k, v in values.items())
    raise ValueError(f"{func}: {_names(names)} must be {what}{bounds}".rstrip() + f"; got {got}")


def require_int_tuple(func: str, name: str, value: Any, names: Sequence[str], low: int = 1) -> None:
    """A ValueError unless ``value`` is a tuple or list of ``len(names)`` integers >= ``low``, e.g.
    a convolution weight's shape ``(F, C, HH, WW)`` (``names`` gives the entries' names)."""
    if not (isinstance(value, (tuple, list)) and len(value) == len(names)
            and all(isinstance(n, (int, np.integer)) and n >= low for n in value)):
        raise ValueError(f"{func}: {name} must be {shape_str(names)}, {len(names)} integers >= {low}; "
                         f"got {value!r}")


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


def require_count(func: str, name: str, value: Any, low: int = 0) -> int:
    """``value`` as an int when it is an int >= ``low`` (not a bool); a ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{func}: {name} must be an int >= {low}; got {value!r}")
    return int(value)


def require_index(func: str, name: str, index: Any, expected, size: int, what: str,
                  sizes: MutableMapping | None = None) -> np.ndarray:
    """``index`` as an integer (np.intp) array of shape ``expected`` whose entries lie in
    0 .. size - 1 (node or graph numbers, say ``what``); a ValueError naming the argument otherwise."""
    arr = np.asarray(index)
    if arr.size == 0:
        arr = arr.astype(np.intp)
        if arr.ndim == 1 and len(tuple(expected)) == 2:       # an empty list of pairs
            arr = arr.reshape(0, tuple(expected)[1])
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{func}: {name} must be an integer array of {what}; got dtype {arr.dtype}")
    require_shape(func, name, arr, expected, sizes)
    if arr.size and (arr.min() < 0 or arr.max() >= size):
        raise ValueError(f"{func}: {name} must hold {what} in 0 .. {size - 1}; "
                         f"got values from {arr.min()} to {arr.max()}")
    return arr.astype(np.intp, copy=False)
