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

import contextlib
import os
import re
import sys
import traceback
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from dlhw.checks import policy
from dlhw.checks.wire import decode, encode, read_frame, send_frame

__all__ = ["check", "CheckFailed", "Check", "register", "REGISTRY", "compare", "fail",
           "call", "NotImplementedYet", "HIDDEN_NOTE", "Case", "Cases", "case_listing", "as_wire_array"]

HIDDEN_NOTE = "Hidden tests with other shapes and seeds run at grading time."


def message_lines(message: str, width: int = 80) -> list:
    """A verdict as short lines: each paragraph wrapped at ``width``, later lines indented.

    What a failing check shows in place of a traceback, in the notebook and in nbgrader's
    Validate dialog (which cuts lines at its width): the message itself, readable whole.
    """
    import textwrap
    lines = []
    for para in str(message).splitlines() or [""]:
        lines += textwrap.wrap(para, width=width, subsequent_indent="    ", break_long_words=False,
                               break_on_hyphens=False) or [""]
    return lines


class CheckFailed(AssertionError):
    """A check found a wrong value, gradient, shape or type; the message says which."""

    def _render_traceback_(self):
        # IPython (and so Jupyter, and nbgrader's Validate) shows these lines instead of a stack
        # into the kit's own source: a failing check is a verdict, not a crash.
        return message_lines("\u2717 " + str(self))


class NotImplementedYet(CheckFailed):
    """The function under test still raises NotImplementedError (``function``: its name)."""

    function = ""


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


# ----------------------------------------------------------------------------- fixed cases
#
# Fairness: every student's hidden tests must exercise the same properties of the contract
# (leading axes, N = 1, stride 2, absent running statistics...), and every property a hidden
# test exercises must be exercised by a visible one, so that a student who passes the visible
# tests can only lose hidden points on values and sizes, never on a rule they could not see.
# A check states this as fixed lists of cases: each case has a name, the set of properties it
# covers and a maker that draws the values and sizes inside that class (an "odd width" case
# draws an odd width). The lists themselves never depend on the seed.

@dataclass(frozen=True)
class Case:
    """One fixed case of a check: ``make(rng) -> dict`` draws the inputs of one probe run."""
    name: str
    properties: frozenset
    make: Callable[[np.random.Generator], dict]

    def __init__(self, name: str, properties, make: Callable[[np.random.Generator], dict]):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "properties", frozenset(properties))
        object.__setattr__(self, "make", make)


class Cases:
    """The inputs of a check as fixed lists of :class:`Case` (``hidden`` defaults to ``visible``).

    Called as ``inputs(rng, hidden)`` it returns ``{"cases": [{"name", "properties", "inputs"}]}``;
    :func:`register` then runs the check's probe and judge once per case. ``measure(inputs) ->
    set of properties``, when given, recognizes the properties in drawn inputs, so that tests
    can verify that each case really exercises what it declares, whatever the seed.
    """

    def __init__(self, visible: Sequence[Case], hidden: Optional[Sequence[Case]] = None,
                 measure: Optional[Callable[[dict], set]] = None):
        self.visible = list(visible)
        self.hidden = list(visible if hidden is None else hidden)
        self.measure = measure
        for group in (self.visible, self.hidden):
            names = [c.name for c in group]
            if len(set(names)) != len(names):
                raise ValueError(f"Cases: duplicate case names {names}")

    def __call__(self, rng: np.random.Generator, hidden: bool) -> dict:
        cases = []
        for c in (self.hidden if hidden else self.visible):
            # each case its own stream, so that one case's sizes do not shift another's values
            sub = np.random.default_rng(int(rng.integers(0, 2 ** 63)))
            cases.append({"name": c.name, "properties": sorted(c.properties), "inputs": c.make(sub)})
        return {"cases": cases}


def _case_label(case: dict) -> str:
    return f"case '{case['name']}'"


def _label(exc: CheckFailed, case: dict) -> None:
    """Add the case to a failure's message, in place (the exception keeps its type and fields)."""
    exc.args = (f"{exc} [{_case_label(case)}]",) + tuple(exc.args[1:])


def _multi_probe(probe: Callable) -> Callable:
    def probe_cases(fns, inp):
        outs = {}
        for i, case in enumerate(inp["cases"]):
            try:
                out = probe(fns, case["inputs"])
            except NotImplementedYet:
                raise
            except CheckFailed as exc:
                _label(exc, case)
                raise
            except Exception as exc:
                try:  # the crash report (_run_probe) names the case too
                    exc.args = (f"{exc} [{_case_label(case)}]",)
                except Exception:
                    pass
                raise
            if not isinstance(out, dict):
                raise CheckFailed("internal: probe must return a dict")
            outs[str(i)] = out
        return {"cases": outs}
    return probe_cases


def _multi_judge(judge: Callable) -> Callable:
    def judge_cases(inp, outp):
        cases = inp["cases"]
        got = outp.get("cases") if isinstance(outp, dict) else None
        if not isinstance(got, dict):
            raise CheckFailed("the outputs hold no cases")
        first = ""
        for i, case in enumerate(cases):
            out = got.get(str(i))
            if not isinstance(out, dict):
                raise CheckFailed(f"the outputs of {_case_label(case)} are missing")
            if "__error__" in out:
                raise CheckFailed(f"{out['__error__']} [{_case_label(case)}]")
            try:
                msg = judge(case["inputs"], out)
            except CheckFailed as exc:
                _label(exc, case)
                raise
            first = first or (msg or "correct")
        if len(cases) > 1:
            first += f" (all {len(cases)} cases: {'; '.join(c['name'] for c in cases)})"
        return first
    return judge_cases


def case_listing(name: str, seed: int, hidden: bool) -> list:
    """[(case name, declared properties, measured properties or None)] of check ``name``.

    None when the check has no fixed cases. ``measured`` is what the check's ``measure``
    recognizes in the inputs drawn with ``seed`` (None without a measure).
    """
    chk = get(name)
    parts = getattr(chk.inputs, "case_parts", None)
    if parts:   # a check made of earlier checks (assignment 09's ports): their cases, by name
        listed = [case_listing(p, seed, hidden) for p in parts]
        if any(part is None for part in listed):
            return None
        return [(f"{p}: {c}", props, measured) for p, part in zip(parts, listed) for c, props, measured in part]
    cases = getattr(chk.inputs, "cases_spec", None)
    if cases is None:
        return None
    drawn = cases(np.random.default_rng(seed), hidden)["cases"]
    return [(c["name"], frozenset(c["properties"]),
             None if cases.measure is None else frozenset(cases.measure(c["inputs"]))) for c in drawn]


def register(name: str, functions, inputs, probe, judge, doc: str = "") -> Check:
    """Add a check to the registry (check modules call this at import time).

    With ``inputs`` a :class:`Cases`, the probe and the judge run once per fixed case.
    """
    if isinstance(functions, str):
        functions = (functions,)
    if isinstance(inputs, Cases):
        spec = inputs
        probe, judge = _multi_probe(probe), _multi_judge(judge)

        def inputs(rng, hidden, spec=spec):
            return spec(rng, hidden)
        inputs.cases_spec = spec
    chk = Check(name, tuple(functions), inputs, probe, judge, doc, forbidden=_registering_policy())
    REGISTRY[name] = chk
    return chk


def _registering_policy() -> tuple:
    # the topic module (dlhw.checks.layers, ...) that registers a check decides its default
    # policy, by the assignment it belongs to (catalog.py)
    from dlhw.checks.catalog import ASSIGNMENT_OF
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module in ASSIGNMENT_OF:
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
    # Importing the topic modules registers their checks.
    from dlhw.checks import catalog
    catalog.load()


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
        exc = NotImplementedYet(f"{fname} is not implemented yet: it still raises NotImplementedError "
                                "(replace the `raise NotImplementedError()` line in its answer cell)")
        exc.function = fname
        raise exc from None
    if returns > 1:
        if not isinstance(result, (tuple, list)) or len(result) != returns:
            got = (f"a {type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list))
                   else f"a {type(result).__name__}")
            raise CheckFailed(f"{fname} must return a tuple of {returns} values; it returned {got}")
    return result


def as_wire_array(name: str, x: Any):
    """A student's result as what crosses to the judge: a numeric array, or None."""
    if x is None:
        return None
    try:
        arr = np.asarray(x)
    except Exception:
        raise CheckFailed(f"{name} should be a numpy array; got {type(x).__name__}") from None
    if arr.dtype.kind not in "biuf":
        raise CheckFailed(f"{name} should be a numeric numpy array; got {type(x).__name__} of dtype {arr.dtype}")
    return arr


# ----------------------------------------------------------------------------- running a check

def _seed_for(name: str) -> int:
    return zlib.crc32(name.encode()) + 12345


# Names NumPy 2 (or 1.2x) removed, as code written for NumPy 1 still spells them:
# name -> (what to write instead, the release that removed it).
NUMPY1_NAMES = {
    "int": ("int", "1.24"), "float": ("float", "1.24"), "complex": ("complex", "1.24"),
    "object": ("object", "1.24"), "bool": ("bool", "1.24"), "str": ("str", "1.24"),
    "long": ("int", "1.24"), "unicode": ("str", "1.24"), "rank": ("np.ndim", "1.18"),
    "asscalar": ("a.item()", "1.23"), "alen": ("len", "1.23"), "product": ("np.prod", "2.0"),
    "cumproduct": ("np.cumprod", "2.0"), "alltrue": ("np.all", "2.0"), "sometrue": ("np.any", "2.0"),
    "NaN": ("np.nan", "2.0"), "NAN": ("np.nan", "2.0"), "Inf": ("np.inf", "2.0"),
    "Infinity": ("np.inf", "2.0"), "infty": ("np.inf", "2.0"), "PINF": ("np.inf", "2.0"),
    "NINF": ("-np.inf", "2.0"), "float_": ("np.float64", "2.0"), "complex_": ("np.complex128", "2.0"),
    "int0": ("np.intp", "2.0"), "uint0": ("np.uintp", "2.0"), "unicode_": ("np.str_", "2.0"),
    "string_": ("np.bytes_", "2.0"), "mat": ("np.asmatrix", "2.0"), "msort": ("np.sort(a, axis=0)", "2.0"),
    "round_": ("np.round", "2.0"), "in1d": ("np.isin", "2.0"), "trapz": ("np.trapezoid", "2.0"),
    "find_common_type": ("np.result_type", "2.0"), "cast": ("np.asarray(a, dtype=...)", "2.0"),
}


def numpy1_note(exc: BaseException) -> str:
    """'this is NumPy 1 code: ...' when ``exc`` is NumPy 2 refusing a NumPy 1 spelling, else ''."""
    text = str(exc)
    here = f"(NumPy {np.__version__} is installed here)"
    if isinstance(exc, AttributeError):
        m = (re.match(r"module 'numpy(\.lib)?' has no attribute '(\w+)'", text)
             or re.match(r"`np\.()(\w+)` was removed in the NumPy 2\.0 release", text))
        if not m:
            return ""
        lib, name = m.group(1) or "", m.group(2)
        if lib:
            return (f"this is NumPy 1 code: np.lib.{name} was removed from the np.lib namespace in NumPy 2.0; "
                    f"use np.{name} {here}")
        if name in NUMPY1_NAMES:
            instead, release = NUMPY1_NAMES[name]
            return f"this is NumPy 1 code: np.{name} was removed in NumPy {release}; use {instead} {here}"
        return f"NumPy has no np.{name}: a typo, or code written for an older NumPy? {here}"
    if isinstance(exc, TypeError) and "newshape" in text:
        return ("this is NumPy 1 code: reshape's keyword newshape= was deprecated in NumPy 2.1 and is gone; "
                f"pass the shape positionally, x.reshape(shape) or np.reshape(x, shape) {here}")
    return ""


@contextlib.contextmanager
def _reference_dependencies(chk: Check, fns: tuple):
    """At grading time: the graded functions' calls to their dependencies go to the judge (deps.py)."""
    from dlhw.checks.deps import dependencies_of
    deps = dependencies_of(chk.functions) if _CHANNEL is not None else ()
    swapped = []
    try:
        for fn in fns:
            space = getattr(fn, "__globals__", None)
            if space is None:
                continue
            for dep in deps:
                mine = space.get(dep)
                # only the student's own (notebook) functions: blocks and the kit are references already
                if callable(mine) and getattr(mine, "__module__", None) == "__main__" and \
                        not getattr(mine, "_dlhw_reference", False):
                    swapped.append((space, dep, mine))
                    space[dep] = _judge_dependency(dep)
        yield
    finally:
        for space, dep, mine in reversed(swapped):
            space[dep] = mine


def _judge_dependency(name: str):
    def reference(*args, **kwargs):
        reply = _CHANNEL.ask({"op": "dep", "function": name, "args": list(args), "kwargs": kwargs})
        if isinstance(reply, dict) and "__error__" in reply:
            raise CheckFailed(f"the judge could not evaluate {name} for this check: {reply['__error__']}")
        return reply["result"]
    reference.__name__ = reference.__qualname__ = name
    reference._dlhw_reference = True
    return reference


def _run_probe(chk: Check, fns: tuple, inputs: dict) -> dict:
    """Run the probe; turn exceptions into an ``__error__`` entry for the judge to report."""
    try:
        policy.take_violation()
        with policy.graded_call(chk.functions, chk.forbidden if _POLICY is None else _POLICY), \
                _reference_dependencies(chk, fns):
            out = chk.probe(fns, inputs)
        violation = policy.take_violation()
        if violation:   # even when the student's code caught the exception
            return {"__error__": violation, "__kind__": "forbidden"}
        if not isinstance(out, dict):
            raise CheckFailed("internal: probe must return a dict")
        # Outputs cross to the judge as plain numbers and numeric arrays only.
        return {k: v if isinstance(v, (str, bool, int, float, dict)) or v is None
                else as_wire_array(k, v) for k, v in out.items()}
    except NotImplementedYet as exc:
        return {"__error__": str(exc), "__kind__": "not_implemented", "__function__": str(exc.function)}
    except CheckFailed as exc:
        return {"__error__": str(exc), "__kind__": "contract"}
    except Exception as exc:  # the student's function crashed: say where
        violation = policy.take_violation()
        if violation:
            return {"__error__": violation, "__kind__": "forbidden"}
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if not f.filename.endswith(("dlhw/checks/core.py",)) and "dlhw/checks" not in f.filename]
        where = ""
        # the student's line, not the library's (numpy's __getattr__ raises for a removed name)
        own = [f for f in frames if not any(d in f.filename for d in ("site-packages", "dist-packages"))]
        if own or frames:
            f = (own or frames)[-1]
            where = f" (in {f.name}, line {f.lineno}: {(f.line or '').strip()[:80]})"
        # the graded function that was running (a backward's crash is not its forward's)
        culprit = next((f.name for f in reversed(frames) if f.name in chk.functions),
                       chk.functions[0] if chk.functions else chk.name)
        note = numpy1_note(exc)
        # NumPy's own message for a removed name runs to a paragraph: its first line is enough
        text = str(exc).splitlines()[0][:300] if note and str(exc) else str(exc)[:300]
        return {"__error__": f"{culprit} raised "
                             f"{type(exc).__name__}: {text}{where}" + (f": {note}" if note else ""), "__kind__": "crash"}


def judge(chk: Check, inputs: dict, outputs: dict) -> tuple:
    """(passed, message) for a probe's outputs. Never raises."""
    if not isinstance(outputs, dict):
        return False, f"{chk.name}: malformed outputs"
    if "__error__" in outputs:
        waits = outputs.get("__function__")
        if outputs.get("__kind__") == "not_implemented" and waits and waits != _owner(chk):
            return False, f"{chk.name}: waits for {waits}: {outputs['__error__']}"
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


def _owner(chk: Check) -> str:
    """The student function a check grades (``affine_backward`` for ``affine_backward.dx``)."""
    head = chk.name.split(".")[0]
    return head if head in chk.functions or not chk.functions else chk.functions[-1]


def draw_inputs(chk: Check, hidden: bool, seed: Optional[int] = None) -> dict:
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little") if hidden else _seed_for(chk.name)
    return chk.inputs(np.random.default_rng(seed), hidden)


class _Channel:
    """The student's end of the pipe to the judge (set only inside the grader's sandbox)."""

    def __init__(self, rfd: int, wfd: int, nonce: str = ""):
        self.rfd, self.wfd = rfd, wfd
        self.nonce = nonce   # the running cell's, from the judge: messages without it are ignored

    def _send(self, payload: bytes) -> None:
        send_frame(self.wfd, payload)

    def _recv(self) -> bytes:
        return read_frame(self.rfd, limit=1 << 40)     # the judge's replies: no limit

    def ask(self, message: dict):
        self._send(encode(dict(message, nonce=self.nonce)))
        return decode(self._recv())


_CHANNEL: Optional[_Channel] = None


def install_channel(rfd: Optional[int], wfd: Optional[int] = None, nonce: str = "") -> None:
    """Connect :func:`check` to the judge: the grader's hook, called for every cell it runs.

    ``rfd`` reads the judge's replies and ``wfd`` writes requests (descriptors of the cell's
    own pipes); every request carries ``nonce``. ``install_channel(None)`` disconnects, and
    checks run locally again.
    """
    global _CHANNEL
    _CHANNEL = None if rfd is None else _Channel(rfd, wfd, str(nonce))


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
    if not quiet:
        print("\u2713 " + message)
        if not hidden:
            _hidden_note()


_NOTE_SHOWN_IN = [object()]


def _cell() -> object:
    """Which notebook cell is running (its execution count), None outside IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return getattr(shell, "execution_count", None) if shell is not None else None


def _hidden_note() -> None:
    """Print HIDDEN_NOTE on a line of its own, once per cell (once per run outside a notebook)."""
    cell = _cell()
    if _NOTE_SHOWN_IN[0] != cell:
        _NOTE_SHOWN_IN[0] = cell
        print(HIDDEN_NOTE)


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
    rows, failed, waiting = [], [], {}
    for chk in todo:
        inputs = draw_inputs(chk, False)
        outputs = _run_probe(chk, tuple(by_name[n] for n in chk.functions), inputs)
        passed, message = judge(chk, inputs, outputs)
        if not passed:
            failed.append(chk.name)
        text = message[len(chk.name) + 2:] if message.startswith(chk.name + ": ") else message
        blocker = outputs.get("__function__") if outputs.get("__kind__") == "not_implemented" else None
        if blocker:
            # a function not written yet (or a backward whose forward is not): one line for all
            # the checks it holds up, not the same message once per check
            key = (_owner(chk), blocker)
            if key not in waiting:
                waiting[key] = [text]
                rows.append(key)
            waiting[key].append(chk.name)
            continue
        rows.append(("\u2713" if passed else "\u2717", chk.name, text))
    lines = []
    for row in rows:
        if len(row) == 2:
            (owner, blocker), (text, *names) = row, waiting[row]
            n = len(names)
            if blocker != owner:
                lines.append(("\u2717", None, f"{owner}'s {n} check{'s' if n > 1 else ''} wait{'' if n > 1 else 's'} "
                                              f"for {blocker} (not implemented yet: it still raises NotImplementedError)"))
            elif n > 1:
                lines.append(("\u2717", None, f"{owner}'s {n} checks: {text}"))
            else:
                lines.append(("\u2717", names[0], text))
        else:
            lines.append(row)
    width = max((len(name) for _, name, _ in lines if name), default=0)
    for mark, name, text in lines:
        print(f"{mark} {text}" if name is None else f"{mark} {name:<{width}}  {text}")
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(todo)} checks failed (see above): {', '.join(failed)}")
    print(f"All {len(todo)} checks passed.")
    _hidden_note()
