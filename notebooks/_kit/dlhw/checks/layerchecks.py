"""A factory for the checks of a layer pair ``NAME_forward`` / ``NAME_backward``.

One call registers a forward check (``"NAME_forward"``) and one check per gradient
(``"NAME_backward.dx"``, ...), each a graded piece of its own so that partial work earns
partial credit. The oracle is a PyTorch function of the same inputs in float64: its value for
the forward, ``torch.autograd`` for the gradients (and the tests of dlhw compare those with
centred differences, so the oracle itself is checked twice).
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import numpy as np

from dlhw.checks.core import CheckFailed, call, compare, register

__all__ = ["register_layer", "torch_grads"]


def _torch():
    import torch
    return torch


def torch_grads(torch_fn: Callable, args: Sequence, dout: np.ndarray, diff: Sequence[int]):
    """Value of ``torch_fn(*args)`` and the gradients of ``sum(out * dout)`` wrt ``args[i], i in diff``."""
    torch = _torch()
    targs = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            t = torch.tensor(a, dtype=torch.float64, requires_grad=i in diff)
        elif isinstance(a, np.ndarray):
            t = torch.tensor(a)
        else:
            t = a
        targs.append(t)
    out = torch_fn(*targs)
    grads = {}
    if dout is not None and diff:
        gs = torch.autograd.grad(out, [targs[i] for i in diff], grad_outputs=torch.tensor(dout),
                                 allow_unused=True)
        for i, g in zip(diff, gs):
            grads[i] = np.zeros(args[i].shape) if g is None else g.detach().numpy()
    return out.detach().numpy(), grads


def register_layer(name: str, make_inputs: Callable[[np.random.Generator, bool], dict],
                   torch_fn: Callable, arg_names: Sequence[str], grad_names: Sequence[str],
                   diff: Optional[Sequence[int]] = None, forward_extra: Sequence[str] = (),
                   hints: Optional[Dict[str, str]] = None, tol: float = 1e-9,
                   backward: bool = True, describe: Optional[Callable[[dict], str]] = None,
                   names: Optional[Sequence[str]] = None,
                   errstate: Optional[Dict[str, str]] = None) -> None:
    """Register the checks of the layer ``name``.

    make_inputs(rng, hidden) -> {"args": [forward arguments...], "dout": upstream gradient}
    torch_fn(*torch args) -> output tensor (the oracle)
    arg_names  names of the forward arguments (for messages), e.g. ("x", "w", "b")
    grad_names names of the backward's results, e.g. ("dx", "dw", "db"), in the order returned
    diff       indices of the forward arguments the gradients are taken wrt (default 0..len-1)
    forward_extra  names of non-array forward arguments passed through (documentation only)
    describe   optional describe(inputs) -> str, the case in words ("stride 2, pad 0, ..."),
               added to every failure message so that a failing hidden case says what it was
    names      optional (forward, backward) function names when they are not NAME_forward and
               NAME_backward (e.g. ("conv_forward_fast", "conv_backward_fast"))
    errstate   optional np.errstate settings the student's functions run under, e.g.
               {"over": "raise"} where the notebook calls an overflowing formula a trap; the
               error fails the check with the hint hints["overflow"]
    """
    hints = hints or {}
    diff = list(range(len(grad_names))) if diff is None else list(diff)
    fwd, bwd = names if names is not None else (f"{name}_forward", f"{name}_backward")

    def guarded(probe, who=f"{fwd} or {bwd}"):
        if errstate is None:
            return probe

        def probe_guarded(fns, inp):
            try:
                with np.errstate(**errstate):
                    return probe(fns, inp)
            except FloatingPointError as exc:
                raise CheckFailed(f"{who} hit a floating-point error ({exc})"
                                  + (f". Hint: {hints['overflow']}" if hints.get("overflow") else "")) from None
        return probe_guarded

    def probe_forward(fns, inp):
        out, _cache = call(fns[0], fwd, *inp["args"], returns=2)
        return {"out": out}
    probe_forward = guarded(probe_forward, fwd)

    def described(judge):
        if describe is None:
            return judge

        def judge_described(inp, outp):
            try:
                return judge(inp, outp)
            except CheckFailed as exc:
                raise CheckFailed(f"{exc} [inputs: {describe(inp)}]") from None
        return judge_described

    def judge_forward(inp, outp):
        expected, _ = torch_grads(torch_fn, inp["args"], None, [])
        err = compare(f"{fwd}'s output", outp["out"], expected, tol=tol, hint=hints.get("out", ""))
        return f"output matches PyTorch (relative error {err:.1e} <= {tol:.0e})"

    register(fwd, (fwd,), make_inputs, probe_forward, described(judge_forward),
             doc=f"{fwd}: the output against PyTorch")

    if not backward:
        return

    @guarded
    def probe_backward(fns, inp):
        _out, cache = call(fns[0], fwd, *inp["args"], returns=2)
        grads = call(fns[1], bwd, inp["dout"], cache, returns=len(grad_names))
        if len(grad_names) == 1:
            grads = (grads,)
        return {g: v for g, v in zip(grad_names, grads)}

    for gname, argi in zip(grad_names, diff):
        def judge_grad(inp, outp, gname=gname, argi=argi):
            _, grads = torch_grads(torch_fn, inp["args"], inp["dout"], diff)
            if gname not in outp:
                raise CheckFailed(f"{bwd} returned no {gname}")
            err = compare(f"{gname} from {bwd}", outp[gname], grads[argi], tol=tol,
                          hint=hints.get(gname, ""), oracle="PyTorch autograd")
            return f"{gname} matches PyTorch autograd (relative error {err:.1e} <= {tol:.0e})"

        register(f"{bwd}.{gname}", (fwd, bwd), make_inputs, probe_backward, described(judge_grad),
                 doc=f"{bwd}: {gname} against PyTorch autograd")
