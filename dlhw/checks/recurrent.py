"""Checks of recurrent networks (assignment 07): RNN and LSTM steps and sequences, backpropagation
through time, gradient clipping.

Oracles, all in float64: ``torch.nn.RNNCell`` / ``torch.nn.RNN`` (tanh) and ``torch.nn.LSTMCell``
/ ``torch.nn.LSTM`` with the student's weights copied in, gradients from ``torch.autograd``,
and ``torch.nn.utils.clip_grad_norm_`` for clipping. PyTorch computes ``x W^T``, so the weights
go in transposed; it stacks the LSTM gates i, f, g, o where the graded API stacks i, f, o, g, so
the last two H-blocks are swapped on the way in and on the way back (the swap is its own
inverse); its second bias (``bias_hh``) is set to zero.

Tolerance: 1e-9 of the largest entry of each array (``compare`` is normwise). Every quantity is
a short chain of float64 sums and products, so a correct implementation that merely orders its
sums differently stays below 1e-13; a slip in a derivative, a missing term or a step off by one
lands far above.

Every check runs a fixed list of cases, visible and hidden alike (hidden ones draw other sizes
and seeds): a batch of one, a hidden size H = 1, sequences of length T = 1, longer sequences (T of
20 to 30), an upstream gradient that reaches only the last step (the classifier setting:
everything earlier must come through the recurrence), larger weights that push the units towards
saturation; for clipping, all-zero gradients, a single array, and arrays each below max_norm
whose joint norm is above it.
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, as_wire_array as _out, call, compare, fail, register
from dlhw.checks.helpers import deep_copy, ri as _ri, torch as _torch
from dlhw.checks.spec import layer


def _perm(H):
    """Indices that turn i, f, o, g blocks into i, f, g, o blocks (and back)."""
    return np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]


def _copy_weights(module, Wx, Wh, b, perm=None, suffix=""):
    torch = _torch()
    if perm is not None:
        Wx, Wh, b = Wx[:, perm], Wh[:, perm], b[perm]
    with torch.no_grad():
        getattr(module, "weight_ih" + suffix).copy_(torch.tensor(Wx.T))
        getattr(module, "weight_hh" + suffix).copy_(torch.tensor(Wh.T))
        getattr(module, "bias_ih" + suffix).copy_(torch.tensor(b))
        getattr(module, "bias_hh" + suffix).zero_()


def _weight_grads(module, perm=None, suffix=""):
    gx = getattr(module, "weight_ih" + suffix).grad.numpy().T
    gh = getattr(module, "weight_hh" + suffix).grad.numpy().T
    gb = getattr(module, "bias_ih" + suffix).grad.numpy()
    if perm is not None:
        gx, gh, gb = gx[:, perm], gh[:, perm], gb[perm]
    return gx, gh, gb


# =========================================================================== oracles
def _rnn_step_oracle(case):
    torch = _torch()
    x, prev_h, Wx, Wh, b = case["args"]
    cell = torch.nn.RNNCell(Wx.shape[0], Wh.shape[0], nonlinearity="tanh").double()
    _copy_weights(cell, Wx, Wh, b)
    xt = torch.tensor(x, requires_grad=True)
    ht = torch.tensor(prev_h, requires_grad=True)
    out = cell(xt, ht)
    out.backward(torch.tensor(case["dnext_h"]))
    dWx, dWh, db = _weight_grads(cell)
    return {"next_h": out.detach().numpy(), "dx": xt.grad.numpy(), "dprev_h": ht.grad.numpy(),
            "dWx": dWx, "dWh": dWh, "db": db}


def _rnn_seq_oracle(case):
    torch = _torch()
    x, h0, Wx, Wh, b = case["args"]
    rnn = torch.nn.RNN(Wx.shape[0], Wh.shape[0], nonlinearity="tanh", batch_first=True).double()
    _copy_weights(rnn, Wx, Wh, b, suffix="_l0")
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    h, _ = rnn(xt, h0t)
    h.backward(torch.tensor(case["dh"]))
    dWx, dWh, db = _weight_grads(rnn, suffix="_l0")
    return {"h": h.detach().numpy(), "dx": xt.grad.numpy(), "dh0": h0t.grad[0].numpy(),
            "dWx": dWx, "dWh": dWh, "db": db}


def _lstm_step_oracle(case):
    torch = _torch()
    x, prev_h, prev_c, Wx, Wh, b = case["args"]
    H = Wh.shape[0]
    p = _perm(H)
    cell = torch.nn.LSTMCell(Wx.shape[0], H).double()
    _copy_weights(cell, Wx, Wh, b, perm=p)
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, prev_h, prev_c))
    next_h, next_c = cell(xt, (ht, ct))
    torch.autograd.backward([next_h, next_c], [torch.tensor(case["dnext_h"]), torch.tensor(case["dnext_c"])])
    dWx, dWh, db = _weight_grads(cell, perm=p)
    return {"next_h": next_h.detach().numpy(), "next_c": next_c.detach().numpy(), "dx": xt.grad.numpy(),
            "dprev_h": ht.grad.numpy(), "dprev_c": ct.grad.numpy(), "dWx": dWx, "dWh": dWh, "db": db}


def _lstm_seq_oracle(case):
    torch = _torch()
    x, h0, Wx, Wh, b = case["args"]
    H = Wh.shape[0]
    p = _perm(H)
    lstm = torch.nn.LSTM(Wx.shape[0], H, batch_first=True).double()
    _copy_weights(lstm, Wx, Wh, b, perm=p, suffix="_l0")
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    h, _ = lstm(xt, (h0t, torch.zeros_like(h0t)))          # the graded API starts from c0 = 0
    h.backward(torch.tensor(case["dh"]))
    dWx, dWh, db = _weight_grads(lstm, perm=p, suffix="_l0")
    return {"h": h.detach().numpy(), "dx": xt.grad.numpy(), "dh0": h0t.grad[0].numpy(),
            "dWx": dWx, "dWh": dWh, "db": db}


# =========================================================================== inputs
def _weights(rng, D, H, G, scale):
    """Wx (D, G), Wh (H, G), b (G,) with pre-activations of order `scale` for unit inputs."""
    return (rng.standard_normal((D, G)) * scale / np.sqrt(D),
            rng.standard_normal((H, G)) * scale / np.sqrt(H),
            rng.standard_normal(G) * 0.5 * scale)


def _step_case(rng, N, D, H, lstm, scale=1.0, what=""):
    G = 4 * H if lstm else H
    x = rng.standard_normal((N, D))
    prev_h = np.tanh(rng.standard_normal((N, H)) * 1.5)
    Wx, Wh, b = _weights(rng, D, H, G, scale)
    case = {"what": what or f"N={N}, D={D}, H={H}", "dnext_h": rng.standard_normal((N, H)), "scale": scale}
    if lstm:
        prev_c = rng.standard_normal((N, H)) * 1.5
        case["args"] = [x, prev_h, prev_c, Wx, Wh, b]
        case["dnext_c"] = rng.standard_normal((N, H))
    else:
        case["args"] = [x, prev_h, Wx, Wh, b]
    return case


def _step_properties(case):
    N, H = case["args"][0].shape[0], case["args"][1].shape[1]
    props = {"N = 1" if N == 1 else "N > 1", "H = 1" if H == 1 else "H > 1"}
    if case.get("scale", 1.0) > 1.0:
        props.add("large weights")
    return props


def _step_inputs(lstm):
    # visible and hidden alike (hidden ones draw other sizes): a batch of one, a hidden size
    # of one, large weights that push the units towards saturation
    return Cases([
        Case("N > 1, H > 1", {"N > 1", "H > 1"},
             (lambda rng: _step_case(rng, _ri(rng, 2, 4), _ri(rng, 2, 5), _ri(rng, 2, 6), lstm))),
        Case("hidden size one", {"N > 1", "H = 1"},
             (lambda rng: _step_case(rng, _ri(rng, 2, 4), _ri(rng, 1, 3), 1, lstm))),
        Case("a batch of one", {"N = 1", "H > 1"},
             (lambda rng: _step_case(rng, 1, _ri(rng, 2, 6), _ri(rng, 2, 6), lstm))),
        Case("large weights", {"N > 1", "H > 1", "large weights"},
             (lambda rng: _step_case(rng, _ri(rng, 4, 7), _ri(rng, 5, 9), _ri(rng, 6, 10), lstm, scale=3.0))),
    ], measure=_step_properties)


def _seq_case(rng, N, T, D, H, lstm, last_only=False, what=""):
    G = 4 * H if lstm else H
    x = rng.standard_normal((N, T, D))
    h0 = np.tanh(rng.standard_normal((N, H)) * 1.5)
    # recurrent weights of gain ~0.9: over 30 steps the gradient neither vanishes nor explodes
    Wx = rng.standard_normal((D, G)) / np.sqrt(D)
    Wh = rng.standard_normal((H, G)) * 0.9 / np.sqrt(H)
    b = rng.standard_normal(G) * 0.5
    dh = rng.standard_normal((N, T, H))
    if last_only:
        dh[:, :-1] = 0.0
    desc = f"N={N}, T={T}, D={D}, H={H}" + (", dh nonzero only at the last step" if last_only else "")
    return {"what": what or desc, "args": [x, h0, Wx, Wh, b], "dh": dh}


def _seq_properties(case):
    x, dh = case["args"][0], case["dh"]
    N, T, H = x.shape[0], x.shape[1], dh.shape[2]
    props = {"N = 1" if N == 1 else "N > 1", "H = 1" if H == 1 else "H > 1",
             "T = 1" if T == 1 else ("long sequence" if T >= 20 else "T > 1")}
    if T > 1 and not np.any(dh[:, :-1]):
        props.add("dh at the last step only")
    return props


def _seq_inputs(lstm):
    # visible and hidden alike (hidden ones draw other sizes)
    return Cases([
        Case("a short sequence", {"N > 1", "H > 1", "T > 1"},
             (lambda rng: _seq_case(rng, _ri(rng, 2, 4), _ri(rng, 3, 6), _ri(rng, 2, 5), _ri(rng, 2, 5), lstm))),
        Case("T = 1", {"N > 1", "H > 1", "T = 1"},
             (lambda rng: _seq_case(rng, _ri(rng, 2, 4), 1, _ri(rng, 2, 4), _ri(rng, 2, 5), lstm))),
        Case("H = 1", {"N > 1", "H = 1", "T > 1"},
             (lambda rng: _seq_case(rng, _ri(rng, 2, 3), _ri(rng, 4, 7), _ri(rng, 1, 3), 1, lstm))),
        Case("a long sequence, N = 1", {"N = 1", "H > 1", "long sequence"},
             (lambda rng: _seq_case(rng, 1, _ri(rng, 20, 30), _ri(rng, 2, 4), _ri(rng, 3, 6), lstm))),
        # the classifier setting: everything earlier must come through the recurrence
        Case("dh at the last step only", {"N > 1", "H > 1", "T > 1", "dh at the last step only"},
             (lambda rng: _seq_case(rng, _ri(rng, 2, 4), _ri(rng, 6, 10), _ri(rng, 2, 4), _ri(rng, 2, 5), lstm,
                                        last_only=True))),
    ], measure=_seq_properties)


# =========================================================================== declared pairs
SEQ_GRADS = ("dx", "dh0", "dWx", "dWh", "db")
_SEQ_GROUPS = {"dx": ("dx",), "dh0": ("dh0",), "dparams": ("dWx", "dWh", "db")}


def _recurrent(forward, backward, cases, oracle, oracle_name, hints, outputs, grads, upstream, groups=None,
               forward_checks=None, forward_oracle=None, backward_probe=None):
    """The checks of a recurrent pair: outputs against ``oracle_name``, gradients against its autograd."""
    return layer(forward, backward, cases, oracle, args=lambda case: case["args"], outputs=outputs, grads=grads,
                 upstream=upstream, groups=groups, forward_checks=forward_checks, hints=hints,
                 forward_says_oracle=forward_oracle or oracle_name, grad_oracle=f"{oracle_name} autograd",
                 backward_probe=backward_probe, forward_doc="{fn}: {keys} against " + oracle_name,
                 grad_doc="{fn}: {keys} against " + oracle_name + " autograd")


# =========================================================================== RNN: one step
RNN_STEP_HINTS = {
    "next_h": "next_h = tanh(x @ Wx + prev_h @ Wh + b), with b broadcast over the rows",
    "dx": "da = dnext_h * (1 - next_h**2) is the gradient of the pre-activation (tanh' = 1 - tanh^2, "
          "not (1 - tanh)^2); dx = da @ Wx.T",
    "dprev_h": "dprev_h = da @ Wh.T with da = dnext_h * (1 - next_h**2)",
    "dWx": "dWx = x.T @ da with da = dnext_h * (1 - next_h**2)",
    "dWh": "dWh = prev_h.T @ da: the state that entered the step, not next_h",
    "db": "db = da summed over the batch (axis 0), da = dnext_h * (1 - next_h**2)",
}


RNN_STEP_GRADS = ("dx", "dprev_h", "dWx", "dWh", "db")
_recurrent("rnn_step_forward", "rnn_step_backward", _step_inputs(False), _rnn_step_oracle, "torch.nn.RNNCell",
           RNN_STEP_HINTS, ("next_h",), RNN_STEP_GRADS, ("dnext_h",))


# =========================================================================== RNN: a sequence
RNN_SEQ_HINTS = {
    "h": "h[:, t] = tanh(x[:, t] @ Wx + h_prev @ Wh + b) with h_prev = h0 for t = 0 and h[:, t-1] after; "
         "h holds h_1 ... h_T (not h0)",
    "dx": "run the steps backwards; the gradient reaching h_t is dh[:, t] PLUS the dprev_h that step t+1 "
          "sent back; then da_t = that sum * (1 - h_t**2) and dx[:, t] = da_t @ Wx.T",
    "dh0": "dh0 is the dprev_h that the first step (t = 0) sends back, after the whole backward loop",
    "dWx": "dWx is a sum over all steps of x_t.T @ da_t (the weights are shared by every step)",
    "dWh": "dWh is a sum over all steps of h_{t-1}.T @ da_t: step t's input state, h0 for t = 0",
    "db": "db is a sum over all steps and the batch of da_t",
}


_recurrent("rnn_forward", "rnn_backward", _seq_inputs(False), _rnn_seq_oracle, "torch.nn.RNN", RNN_SEQ_HINTS,
           ("h",), SEQ_GRADS, ("dh",), groups=_SEQ_GROUPS)


# =========================================================================== clipping
def _clip_case(rng, shapes, ratio, what, zero=False):
    """Gradients of the given shapes whose joint norm is ``ratio`` times max_norm."""
    grads = [np.zeros(s) if zero else rng.standard_normal(s) * rng.uniform(0.5, 2.0) for s in shapes]
    total = float(np.linalg.norm([np.linalg.norm(g) for g in grads]))   # the joint norm (not the solution's spelling)
    max_norm = float(rng.uniform(0.5, 5.0)) if zero else total / ratio
    return {"what": what, "grads": grads, "max_norm": max_norm}


def _clip_small(rng):
    # each array's own norm is below max_norm (0.6 to 0.8 times it), their joint norm above it
    # (1.2 to 1.6 times): clipping each array by its own norm changes nothing
    max_norm = float(rng.uniform(0.5, 5.0))
    grads = []
    for _ in range(4):
        g = rng.standard_normal((_ri(rng, 2, 5), _ri(rng, 2, 5)))
        grads.append(g * (float(rng.uniform(0.6, 0.8)) * max_norm / np.linalg.norm(g)))
    return {"what": "four arrays, each below max_norm, jointly above it", "grads": grads, "max_norm": max_norm}


def _clip_unit(rng):
    # unit entries against max_norm = 1: clipping by value would change the entries above 1
    # only; clipping each array by its own norm gives each norm 1
    grads = [rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal((3, 2, 2))]
    return {"what": "three arrays", "grads": grads, "max_norm": 1.0}


def _clip_inputs(above):
    # visible and hidden alike (hidden ones draw other sizes and values)
    if above:
        return Cases([
            Case("three arrays, max_norm 1", {"several arrays", "above max_norm"}, _clip_unit),
            Case("one array", {"one array", "above max_norm"},
                 (lambda rng: _clip_case(rng, [(_ri(rng, 3, 8), _ri(rng, 2, 6))], float(rng.uniform(1.5, 40.0)),
                                             "one array"))),
            Case("four arrays, each below max_norm, jointly above it",
                 {"several arrays", "above max_norm", "each array below max_norm"}, _clip_small),
            Case("three arrays 1000 times over max_norm", {"several arrays", "above max_norm", "far above"},
                 (lambda rng: _clip_case(rng, [(3,), (2, 3, 4), (1,)], 1000.0,
                                             "three arrays 1000 times over max_norm"))),
        ])
    return Cases([
        Case("two arrays below max_norm", {"several arrays", "below max_norm"},
             (lambda rng: _clip_case(rng, [(_ri(rng, 2, 6), _ri(rng, 2, 6)), (_ri(rng, 2, 6),)],
                                         float(rng.uniform(0.2, 0.9)), "two arrays below max_norm"))),
        Case("all-zero gradients (norm 0)", {"several arrays", "zero gradients"},
             (lambda rng: _clip_case(rng, [(3, 4), (4,)], 1.0, "all-zero gradients (norm 0)", zero=True))),
        Case("one array just below max_norm", {"one array", "below max_norm"},
             (lambda rng: _clip_case(rng, [(_ri(rng, 2, 9),)], 0.999, "one array just below max_norm"))),
    ])


def _clip_probe(fns, case):
    grads = [g.copy() for g in case["grads"]]
    clipped, total = call(fns[0], "clip_grad_norm", grads, case["max_norm"], returns=2)
    if not isinstance(clipped, (list, tuple)):
        raise CheckFailed(f"clip_grad_norm must return (list of arrays, total_norm); its first value is a "
                          f"{type(clipped).__name__}")
    if len(clipped) != len(grads):
        raise CheckFailed(f"clip_grad_norm returned {len(clipped)} clipped arrays for {len(grads)} gradients")
    return {"clipped": {str(j): _out(f"clipped[{j}]", c) for j, c in enumerate(clipped)},
            "total_norm": _out("total_norm", total)}


def _clip_oracle(case):
    """(exact clipping, torch.nn.utils.clip_grad_norm_'s clipping, joint norm)."""
    torch = _torch()
    ts = [torch.tensor(g) for g in case["grads"]]
    total = float(torch.linalg.vector_norm(torch.cat([t.reshape(-1) for t in ts])))
    scale = case["max_norm"] / total if total > case["max_norm"] else 1.0
    exact = [g * scale for g in case["grads"]]
    params = [torch.zeros_like(t, requires_grad=True) for t in ts]
    for p, t in zip(params, ts):
        p.grad = t.clone()
    torch.nn.utils.clip_grad_norm_(params, case["max_norm"])
    return exact, [p.grad.numpy() for p in params], total


def _clip_judge(above):
    hint = ("the norm is taken over ALL entries of ALL arrays together (sqrt of the sum of every squared "
            "entry), and every array is multiplied by the same factor max_norm / total_norm"
            if above else
            "below max_norm nothing changes: the factor is min(1, max_norm / total_norm); mind total_norm = 0")

    def judge(case, o):
        worst = 0.0
        exact, theirs, total = _clip_oracle(case)
        compare("total_norm from clip_grad_norm", o["total_norm"], np.float64(total),
                hint="total_norm is the joint L2 norm of all gradients BEFORE clipping")
        for j, (e, t) in enumerate(zip(exact, theirs)):
            got = o["clipped"].get(str(j))
            try:
                err = compare(f"clipped[{j}] from clip_grad_norm", got, e, hint=hint, oracle="expected")
            except CheckFailed as exc:
                # PyTorch's convention max_norm / (total_norm + 1e-6) is accepted as well
                try:
                    err = compare(f"clipped[{j}]", got, t, oracle="PyTorch")
                except CheckFailed:
                    raise exc from None
            worst = max(worst, err)
        return (f"the clipped gradients and total_norm match torch.nn.utils.clip_grad_norm_ "
                f"(relative error {worst:.1e} <= 1e-09)")
    return judge


register("clip_grad_norm.above", ("clip_grad_norm",), _clip_inputs(True), _clip_probe, _clip_judge(True),
         doc="clip_grad_norm: gradients above max_norm scaled down together")
register("clip_grad_norm.below", ("clip_grad_norm",), _clip_inputs(False), _clip_probe, _clip_judge(False),
         doc="clip_grad_norm: gradients below max_norm left unchanged")


# =========================================================================== LSTM: one step
LSTM_STEP_HINTS = {
    "next_h": "next_h = o * tanh(next_c); gates from a = x @ Wx + prev_h @ Wh + b split into four H-wide "
              "blocks in the order i, f, o, g (sigmoid for i, f, o; tanh for g)",
    "next_c": "next_c = f ⊙ prev_c + i ⊙ g (elementwise), with the gate blocks in the order i, f, o, g "
              "(PyTorch uses i, f, g, o: do not follow it here)",
    "dx": "the cell receives dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2); the g block's "
          "pre-activation gradient is dc * i * (1 - g**2) (not (1 - g)**2); dx = da @ Wx.T",
    "dprev_h": "dprev_h = da @ Wh.T, da the (N, 4H) gradient of the pre-activations in the order i, f, o, g",
    "dprev_c": "dprev_c = f * dc with dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2): the forget gate "
               "scales what flows back to the previous cell",
    "dWx": "dWx = x.T @ da, da the (N, 4H) gradient of the pre-activations, blocks i, f, o, g",
    "dWh": "dWh = prev_h.T @ da, da the (N, 4H) gradient of the pre-activations",
    "db": "db = da summed over the batch; sigmoid' = s (1 - s), tanh' = 1 - tanh^2",
}
LSTM_STEP_GRADS = ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")




def _lstm_step_backward_probe(fns, case):
    """The gradients, what the caller's dnext_h and dnext_c hold after the call, and a second call's
    gradients on the same cache (the backward must leave its arguments alone)."""
    _h, _c, cache = call(fns[0], "lstm_step_forward", *deep_copy(case["args"]), returns=3)
    dnext_h, dnext_c = case["dnext_h"].copy(), case["dnext_c"].copy()
    grads = call(fns[1], "lstm_step_backward", dnext_h, dnext_c, cache, returns=6)
    o = {g: _out(g, v) for g, v in zip(LSTM_STEP_GRADS, grads)}
    o = {g: (v.copy() if isinstance(v, np.ndarray) else v) for g, v in o.items()}
    o["dnext_h_after"], o["dnext_c_after"] = dnext_h, dnext_c
    again = call(fns[1], "lstm_step_backward", case["dnext_h"].copy(), case["dnext_c"].copy(), cache, returns=6)
    o["again"] = {g: _out(g, v) for g, v in zip(LSTM_STEP_GRADS, again)}
    return o


_LSTM_STEP = _recurrent("lstm_step_forward", "lstm_step_backward", _step_inputs(True), _lstm_step_oracle,
                        "torch.nn.LSTMCell", LSTM_STEP_HINTS, ("next_h", "next_c"), LSTM_STEP_GRADS,
                        ("dnext_h", "dnext_c"),
                        forward_checks={"lstm_step_forward.next_h": ("next_h",),
                                        "lstm_step_forward.next_c": ("next_c",)},
                        forward_oracle="torch.nn.LSTMCell, gates permuted", backward_probe=_lstm_step_backward_probe)


def _lstm_side_effects_judge(case, o):
    # Only the side effects are judged here (the values have their own checks), on results of
    # the right shapes, so that one slip in a formula does not cost these points too.
    for name in ("dnext_h", "dnext_c"):
        after = np.asarray(o[f"{name}_after"])
        if after.shape != case[name].shape or not np.array_equal(after, case[name]):
            diff = float(np.max(np.abs(after - case[name]))) if after.shape == case[name].shape else float("nan")
            fail(f"lstm_step_backward changed the caller's {name} in place (largest change {diff:.3g}): "
                 f"a statement like `{name} += ...` adds into the array you were given, so the caller's "
                 f"gradient is silently corrupted. Hint: use a new variable, e.g. "
                 f"dc = dnext_c + dnext_h * o * (1 - tanh(next_c)**2)")
    x, prev_h, prev_c, Wx, Wh, b = case["args"]
    shapes = {"dx": x.shape, "dprev_h": prev_h.shape, "dprev_c": prev_c.shape, "dWx": Wx.shape,
              "dWh": Wh.shape, "db": b.shape}
    for g in LSTM_STEP_GRADS:
        first, second = o[g], o["again"][g]
        if first is None or np.shape(first) != shapes[g]:
            fail(f"{g} from lstm_step_backward has shape {np.shape(first)}; expected {shapes[g]}")
        if second is None or np.shape(second) != shapes[g] or not np.array_equal(
                np.asarray(first), np.asarray(second), equal_nan=True):
            fail(f"a second call of lstm_step_backward with the same arguments gave another {g}: "
                 f"the backward pass must not change its cache (or anything else it is given). "
                 f"Hint: compute into new arrays instead of updating the cached ones in place")
    return "dnext_h, dnext_c and the cache are left as they were: a second call gives the same gradients"


register("lstm_step_backward.side_effects", ("lstm_step_forward", "lstm_step_backward"), _step_inputs(True),
         _LSTM_STEP.backward_probe, _lstm_side_effects_judge,
         doc="lstm_step_backward: leaves dnext_h, dnext_c and its cache unchanged")


# =========================================================================== LSTM: a sequence
LSTM_SEQ_HINTS = {
    "h": "start from h0 and c0 = 0 (zeros, not h0) and apply the step T times; h holds h_1 ... h_T; "
         "gates in the order i, f, o, g",
    "dx": "run the steps backwards carrying two gradients: dnext_h (dh[:, t] PLUS what step t+1 sent back "
          "to h_t) and dnext_c (what step t+1 sent back to c_t, i.e. f_{t+1} * dc_{t+1})",
    "dh0": "dh0 is the dprev_h of the first step (t = 0), after the whole backward loop",
    "dWx": "dWx is a sum over all steps of x_t.T @ da_t (shared weights)",
    "dWh": "dWh is a sum over all steps of h_{t-1}.T @ da_t, with h_{-1} = h0",
    "db": "db is a sum over all steps and the batch of da_t",
}


_recurrent("lstm_forward", "lstm_backward", _seq_inputs(True), _lstm_seq_oracle, "torch.nn.LSTM", LSTM_SEQ_HINTS,
           ("h",), SEQ_GRADS, ("dh",), groups=_SEQ_GROUPS, forward_oracle="torch.nn.LSTM (gates permuted, c0 = 0)")
