"""Checks of weight initialization (assignment 05): Glorot (Xavier) and He (Kaiming), uniform and normal.

Oracles, independent of dlhw's reference: the closed-form standard deviations of Glorot and He
(the formulas of ``torch.nn.init``) and a sample drawn by ``torch.nn.init`` itself. A weight
matrix is a large random sample, so the judge tests statistics: the sample standard deviation
against the formula (within 2.5 %), the mean, the shape of the distribution (uniform: nothing
beyond the bound, half of the mass within half of it; normal: 68.3 % within one standard
deviation, tails beyond three) and a two-sample Kolmogorov-Smirnov distance to torch's sample.
Every sample holds at least 20,000 weights, which puts each tolerance five or more standard
errors away from what a correct initializer produces (a false alarm is rarer than 1 in 10^6).
"""
from __future__ import annotations

import math

import numpy as np

from dlhw.checks.core import Case, Cases, call, fail, register
from dlhw.checks.helpers import as_float_array as _as_float_array, torch as _torch

MIN_SAMPLE = 20_000                      # weights per initializer sample (see the module docstring)


# =========================================================================== initializers
# name -> (uniform?, std(fan_in, fan_out), torch initializer call, formula in words)
def _xavier_std(fi, fo):
    return math.sqrt(2.0 / (fi + fo))


def _kaiming_std(fi, fo):
    return math.sqrt(2.0 / fi)


INITS = {
    "xavier_uniform": (True, _xavier_std, lambda nn, t, g: nn.init.xavier_uniform_(t, generator=g),
                       "U(-b, b) with b = sqrt(6 / (fan_in + fan_out))"),
    "xavier_normal": (False, _xavier_std, lambda nn, t, g: nn.init.xavier_normal_(t, generator=g),
                      "N(0, std^2) with std = sqrt(2 / (fan_in + fan_out))"),
    "kaiming_uniform": (True, _kaiming_std,
                        lambda nn, t, g: nn.init.kaiming_uniform_(t, mode="fan_in", nonlinearity="relu",
                                                                  generator=g),
                        "U(-b, b) with b = sqrt(6 / fan_in)"),
    "kaiming_normal": (False, _kaiming_std,
                       lambda nn, t, g: nn.init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu",
                                                                generator=g),
                       "N(0, std^2) with std = sqrt(2 / fan_in)"),
}

# standard deviations that common slips produce, to name the slip in the message
_SLIPS = [
    ("sqrt(1 / fan_in), the notes' fan-in-only variance", lambda i, o: math.sqrt(1 / i)),
    ("sqrt(2 / fan_in), He's variance", lambda i, o: math.sqrt(2 / i)),
    ("sqrt(2 / fan_out): fan_out where fan_in belongs", lambda i, o: math.sqrt(2 / o)),
    ("sqrt(1 / fan_out)", lambda i, o: math.sqrt(1 / o)),
    ("sqrt(2 / (fan_in + fan_out)), Glorot's variance", lambda i, o: math.sqrt(2 / (i + o))),
    ("sqrt(1 / (fan_in + fan_out)): the factor 2 is missing", lambda i, o: math.sqrt(1 / (i + o))),
    ("sqrt(6 / (fan_in + fan_out)): the uniform's bound used as the standard deviation",
     lambda i, o: math.sqrt(6 / (i + o))),
    ("sqrt(6 / fan_in): the uniform's bound used as the standard deviation", lambda i, o: math.sqrt(6 / i)),
    ("sqrt(2 / (fan_in + fan_out)) / sqrt(3): the standard deviation used as the uniform's bound",
     lambda i, o: math.sqrt(2 / (i + o) / 3)),
    ("sqrt(2 / fan_in) / sqrt(3): the standard deviation used as the uniform's bound",
     lambda i, o: math.sqrt(2 / i / 3)),
    ("sqrt(2 / (fan_in * fan_out)): a product where Glorot has a sum", lambda i, o: math.sqrt(2 / (i * o))),
    ("sqrt(6 / (fan_in * fan_out)): a product where Glorot has a sum", lambda i, o: math.sqrt(6 / (i * o))),
]


def _init_case(wide):
    def make(rng):
        small, big = int(rng.integers(30, 120)), int(rng.integers(200, 1200))
        big = max(big, -(-MIN_SAMPLE // small))
        fan_in, fan_out = (small, big) if wide else (big, small)
        seeds = rng.integers(0, 2**31, size=3)
        return {"fan_in": fan_in, "fan_out": fan_out, "seed": int(seeds[0]), "seed2": int(seeds[1]),
                "torch_seed": int(seeds[2])}
    return make


# both orders of the fans, visible and hidden: a slip that swaps or mixes them shows in one
_INIT_CASES = Cases([Case("fan_in > fan_out", {"fan_in > fan_out"}, _init_case(False)),
                     Case("fan_in < fan_out", {"fan_in < fan_out"}, _init_case(True))],
                    measure=lambda i: {"fan_in > fan_out" if i["fan_in"] > i["fan_out"] else "fan_in < fan_out"})


def _init_probe(name):
    def probe(fns, inp):
        fi, fo = inp["fan_in"], inp["fan_out"]
        w = call(fns[0], name, fi, fo, np.random.default_rng(inp["seed"]))
        again = call(fns[0], name, fi, fo, np.random.default_rng(inp["seed"]))
        other = call(fns[0], name, fi, fo, np.random.default_rng(inp["seed2"]))
        return {"w": w, "again": again, "other": other}
    return probe


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a.ravel()), np.sort(b.ravel())
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _init_judge(name):
    uniform, std_of, torch_init, formula = INITS[name]

    def judge(inp, out):
        fi, fo = inp["fan_in"], inp["fan_out"]
        w = _as_float_array(f"the weights from {name}", out["w"])
        if w.shape != (fi, fo):
            msg = f"{name}({fi}, {fo}, rng) returned shape {w.shape}; expected (fan_in, fan_out) = {(fi, fo)}"
            if w.shape == (fo, fi):
                msg += (" (transposed: PyTorch's nn.Linear stores its weight as (out, in), but our "
                        "affine layer multiplies x (N, D) by w of shape (D, M) = (fan_in, fan_out))")
            fail(msg)
        if not np.all(np.isfinite(w)):
            fail(f"the weights from {name} contain inf or nan")
        std = std_of(fi, fo)
        n = w.size
        # torch's own sample: the formula must describe it (a sanity check of the oracle), and it
        # is the reference distribution of the Kolmogorov-Smirnov test below
        torch = _torch()
        gen = torch.Generator().manual_seed(inp["torch_seed"])
        t = torch_init(torch.nn, torch.empty(fo, fi, dtype=torch.float64), gen).numpy()
        if abs(t.std() / std - 1) > 0.025:
            raise RuntimeError(f"internal: torch.nn.init's sample has std {t.std():.4g}, the formula {std:.4g}")

        mean = float(w.mean())
        if abs(mean) > 6 * std / math.sqrt(n):
            fail(f"the weights from {name} have mean {mean:.3g}; a zero-mean distribution with std "
                 f"{std:.3g} gives |mean| < {6 * std / math.sqrt(n):.2g} for {n} weights "
                 "(is the distribution centred on 0? a uniform must span [-bound, bound])")
        s = float(w.std())
        if abs(s / std - 1) > 0.025:
            near = [what for what, f in _SLIPS if abs(s / f(fi, fo) - 1) <= 0.025]
            fail(f"{name}({fi}, {fo}) has sample standard deviation {s:.4g}; expected {std:.4g} "
                 f"({formula}; ratio {s / std:.3f}, tolerance 2.5 %)"
                 + (f". Yours matches {near[0]}" if near else "")
                 + ". Hint: a uniform on [-b, b] has standard deviation b / sqrt(3)")
        if uniform:
            bound = math.sqrt(3.0) * std
            top = float(np.max(np.abs(w)))
            if top > bound * (1 + 1e-9):
                fail(f"{name}: a weight of size {top:.4g} lies beyond the bound b = {bound:.4g} ({formula}): "
                     "the samples must be uniform on [-b, b] (drawn from a normal distribution?)")
            half = float(np.mean(np.abs(w) < bound / 2))
            if abs(half - 0.5) > 0.02:
                fail(f"{name}: {half:.1%} of the weights lie within b/2 of zero; a uniform distribution on "
                     f"[-b, b] puts 50 % there (b = {bound:.4g}): the distribution has the wrong shape")
        else:
            inside = float(np.mean(np.abs(w) < std))
            top = float(np.max(np.abs(w)))
            if abs(inside - 0.6827) > 0.02 or top < 3 * std:
                fail(f"{name}: {inside:.1%} of the weights lie within one standard deviation ({std:.4g}) of "
                     f"zero and the largest is {top / std:.2f} std; a normal distribution puts 68.3 % "
                     f"there and, over {n} samples, has weights beyond 3 std (drawn from a uniform?)")
        ks = _ks_distance(w, t)
        if ks > 0.03:
            fail(f"{name}: the distribution of your weights differs from torch.nn.init's sample "
                 f"(Kolmogorov-Smirnov distance {ks:.3f} > 0.03; {formula})")
        again = _as_float_array(f"the weights from a second call of {name}", out["again"])
        other = _as_float_array(f"the weights from {name} with another seed", out["other"])
        if again.shape != w.shape or not np.array_equal(again, w):
            fail(f"{name}: two calls with generators seeded alike (np.random.default_rng({inp['seed']})) "
                 "returned different weights: draw from the rng argument (rng.uniform, rng.normal), "
                 "not from np.random")
        if other.shape == w.shape and np.array_equal(other, w):
            fail(f"{name}: generators with different seeds returned the same weights: the rng argument "
                 "is ignored (a fixed seed inside the function?)")
        return (f"{n} weights: std {s:.4g} vs {std:.4g} ({formula}), mean {mean:.1e}, shape of the "
                f"distribution and torch.nn.init's sample agree (KS distance {ks:.3f}), rng used")
    return judge


for _name in INITS:
    register(_name, (_name,), _INIT_CASES, _init_probe(_name), _init_judge(_name),
             doc=f"{_name}: sample statistics against the formula and torch.nn.init")
