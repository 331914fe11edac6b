"""One way to write a check: a declaration, not a probe and a judge written out by hand.

A declared check names

* its student functions, and how they are called on one case (the probe);
* its cases, visible and hidden (a :class:`~dlhw.checks.core.Cases`, fixed lists whose sizes and
  values are drawn per student);
* its oracle: ``oracle(inputs) -> {name: expected value}``, independent of dlhw's reference
  (PyTorch in float64, its autograd, a closed formula);
* the values it grades (one output, one gradient, or a group of gradients graded together);
* its hints (per value), its tolerance and how its verdict names the oracle.

These forms cover the course:

:func:`values`
    any graded function(s) whose probe returns named values (a network's loss and its gradients,
    positional encodings, a transformer block's parameter gradients);
:func:`loss`
    a loss function's value and its gradient from one call (``softmax_loss.loss`` and
    ``softmax_loss.dx``);
:func:`layer`
    a forward/backward pair with a cache, the contract of every layer of 02-08 (affine,
    convolution, normalization, recurrent steps and sequences, attention): the forward's check
    per output and one check per gradient group, ``NAME_backward.GROUP``, so that partial work
    earns partial credit (:func:`torch_layer`: the same, its oracle a torch function and autograd);
:func:`port`
    a torch port of an earlier layer (09), graded by the very checks of the numpy layer it
    ports, with their cases and oracles, through adapters (torch_ports.py).

Checks whose judgement is not a comparison of values (a distribution's statistics, the side
effects of a call, a replayed training loop, an update rule's trajectory with its slips named)
keep a judge of their own and use :func:`dlhw.checks.core.register` with the same cases.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from dlhw.checks.core import Cases, CheckFailed, NotImplementedYet, as_wire_array, call, compare, fail, get, register
from dlhw.checks.helpers import deep_copy, scalar, torch as _torch

__all__ = ["values", "loss", "layer", "torch_layer", "port", "Layer", "judge_values", "autograd_oracle", "SAYS"]

# How a verdict reads: "dx matches PyTorch autograd (relative error 3.1e-16 <= 1e-09)".
SAYS = "{keys} match{es} {oracle} (relative error {err:.1e} <= {tol:.0e})"

# per value: a dict {key: hint}, or hints(key, inputs, outputs) -> hint (a hint that depends on
# what the student's function returned: "your dx is right, so the loss took log(0)")
Hints = Union[Mapping[str, Union[str, Callable[[dict, dict], str]]], Callable[[str, dict, dict], str], None]


def _hint(hints: Hints, key: str, inp: Optional[dict] = None, out: Optional[dict] = None) -> str:
    if hints is None:
        return ""
    hint = hints(key, inp, out) if callable(hints) else hints.get(key, "")
    return hint(inp, out) if callable(hint) else hint


def judge_values(keys, oracle: Callable[[dict], dict], fn: str, *,
                 label="{key} from {fn}", hints: Hints = None, tol: float = 1e-9,
                 oracle_name="PyTorch", says=SAYS, says_oracle: Optional[str] = None,
                 where: Optional[Callable[[dict], str]] = None, compare_with: Callable = compare,
                 missing: Optional[str] = None, shown: Optional[Mapping[str, str]] = None,
                 within: Optional[str] = None) -> Callable[[dict, dict], str]:
    """A judge that compares the outputs ``keys`` with ``oracle(inputs)`` and reports the worst error.

    keys         the names of the values, or keys(inputs) -> names (values that vary per case)
    label        what a failure calls the value: "{key} from {fn}" -> "dx from affine_backward",
                 or label(key, inputs) -> text
    oracle_name  what a failure calls the oracle ("PyTorch", "PyTorch autograd"), or
                 oracle_name(key) -> that
    says         the success message; {keys} (the keys, or their ``shown`` names), {es} ("es"
                 for one key), {oracle} (``says_oracle``, default ``oracle_name``), {err}, {tol};
                 or says(inputs, worst error) -> the message
    where        optional where(inputs) -> text added to the label (the case in words)
    compare_with compare(what, got, expected, tol=, hint=, oracle=) (core.compare by default)
    missing      optional message when an output lacks a key: {key}, {fn}, {have} (without it, a
                 missing value is None, which compare reports as not computed)
    within       optional: the values are outputs[within][key] (a dict the function returned)
    """
    shown = dict(shown or {})

    def judge(inp, out):
        expected = oracle(inp)
        suffix = where(inp) if where is not None else ""
        worst = 0.0
        got_all = out if within is None else out[within]
        names = keys(inp) if callable(keys) else keys
        for key in names:
            if missing is not None and key not in got_all:
                fail(missing.format(key=key, fn=fn, have=sorted(got_all)))
            what = label(key, inp) if callable(label) else label.format(key=key, fn=fn)
            err = compare_with(what + suffix, got_all.get(key), expected[key], tol=tol,
                               hint=_hint(hints, key, inp, out),
                               oracle=oracle_name(key) if callable(oracle_name) else oracle_name)
            worst = max(worst, err)
        if callable(says):
            return says(inp, worst)
        return says.format(keys=", ".join(shown.get(k, k) for k in names), es="es" if len(names) == 1 else "",
                           oracle=oracle_name if says_oracle is None else says_oracle, err=worst, tol=tol)
    return judge


def values(name: str, functions: Sequence[str], cases: Cases, probe: Callable[[tuple, dict], dict],
           oracle: Callable[[dict], dict], keys: Sequence[str], doc: str = "", **judging):
    """Register the check ``name``: ``probe`` runs the student's ``functions`` on each case and
    returns named values; the values ``keys`` are compared with ``oracle(case)`` (see
    :func:`judge_values` for ``judging``: label, hints, tol, oracle_name, says, ...)."""
    fn = judging.pop("fn", functions[-1])
    return register(name, tuple(functions), cases, probe, judge_values(keys, oracle, fn, **judging), doc=doc)


def loss(fn: str, cases: Cases, probe: Callable[[tuple, dict], dict], oracle: Callable[[dict], dict], *,
         grad: str, grad_check: str, oracle_says: str, hints: Hints, grad_says: Optional[str] = None,
         why: Optional[str] = "the mean over the batch", doc: str = "") -> None:
    """``FN.loss`` and ``FN.GRAD_CHECK``: a loss function's value (one number) and its gradient
    (the output ``grad``), both from one call of ``probe``, against ``oracle(case) -> {"loss", grad}``
    (PyTorch's loss, and its autograd). ``why`` says what the single number is."""
    def compare_scalar(what, got, expected, tol=1e-9, hint="", oracle="PyTorch"):
        return compare(what, scalar(what, got, why), expected, tol=tol, hint=hint, oracle=oracle)

    values(f"{fn}.loss", (fn,), cases, probe, oracle, ("loss",), label="the loss from {fn}",
           compare_with=compare_scalar, hints=hints, says=f"loss matches {oracle_says} (relative error {{err:.1e}})",
           doc=doc)
    values(f"{fn}.{grad_check}", (fn,), cases, probe, oracle, (grad,), hints=hints, oracle_name="PyTorch autograd",
           says=(grad_says or grad) + " matches PyTorch autograd (relative error {err:.1e})", doc=doc)


def autograd_oracle(torch_fn: Callable, grads: Sequence[str] = (), diff: Optional[Sequence[int]] = None,
                    args: Callable[[dict], list] = lambda inp: inp["args"], upstream: str = "dout",
                    output: str = "out") -> Callable[[dict], dict]:
    """An oracle from a torch function of the case's arguments: its value and autograd's gradients.

    ``oracle(case) -> {output: torch_fn(*args), grads[j]: d sum(out * case[upstream]) / d args[diff[j]]}``;
    float arrays become float64 tensors, integer arrays tensors, anything else is passed as it is.
    """
    diff = list(range(len(grads))) if diff is None else list(diff)

    def oracle(inp):
        torch = _torch()
        a = args(inp)
        targs = []
        for i, v in enumerate(a):
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                targs.append(torch.tensor(v, dtype=torch.float64, requires_grad=i in diff))
            elif isinstance(v, np.ndarray):
                targs.append(torch.tensor(v))
            else:
                targs.append(v)
        out = torch_fn(*targs)
        res = {output: out.detach().numpy()}
        if grads:
            gs = torch.autograd.grad(out, [targs[i] for i in diff], grad_outputs=torch.tensor(inp[upstream]),
                                     allow_unused=True)
            for g_name, i, g in zip(grads, diff, gs):
                res[g_name] = np.zeros(a[i].shape) if g is None else g.detach().numpy()
        return res
    return oracle


class Layer:
    """The declared checks of one forward/backward pair; made by :func:`layer`.

    ``forward_probe`` and ``backward_probe`` are the pair's probes, for a module that declares a
    further check of the same pair (the side effects of a backward, say).
    """

    def __init__(self, forward: str, backward: Optional[str], forward_probe, backward_probe):
        self.forward, self.backward = forward, backward
        self.forward_probe, self.backward_probe = forward_probe, backward_probe


def layer(forward: str, backward: Optional[str], cases: Cases, oracle: Callable[[dict], dict], *,
          args: Callable[[dict], list], outputs: Sequence[str] = ("out",), grads: Sequence[str] = (),
          upstream: Sequence[str] = ("dout",), forward_checks: Optional[Dict[str, Sequence[str]]] = None,
          groups: Optional[Dict[str, Sequence[str]]] = None, hints: Hints = None, tol: float = 1e-9,
          forward_label: str = "{key} from {fn}", forward_oracle: str = "PyTorch", forward_says: str = SAYS,
          forward_says_oracle: Optional[str] = None, shown: Optional[Mapping[str, str]] = None,
          grad_label: str = "{key} from {fn}", grad_oracle: str = "PyTorch autograd", grad_says: str = SAYS,
          grad_says_oracle: Optional[str] = None, missing: Optional[str] = None,
          where: Optional[Callable[[dict], str]] = None, describe: Optional[Callable[[dict], str]] = None,
          errstate: Optional[Dict[str, str]] = None, compare_with: Callable = compare,
          backward_probe: Optional[Callable] = None, backward_cases: Optional[Cases] = None,
          copy_args: bool = True, forward_doc: str = "{fn}: {keys} against {oracle}",
          grad_doc: str = "{fn}: {keys} against {oracle}") -> Layer:
    """Declare the checks of the pair ``forward`` / ``backward``.

    The contract: ``forward(*args(case)) -> (*outputs, cache)`` and
    ``backward(*[case[u] for u in upstream], cache) -> grads`` (in that order). Every argument
    is a fresh deep copy, so a function that writes into its inputs cannot change the case.

    oracle(case) -> {name: expected value} for every output and gradient
    forward_checks  {check name: outputs it grades}; default {forward: outputs}
    groups          {suffix: gradients graded together}, checks "BACKWARD.SUFFIX"; default one
                    check per gradient
    describe        optional describe(case) -> the case in words, added to every failure
                    ("[inputs: stride 2, pad 0]")
    errstate        optional np.errstate settings the student's functions run under, e.g.
                    {"over": "raise"} where the notebook calls an overflowing formula a trap;
                    the error fails the check with the hint hints["overflow"]
    backward_probe  optional probe in place of the standard one (it must return every gradient)
    backward_cases  the backward's cases when they are not the forward's
    copy_args       False when ``args`` makes its own copies (to keep two arguments one array)
    The labels, oracle names and messages are those of :func:`judge_values`.
    """
    n_out = len(outputs)
    who = f"{forward} or {backward}" if backward else forward

    def guarded(probe, who=who):
        if errstate is None:
            return probe

        def probe_guarded(fns, inp):
            try:
                with np.errstate(**errstate):
                    return probe(fns, inp)
            except FloatingPointError as exc:
                overflow = _hint(hints, "overflow")
                raise CheckFailed(f"{who} hit a floating-point error ({exc})"
                                  + (f". Hint: {overflow}" if overflow else "")) from None
        return probe_guarded

    def described(judge):
        if describe is None:
            return judge

        def judge_described(inp, outp):
            try:
                return judge(inp, outp)
            except CheckFailed as exc:
                raise CheckFailed(f"{exc} [inputs: {describe(inp)}]") from None
        return judge_described

    def run_forward(fns, inp):
        res = call(fns[0], forward, *(deep_copy(args(inp)) if copy_args else args(inp)), returns=n_out + 1)
        return res[:n_out], res[n_out]

    def probe_forward(fns, inp):
        outs, _cache = run_forward(fns, inp)
        return {o: as_wire_array(o, v) for o, v in zip(outputs, outs)}

    def probe_backward(fns, inp):
        _outs, cache = run_forward(fns, inp)
        res = call(fns[1], backward, *[deep_copy(inp[u]) for u in upstream], cache, returns=len(grads))
        if len(grads) == 1:
            res = (res,)
        return {g: as_wire_array(g, v) for g, v in zip(grads, res)}

    probe_forward = guarded(probe_forward, forward)
    for check_name, keys in ({forward: tuple(outputs)} if forward_checks is None else forward_checks).items():
        says_oracle = forward_says_oracle if forward_says_oracle is not None else forward_oracle
        register(check_name, (forward,), cases, probe_forward,
                 described(judge_values(keys, oracle, forward, label=forward_label, hints=hints, tol=tol,
                                        oracle_name=forward_oracle, says=forward_says,
                                        says_oracle=forward_says_oracle, shown=shown, where=where,
                                        compare_with=compare_with)),
                 doc=forward_doc.format(fn=forward, keys=", ".join(keys), oracle=says_oracle))
    if backward is None:
        return Layer(forward, None, probe_forward, None)

    probe_back = guarded(backward_probe or probe_backward)
    for suffix, keys in (groups or {g: (g,) for g in grads}).items():
        says_oracle = grad_says_oracle if grad_says_oracle is not None else grad_oracle
        register(f"{backward}.{suffix}", (forward, backward), backward_cases or cases, probe_back,
                 described(judge_values(keys, oracle, backward, label=grad_label, hints=hints, tol=tol,
                                        oracle_name=grad_oracle, says=grad_says, says_oracle=grad_says_oracle,
                                        where=where, compare_with=compare_with, missing=missing)),
                 doc=grad_doc.format(fn=backward, keys=", ".join(keys), oracle=says_oracle))
    return Layer(forward, backward, probe_forward, probe_back)


def torch_layer(name: str, cases: Cases, torch_fn: Callable, grads: Sequence[str],
                names: Optional[Sequence[str]] = None, **declared) -> Layer:
    """The checks of a layer pair whose oracle is a torch function of the case's ``args``.

    Checks "NAME_forward" (the output against ``torch_fn``) and "NAME_backward.GRAD" per gradient
    (against autograd of ``torch_fn`` for the upstream gradient ``case["dout"]``), each case
    ``{"args": [forward arguments], "dout": ...}``; gradient j is taken with respect to args[j].
    ``names``: (forward, backward) when they are not NAME_forward, NAME_backward.
    """
    fwd, bwd = names or (f"{name}_forward", f"{name}_backward")
    return layer(fwd, bwd, cases, autograd_oracle(torch_fn, grads), args=lambda inp: inp["args"], grads=grads,
                 forward_label="{fn}'s output", shown={"out": "output"},
                 forward_doc="{fn}: the output against PyTorch", grad_doc="{fn}: {keys} against PyTorch autograd",
                 **declared)


def port(check_name: str, fn_name: str, subs: Sequence[str], adapters: Callable,
                  renames: Dict[str, str], doc: str = "") -> None:
    """Register ``check_name``: the earlier checks ``subs`` run on ``fn_name`` through ``adapters``.

    adapters(student_fn, fn_name, sub_check_name) -> {numpy-contract name: function}
    renames  {numpy name: what to call it in messages}, e.g. the backward -> "autograd through ..."
    """
    # one pass, longest names first, so that a replacement is never renamed again
    pattern = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(renames, key=len, reverse=True)) + r")\b")

    def rename(text: str) -> str:
        return pattern.sub(lambda m: renames[m.group(1)], text)

    def inputs(rng, hidden):
        return {s: get(s).inputs(rng, hidden) for s in subs}
    inputs.case_parts = tuple(subs)     # the fixed cases are the earlier checks' (core.case_listing)

    def probe(fns, inp):
        out = {}
        for s in subs:
            sub = get(s)
            table = adapters(fns[0], fn_name, s)
            try:
                out[s] = sub.probe(tuple(table[f] for f in sub.functions), inp[s])
            except NotImplementedYet as exc:
                raise NotImplementedYet(rename(str(exc))) from None
            except CheckFailed as exc:
                raise CheckFailed(rename(str(exc))) from None
        return out

    def judge(inp, out):
        verdicts = []
        for s in subs:
            try:
                verdicts.append(get(s).judge(inp[s], out[s]) or "correct")
            except CheckFailed as exc:
                raise CheckFailed(rename(str(exc))) from None
        return rename("; ".join(verdicts))

    register(check_name, (fn_name,), inputs, probe, judge, doc=doc or f"{fn_name}: {', '.join(subs)}")
