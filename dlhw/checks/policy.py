"""From scratch means from scratch: APIs a graded function must not call.

Assignments 01-08 ask for numpy implementations; a graded function that hands the work to
PyTorch or to scipy's convolution routines fails its check, with a message naming the call.
The policy is active only while the student's graded functions run inside a check (the
oracles around them use torch freely), and only for the checks of those assignments; the
grader passes the assignment's own list instead (``dlhw autograde --allow-apis`` turns it off).

How the calls are seen, without slowing honest code:

* torch: a ``torch.overrides.TorchFunctionMode`` pushed for the duration of the call sees every
  torch function and tensor method (factories included);
* scipy: the Python functions in :data:`SCIPY_CONVOLUTIONS` get a guard in place (their
  ``__code__`` is swapped, so even a ``from scipy.signal import convolve2d`` made earlier goes
  through it); outside a graded call the guard only forwards the call.

This stops honest shortcuts. It does not stop a student who attacks their own process (one can
always compute outside the window); the grader's trust never rests on it: verdicts come from
the judge, which compares outputs with its own oracles.
"""
from __future__ import annotations

import contextlib
import sys
import types
from typing import Iterable, List, Optional

__all__ = ["ForbiddenAPI", "DEFAULT_FORBIDDEN", "forbidden_for_module", "graded_call", "install_scipy_guards"]

DEFAULT_FORBIDDEN = ("torch", "scipy.convolve")

SCIPY_CONVOLUTIONS = {
    "scipy.signal": ["convolve", "correlate", "convolve2d", "correlate2d", "fftconvolve", "oaconvolve"],
    "scipy.ndimage": ["convolve", "correlate", "convolve1d", "correlate1d"],
}


class ForbiddenAPI(RuntimeError):
    """A graded function called an API its assignment asks students to write themselves."""


_active: List[tuple] = []          # (function name, forbidden set) of the graded calls running
_violations: List[str] = []


def forbidden_for_module(module: str) -> tuple:
    """The default policy of a check registered by ``module`` (a topic module of catalog.py)."""
    from dlhw.checks.catalog import ASSIGNMENT_OF
    # 09 is the PyTorch assignment; every other one is written from scratch in numpy
    if ASSIGNMENT_OF.get(module, 0) >= 1 and ASSIGNMENT_OF.get(module, 0) != 9:
        return DEFAULT_FORBIDDEN
    return ()


def _called(api: str) -> None:
    if not _active:
        return
    names, forbidden = _active[-1]
    frame, fname = sys._getframe(1), names[0]
    while frame is not None:     # the graded function that made the call, not always the first
        if frame.f_code.co_name in names:
            fname = frame.f_code.co_name
            break
        frame = frame.f_back
    family = "torch" if api.startswith("torch") else "scipy.convolve"
    if family not in forbidden:
        return
    message = (f"{fname} called {api} while it was graded: this assignment is written from scratch in numpy "
               f"({'PyTorch' if family == 'torch' else 'scipy.signal/scipy.ndimage convolution routines'} "
               "may not do the work of a graded function)")
    _violations.append(message)
    raise ForbiddenAPI(message)


def _torch_mode():
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch  # noqa: F401  (the kit depends on it; importing it here is cheap after the first time)
        except ImportError:
            return contextlib.nullcontext()
    from torch.overrides import TorchFunctionMode

    class _NoTorch(TorchFunctionMode):
        def __torch_function__(self, func, types_, args=(), kwargs=None):
            _called(f"torch.{getattr(func, '__name__', 'operation')}")
            return func(*args, **(kwargs or {}))

    return _NoTorch()


_patched = set()


def install_scipy_guards() -> None:
    """Guard the scipy convolution functions of the scipy modules imported so far (idempotent)."""
    for modname, names in SCIPY_CONVOLUTIONS.items():
        mod = sys.modules.get(modname)
        if mod is None:
            continue
        for name in names:
            fn = getattr(mod, name, None)
            if not isinstance(fn, types.FunctionType) or id(fn) in _patched:
                continue
            if fn.__code__.co_freevars:     # a closure cannot take the guard's code
                continue
            original = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
            original.__kwdefaults__ = fn.__kwdefaults__
            key = f"__dlhw_original_{name}__"
            fn.__globals__[key] = original
            fn.__globals__["__dlhw_called__"] = _called
            namespace: dict = {}
            exec(f"def {name}(*args, **kwargs):\n"
                 f"    __dlhw_called__({modname + '.' + name!r})\n"
                 f"    return {key}(*args, **kwargs)\n", fn.__globals__, namespace)
            fn.__code__ = namespace[name].__code__
            fn.__defaults__, fn.__kwdefaults__ = None, None
            fn.__wrapped__ = original          # inspect.signature still shows the real one
            _patched.add(id(fn))


@contextlib.contextmanager
def graded_call(names, forbidden: Iterable[str]):
    """Run the body as a graded call of the functions ``names`` under the ``forbidden`` API families."""
    forbidden = tuple(forbidden or ())
    if not forbidden:
        yield
        return
    if "scipy.convolve" in forbidden:
        install_scipy_guards()
    _active.append((tuple(names) or ("the graded function",), forbidden))
    try:
        with (_torch_mode() if "torch" in forbidden else contextlib.nullcontext()):
            yield
    finally:
        _active.pop()


def take_violation() -> Optional[str]:
    """The first forbidden call seen since the last time (then forgets them all)."""
    first = _violations[0] if _violations else None
    _violations.clear()
    return first
