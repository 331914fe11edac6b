"""Checks of dropout (assignment 05): inverted dropout, train and test mode, its backward.

Oracle: the definition, in a form that holds whatever random numbers a correct implementation
draws: every output is 0 or x / p, about a fraction p of the units is kept, test mode is the
identity, and the backward pass lets the gradient through exactly where the forward kept a
unit, scaled by 1 / p.
"""
from __future__ import annotations

import math

import numpy as np

from dlhw.checks.core import Case, Cases, call, compare, fail, register
from dlhw.checks.helpers import as_float_array as _as_float_array


# =========================================================================== dropout
def _drop_make(ndim, p=None):
    def make(rng):
        if ndim == 3:
            N, T = int(rng.integers(20, 60)), int(rng.integers(5, 20))
            shape = (N, T, max(int(rng.integers(20, 200)), -(-60_000 // (N * T))))
        else:
            shape = (int(rng.integers(150, 250)), int(rng.integers(400, 600)))
        # a keep probability other than 1/2, so that keep and drop probabilities cannot be confused
        keep = float(rng.choice([0.2, 0.35, 0.6, 0.7, 0.8, 0.9])) if p is None else p
        seeds = rng.integers(0, 2**31, size=3)
        # a standard normal is never exactly 0, so out == 0 marks exactly the dropped units
        return {"x": rng.standard_normal(shape), "dout": rng.standard_normal(shape), "p": keep,
                "seed": int(seeds[0]), "seed2": int(seeds[1])}
    return make


_DROP_CASES = Cases([
    Case("(N, D), p < 1", {"2-D x", "p < 1"}, _drop_make(2)),
    Case("(N, T, D), p < 1", {"leading axes", "p < 1"}, _drop_make(3)),
    Case("p = 1 (dropout off)", {"2-D x", "p = 1"}, _drop_make(2, p=1.0)),
], measure=lambda i: {"leading axes" if i["x"].ndim > 2 else "2-D x", "p = 1" if i["p"] == 1 else "p < 1"})


def _drop_probe(fns, inp):
    x, p = inp["x"], inp["p"]
    outs = {}
    for key, seed in (("out", inp["seed"]), ("again", inp["seed"]), ("other", inp["seed2"]), ("noseed", None)):
        param = {"mode": "train", "p": p}
        if seed is not None:
            param["seed"] = seed
        outs[key], _ = call(fns[0], "dropout_forward", x.copy(), param, returns=2)
    return outs


def _judge_dropout_sample(inp, what, got):
    """Every entry 0 or x / p, the fraction kept ~p, masks independent over examples and features."""
    x, p = inp["x"], inp["p"]
    got = _as_float_array(what, got)
    if got.shape != x.shape:
        fail(f"{what} has shape {got.shape}; expected x's shape {x.shape}")
    kept = got != 0
    scaled = x / p
    bad = kept & ~np.isclose(got, scaled, rtol=1e-12, atol=0)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        ratio = got[i] / x[i]
        msg = (f"{what}: a kept unit must be x / p (inverted dropout); at index {i} x = {x[i]:.6g}, p = {p:g}, "
               f"yours {got[i]:.6g} (out / x = {ratio:.4g}, expected 1 / p = {1 / p:.4g})")
        if np.isclose(ratio, 1.0):
            msg += ": the kept units are not divided by p"
        elif np.isclose(ratio, p):
            msg += ": multiplied by p instead of divided"
        elif p < 1 and np.isclose(ratio, 1 / (1 - p)):
            msg += ": divided by 1 - p (PyTorch's convention); here p is the probability of keeping a unit"
        fail(msg)
    frac = float(kept.mean())
    sd = math.sqrt(p * (1 - p) / x.size)
    if abs(frac - p) > max(6 * sd, 1e-12):
        msg = (f"{what}: {frac:.4f} of the units are kept; p = {p:g} is the probability of KEEPING a unit, "
               f"so about {p:g} of them should be (tolerance {6 * sd:.4f} over {x.size} units)")
        if abs(frac - (1 - p)) <= 6 * sd:
            msg += ": yours drops with probability p (PyTorch's convention); here p is the keep probability"
        fail(msg)
    if 0 < frac < 1:
        rows = kept.reshape(x.shape[0], -1)
        cols = kept.reshape(-1, x.shape[-1])
        if (rows == rows[0]).all() or (cols == cols[:, :1]).all():
            fail(f"{what}: the mask is the same for every {'example' if (rows == rows[0]).all() else 'feature'}: "
                 "draw one independent decision per unit, a mask of x's full shape")
    return kept, frac


def _drop_judge(inp, out):
    kept, frac = _judge_dropout_sample(inp, "dropout_forward's output in train mode", out["out"])
    _judge_dropout_sample(inp, "dropout_forward's output without a seed", out["noseed"])
    again = _as_float_array("dropout_forward's second output", out["again"])
    if again.shape != kept.shape or not np.array_equal(again, out["out"]):
        fail("dropout_forward: two calls with the same dropout_param['seed'] gave different masks: when a "
             "seed is given, draw the mask from np.random.default_rng(seed)")
    if 0 < inp["p"] < 1 and np.array_equal(_as_float_array("dropout_forward's output", out["other"]), out["out"]):
        fail("dropout_forward: different seeds gave the same mask: the seed is ignored")
    return (f"every output is 0 or x / p, {frac:.4f} of {kept.size} units kept (p = {inp['p']:g}), masks "
            "independent per unit and reproducible from the seed")


register("dropout_forward", ("dropout_forward",), _DROP_CASES, _drop_probe, _drop_judge,
         doc="dropout_forward: train mode (0 or x / p, keep fraction p, seeds)")


def _drop_test_probe(fns, inp):
    out, _ = call(fns[0], "dropout_forward", inp["x"].copy(), {"mode": "test", "p": inp["p"], "seed": inp["seed"]},
                  returns=2)
    return {"out": out}


def _drop_test_judge(inp, out):
    got = _as_float_array("dropout_forward's output in test mode", out["out"])
    x, p = inp["x"], inp["p"]
    hint = ""
    if got.shape == x.shape and p < 1:
        if np.allclose(got, x * p):
            hint = ("yours is x * p, the weight-scaling rule of dropout WITHOUT the inversion; inverted "
                    "dropout already divided by p during training, so test mode is the identity")
        elif np.allclose(got, x / p):
            hint = "yours is x / p; inverted dropout scales in training only, test mode is the identity"
        elif np.any(got == 0):
            hint = "units are dropped in test mode; every unit is on at test time"
    err = compare("dropout_forward's output in test mode", got, x, tol=1e-12, oracle="x (the identity)",
                  hint=hint or "test mode returns x unchanged")
    return f"test mode is the identity (relative error {err:.1e})"


register("dropout_forward.test", ("dropout_forward",), _DROP_CASES, _drop_test_probe, _drop_test_judge,
         doc="dropout_forward: test mode is the identity")


def _drop_backward_probe(fns, inp):
    out, cache = call(fns[0], "dropout_forward", inp["x"].copy(),
                      {"mode": "train", "p": inp["p"], "seed": inp["seed"]}, returns=2)
    dx = call(fns[1], "dropout_backward", inp["dout"].copy(), cache)
    _, cache_t = call(fns[0], "dropout_forward", inp["x"].copy(), {"mode": "test", "p": inp["p"]}, returns=2)
    dx_t = call(fns[1], "dropout_backward", inp["dout"].copy(), cache_t)
    return {"out": out, "dx": dx, "dx_test": dx_t}


def _drop_backward_judge(inp, out):
    dout, p = inp["dout"], inp["p"]
    fwd = _as_float_array("dropout_forward's output", out["out"])
    if fwd.shape != dout.shape:
        fail(f"dropout_forward's output has shape {fwd.shape}; expected x's shape {dout.shape}")
    kept = fwd != 0
    expected = dout * kept / p           # d out / d x = mask / p, elementwise
    got = _as_float_array("dx from dropout_backward", out["dx"])
    hint = ("dx = dout * mask / p with the mask of the FORWARD pass (keep it in the cache): the gradient "
            "flows exactly through the units the forward kept")
    if got.shape == dout.shape:
        if np.allclose(got, dout * kept, rtol=1e-12, atol=0) and p < 1:
            hint = "yours is dout * mask without the 1 / p: the forward divided the kept units by p"
        elif np.any((got != 0) != kept) and p < 1:
            hint = ("your dx is nonzero where the forward dropped the unit (or zero where it kept it): "
                    "use the forward's mask from the cache, do not draw a new one")
    err = compare("dx from dropout_backward (train mode)", got, expected, tol=1e-12,
                  oracle="dout * (out != 0) / p", hint=hint)
    err_t = compare("dx from dropout_backward (test mode)", out["dx_test"], dout, tol=1e-12,
                    oracle="dout (test mode is the identity)",
                    hint="in test mode the forward is the identity, so dx = dout")
    return (f"dx = dout * mask / p with the forward's mask (relative error {err:.1e}); test mode passes "
            f"dout through (relative error {err_t:.1e})")


register("dropout_backward.dx", ("dropout_forward", "dropout_backward"), _DROP_CASES, _drop_backward_probe,
         _drop_backward_judge, doc="dropout_backward: the forward's mask, scaled by 1 / p")
