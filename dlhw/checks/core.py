"""The check machinery: inputs, a probe of the student's functions, and a judge.

Every graded piece of an assignment is one *check*, registered under a name (``"affine_forward"``,
``"affine_backward.dw"``, ...). A check has three parts:

``inputs(rng, hidden) -> dict``
    draws the inputs (a fixed seed for the visible check, fresh shapes and seeds when hidden);
``probe(fns, inputs) -> dict of arrays``
    calls the student's functions on them; this is the only part that runs student code;
``judge(inputs, outputs) -> str``
    compares with independent oracles (PyTorch in float64, autograd, centred differences) and
    raises :class:`CheckFailed` with a precise message, or returns a success message.

In a notebook, :func:`check` runs the three in the student's process. At grading time the
grader forks the student's process from a *judge* process and connects them with a pipe:
inputs and verdicts come from the judge, only outputs (plain arrays, no pickle) come from the
student's side. Monkeypatching numpy, ``assert`` or this module inside the student's process
therefore changes nothing the judge decides.
"""
from __future__ import annotations

import os
import struct
import sys
import traceback
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

import numpy as np

from dlhw.checks import policy
from dlhw.checks.wire import decode, encode

__all__ = ["check", "CheckFailed", "Check", "register", "REGISTRY", "compare", "fail",
           "call", "NotImplementedYet", "HIDDEN_NOTE"]

HIDDEN_NOTE = "Hidden tests with other shapes and seeds run at grading time."


class CheckFailed(AssertionError):
    """A check found a wrong value, gradient, shape or type; the message says which."""


class NotImplementedYet(CheckFailed):
    """The function under test still raises NotImplementedError."""


@dataclass
class Check:
    name: str
    functions: tuple                      # the names of the student functions it calls, in order
    inputs: Callable[[np.random.Generator, bool], dict]
    probe: Callable[[tuple, dict], dict]
    judge: Callable[[dict, dict], str]
    doc: str = ""
    forbidden: tuple = ()                 # API families its graded calls may not use (policy.py)


REGISTRY: Dict[str, Check] = {}


def register(name: str, functions, inputs, probe, judge, doc: str = "") -> Check:
    """Add a check to the registry (check modules call this at import time)."""
    if isinstance(functions, str):
        functions = (functions,)
    chk = Check(name, tuple(functions), inputs, probe, judge, doc, forbidden=_registering_policy())
    REGISTRY[name] = chk
    return chk


def _registering_policy() -> tuple:
    # the assignment module (dlhw.checks.aNN) that registers a check decides its default policy
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("dlhw.checks.a"):
            return policy.forbidden_for_module(module)
        frame = frame.f_back
    return ()


_POLICY: Optional[tuple] = None           # set by the grader: the assignment's own list


def set_policy(forbidden) -> None:
    """Use ``forbidden`` (API families, see policy.py) for every check; None: each check's default."""
    global _POLICY
    _POLICY = None if forbidden is None else tuple(forbidden)


def install_scipy_guards() -> None:
    policy.install_scipy_guards()


def _load_registry() -> None:
    # Importing the assignment modules registers their checks.
    from dlhw.checks import catalog  # noqa: F401


def get(name: str) -> Check:
    if name not in REGISTRY:
        _load_registry()
    if name not in REGISTRY:
        raise ValueError(f"check: unknown check {name!r}; known checks: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


# ----------------------------------------------------------------------------- judging helpers

def fail(message: str) -> None:
    raise CheckFailed(message)


def _fmt_index(idx) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ("," if len(idx) == 1 else "") + ")"


def compare(what: str, got: Any, expected: Any, tol: float = 1e-9, hint: str = "",
            oracle: str = "PyTorch") -> float:
    """Compare ``got`` with ``expected`` (float64); raise CheckFailed naming ``what`` if off.

    The error is ``max|got - expected| / max(max|expected|, 1e-8)``: relative to the size of
    the array, so entries near zero cannot blow it up. Tolerances are stated by the check;
    1e-9 is the default for float64 (eps = 2.2e-16: a correct implementation that merely sums
    in another order stays below 1e-13, while float32 arithmetic (eps = 1.2e-7) or any slip in
    a formula lands far above it).
    Returns the error.
    """
    if got is None:
        fail(f"{what} is None: the function did not compute it (is a variable left unassigned?)")
    try:
        g = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"{what} should be a numpy array of numbers; got {type(got).__name__}")
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        msg = f"{what} has shape {g.shape}; expected {e.shape}"
        if sorted(g.shape) == sorted(e.shape):
            msg += " (the same sizes in another order: a missing transpose or reshape?)"
        fail(msg + (f". Hint: {hint}" if hint else ""))
    bad = ~np.isfinite(g)
    if bad.any() and not (~np.isfinite(e))[bad].all():
        idx = np.argwhere(bad & np.isfinite(e))[0]
        fail(f"{what} contains {g[tuple(idx)]} at index {_fmt_index(idx)} where {oracle} has a finite "
             f"value (overflow? a division by zero? exp of a large number?)"
             + (f". Hint: {hint}" if hint else ""))
    if g.size == 0:
        return 0.0
    diff = np.abs(np.where(np.isfinite(e), g - e, 0.0))
    scale = max(float(np.max(np.abs(np.where(np.isfinite(e), e, 0.0)))), 1e-8)
    err = float(np.max(diff)) / scale
    if not err <= tol:
        idx = np.unravel_index(int(np.argmax(diff)), diff.shape)
        where = f" at index {_fmt_index(idx)}" if g.ndim else ""
        msg = (f"{what}: relative error {err:.1e} exceeds the tolerance {tol:.0e}; largest difference"
               f"{where}: yours {g[idx]:.6g}, {oracle} {e[idx]:.6g}")
        if np.allclose(g, -e, rtol=1e-6, atol=1e-12 * scale):
            msg += " (exactly the opposite sign)"
        elif np.allclose(g, e, rtol=1e-4, atol=1e-6 * scale):
            msg += " (close: float32 arithmetic somewhere, or an eps in a different place?)"
        else:
            ratio = _common_ratio(g, e)
            if ratio is not None:
                msg += f" (yours is {ratio:.4g} times {oracle}'s everywhere: a missing or extra scaling?)"
        fail(msg + (f". Hint: {hint}" if hint else ""))
    return err


def _common_ratio(g: np.ndarray, e: np.ndarray) -> Optional[float]:
    mask = np.abs(e) > 1e-8 * max(float(np.max(np.abs(e))), 1e-300)
    if mask.sum() < 2:
        return None
    r = g[mask] / e[mask]
    if np.allclose(r, r[0], rtol=1e-6) and not np.isclose(r[0], 1.0):
        return float(r[0])
    return None


def call(fn: Callable, fname: str, *args, returns: int = 1):
    """Call a student's function and check the arity of what it returns.

    ``returns`` is the number of values the contract promises (1 for a single array, 2 for
    ``(out, cache)``...). NotImplementedError becomes :class:`NotImplementedYet`.
    """
    if not callable(fn):
        raise CheckFailed(f"expected the function {fname}; got {type(fn).__name__} ({fn!r:.60})")
    try:
        result = fn(*args)
    except NotImplementedError:
        raise NotImplementedYet(f"{fname} is not implemented yet: it still raises NotImplementedError "
                                "(replace the `raise NotImplementedError()` line in its answer cell)") from None
    if returns > 1:
        if not isinstance(result, (tuple, list)) or len(result) != returns:
            got = (f"a {type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list))
                   else f"a {type(result).__name__}")
            raise CheckFailed(f"{fname} must return a tuple of {returns} values; it returned {got}")
    return result


def _as_wire_array(name: str, x: Any):
    if x is None:
        return None
    try:
        arr = np.asarray(x)
    except Exception:
        raise CheckFailed(f"{name} should be a numpy array; got {type(x).__name__}") from None
    if arr.dtype.kind not in "biuf":
        raise CheckFailed(f"{name} should be a numeric numpy array; got dtype {arr.dtype}")
    return arr


# ----------------------------------------------------------------------------- running a check

def _seed_for(name: str) -> int:
    return zlib.crc32(name.encode()) + 12345


def _run_probe(chk: Check, fns: tuple, inputs: dict) -> dict:
    """Run the probe; turn exceptions into an ``__error__`` entry for the judge to report."""
    try:
        policy.take_violation()
        with policy.graded_call(chk.functions, chk.forbidden if _POLICY is None else _POLICY):
            out = chk.probe(fns, inputs)
        violation = policy.take_violation()
        if violation:   # even when the student's code caught the exception
            return {"__error__": violation, "__kind__": "forbidden"}
        if not isinstance(out, dict):
            raise CheckFailed("internal: probe must return a dict")
        # Outputs cross to the judge as plain numbers and numeric arrays only.
        return {k: v if isinstance(v, (str, bool, int, float, dict)) or v is None
                else _as_wire_array(k, v) for k, v in out.items()}
    except NotImplementedYet as exc:
        return {"__error__": str(exc), "__kind__": "not_implemented"}
    except CheckFailed as exc:
        return {"__error__": str(exc), "__kind__": "contract"}
    except Exception as exc:  # the student's function crashed: say where
        violation = policy.take_violation()
        if violation:
            return {"__error__": violation, "__kind__": "forbidden"}
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if not f.filename.endswith(("dlhw/checks/core.py",)) and "dlhw/checks" not in f.filename]
        where = ""
        if frames:
            f = frames[-1]
            where = f" (in {f.name}, line {f.lineno}: {(f.line or '').strip()[:80]})"
        # the graded function that was running (a backward's crash is not its forward's)
        culprit = next((f.name for f in reversed(frames) if f.name in chk.functions),
                       chk.functions[0] if chk.functions else chk.name)
        return {"__error__": f"{culprit} raised "
                             f"{type(exc).__name__}: {str(exc)[:300]}{where}", "__kind__": "crash"}


def judge(chk: Check, inputs: dict, outputs: dict) -> tuple:
    """(passed, message) for a probe's outputs. Never raises."""
    if not isinstance(outputs, dict):
        return False, f"{chk.name}: malformed outputs"
    if "__error__" in outputs:
        return False, f"{chk.name}: {outputs['__error__']}"
    try:
        msg = chk.judge(inputs, outputs)
        return True, f"{chk.name}: {msg or 'correct'}"
    except CheckFailed as exc:
        return False, f"{chk.name}: {exc}"
    except Exception as exc:
        # A judge that trips on malformed outputs (a missing key, an odd type) is a failure of
        # the submission, reported plainly; it never counts as a pass.
        return False, f"{chk.name}: the outputs could not be checked ({type(exc).__name__}: {str(exc)[:200]})"


def draw_inputs(chk: Check, hidden: bool, seed: Optional[int] = None) -> dict:
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") if hidden else _seed_for(chk.name)
    return chk.inputs(np.random.default_rng(seed), hidden)


class _Channel:
    """The student's end of the pipe to the judge (set only inside the grader's sandbox)."""

    def __init__(self, rfd: int, wfd: int):
        self.rfd, self.wfd = rfd, wfd
        self.nonce = ""      # the running cell's, from the judge: messages without it are ignored

    def _send(self, payload: bytes) -> None:
        data = struct.pack("<Q", len(payload)) + payload
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]

    def _recv(self) -> bytes:
        head = self._read(8)
        return self._read(struct.unpack("<Q", head)[0])

    def _read(self, n: int) -> bytes:
        chunks = []
        while n:
            b = os.read(self.rfd, min(n, 1 << 20))
            if not b:
                raise EOFError("the judge closed the channel")
            chunks.append(b)
            n -= len(b)
        return b"".join(chunks)

    def ask(self, message: dict):
        self._send(encode(dict(message, nonce=self.nonce)))
        return decode(self._recv())


_CHANNEL: Optional[_Channel] = None


def check(name: str, *fns: Callable, hidden: bool = False, quiet: bool = False) -> None:
    """Run the check ``name`` on the student's function(s) ``fns``.

    Prints a one-line verdict; raises :class:`CheckFailed` with a message that
    names the wrong output or gradient, the error, the shapes and a hint when it fails.
    ``hidden=True`` draws fresh shapes and seeds (what the grader does with hidden tests).
    """
    chk = get(name)
    if len(fns) != len(chk.functions):
        raise TypeError(f"check({name!r}, ...) takes the function(s) {', '.join(chk.functions)}; "
                        f"got {len(fns)} argument(s)")
    if _CHANNEL is not None:
        inputs = _CHANNEL.ask({"op": "inputs", "check": name, "hidden": bool(hidden)})
        outputs = _run_probe(chk, fns, inputs)
        try:
            reply = _CHANNEL.ask({"op": "outputs", "check": name, "outputs": outputs})
        except Exception as exc:  # unsendable outputs: tell the judge it failed
            reply = _CHANNEL.ask({"op": "outputs", "check": name,
                                  "outputs": {"__error__": f"outputs could not be sent ({exc})",
                                              "__kind__": "contract"}})
        passed, message = bool(reply["passed"]), str(reply["message"])
    else:
        inputs = draw_inputs(chk, hidden)
        outputs = _run_probe(chk, fns, inputs)
        passed, message = judge(chk, inputs, outputs)
    if not passed:
        raise NotImplementedYet(message) if "NotImplementedError" in message else CheckFailed(message)
    if not hidden:
        message += ". " + HIDDEN_NOTE
    if not quiet:
        print("\u2713 " + message)


def report(*fns: Callable) -> None:
    """Run every visible check of the given functions and print a table of verdicts.

    The functions are matched by name (``report(affine_forward, affine_backward)`` runs the
    checks of both). Raises :class:`CheckFailed` after the table when any check failed, so a
    notebook run stops at a wrong function.
    """
    _load_registry()
    names = {getattr(f, "__name__", "") for f in fns}
    by_name = {getattr(f, "__name__", ""): f for f in fns}
    todo = [c for c in REGISTRY.values() if c.functions and set(c.functions) <= names]
    if not todo:
        raise ValueError(f"report: no checks use the function(s) {sorted(names)}")
    failed = 0
    width = max(len(c.name) for c in todo)
    for chk in todo:
        inputs = draw_inputs(chk, False)
        passed, message = judge(chk, inputs, _run_probe(chk, tuple(by_name[n] for n in chk.functions), inputs))
        failed += not passed
        text = message[len(chk.name) + 2:] if message.startswith(chk.name + ": ") else message
        print(f"{'✓' if passed else '✗'} {chk.name:<{width}}  {text}")
    if failed:
        raise CheckFailed(f"{failed} of {len(todo)} checks failed (see above)")
    print(f"All {len(todo)} checks passed. " + HIDDEN_NOTE)
