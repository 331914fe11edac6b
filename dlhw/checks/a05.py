"""Checks of assignment 05: initializers, batch normalization, layer normalization, dropout.

Oracles, all independent of dlhw's reference:

* initializers: the closed-form standard deviations of Glorot and He (the formulas of
  ``torch.nn.init``) and a sample drawn by ``torch.nn.init`` itself. A weight matrix is a large
  random sample, so the judge tests statistics: the sample standard deviation against the
  formula (within 2.5 %), the mean, the shape of the distribution (uniform: nothing beyond the
  bound, half of the mass within half of it; normal: 68.3 % within one standard deviation,
  tails beyond three) and a two-sample Kolmogorov-Smirnov distance to torch's sample. Every
  sample holds at least 20,000 weights, which puts each tolerance five or more standard errors
  away from what a correct initializer produces (a false alarm is rarer than 1 in 10^6).
* batch and layer normalization: ``torch.nn.functional.batch_norm`` / ``layer_norm`` in float64
  and their autograd gradients (tolerance 1e-9 relative to the largest entry: float64
  arithmetic in another order stays below 1e-13). PyTorch keeps the UNBIASED batch variance in
  ``running_var`` while our API keeps the biased one, so the judge converts torch's running
  variance step by step (the factor (N - 1) / N), and PyTorch's momentum (weight of the new
  batch) is 1 - ours.
* dropout: the definition, in a form that holds whatever random numbers a correct
  implementation draws: every output is 0 or x / p, about a fraction p of the units is kept,
  test mode is the identity, and the backward pass lets the gradient through exactly where the
  forward kept a unit, scaled by 1 / p.
"""
from __future__ import annotations

import math

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, call, compare, fail, register

MIN_SAMPLE = 20_000                      # weights per initializer sample (see the module docstring)


def _torch():
    import torch
    return torch


def _as_float_array(what: str, x) -> np.ndarray:
    if x is None:
        fail(f"{what} is None: the function did not compute it (is a variable left unassigned?)")
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"{what} should be a numpy array of numbers; got {type(x).__name__}")


def _copy(v):
    """A deep copy of the inputs (a student's function may modify its arguments in place)."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_copy(x) for x in v)
    return v


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


# =========================================================================== batch normalization
def _bn_batch(rng, N, D, tiny):
    """x (N, D) with features of different scales and offsets; tiny: a tiny-variance feature
    and (D >= 3) a constant one."""
    scale = rng.uniform(0.5, 3.0, D)
    shift = rng.uniform(-3.0, 3.0, D)
    x = rng.standard_normal((N, D)) * scale + shift
    if tiny:
        # variance ~1e-6, below eps: the result depends on where eps goes
        x[:, 0] = shift[0] + 1e-3 * rng.standard_normal(N)
        if D >= 3:
            x[:, -1] = shift[-1]               # a constant feature: batch variance exactly 0
    return x


def _bn_make(N=None, given=False, tiny=False, absent=False, mode="train"):
    """A batchnorm case; ``given``: eps and momentum in bn_param (else the defaults), ``tiny``:
    a tiny-variance and a constant feature, ``absent``: no running statistics in bn_param."""
    def make(rng):
        n = int(rng.integers(4, 33)) if N is None else N
        D = int(rng.integers(3, 11))
        param = {"mode": mode}
        if not absent:
            param["running_mean"] = 0.3 * rng.standard_normal(D)
            param["running_var"] = rng.uniform(0.5, 1.5, D)
        if given:
            param["eps"] = float(rng.choice([1e-3, 1e-2]))
            param["momentum"] = float(rng.uniform(0.5, 0.8))
        return {"x": _bn_batch(rng, n, D, tiny), "gamma": rng.uniform(0.5, 2.0, D) * rng.choice([-1, 1], D),
                "beta": rng.standard_normal(D), "bn_param": param, "dout": rng.standard_normal((n, D))}
    return make


def _bn_properties(inp):
    x, param = inp["x"], inp["bn_param"]
    props = {f"{param['mode']} mode", "eps and momentum given" if "eps" in param else "default eps and momentum",
             "running statistics absent" if "running_mean" not in param else "running statistics given"}
    if len(x) <= 2:
        props.add(f"N = {len(x)}")
    if len(x) > 1:
        var, constant = x.var(axis=0), np.ptp(x, axis=0) == 0
        if np.any(constant):
            props.add("constant feature")
        if np.any(~constant & (var < 1e-5)):
            props.add("tiny-variance feature")
    rv = param.get("running_var")
    if rv is not None and np.min(rv) < 1e-5:
        props.add("running_var below eps")
    return props


_TRAIN = {"train mode", "running statistics given"}
# the forward's and the backward's cases, visible and hidden alike (hidden ones draw other sizes)
_BN_CASES = Cases([
    Case("defaults", _TRAIN | {"default eps and momentum"}, _bn_make()),
    # variance ~1e-6 (below eps) and exactly 0: the result depends on where eps goes
    Case("eps given, tiny-variance and constant features",
         _TRAIN | {"eps and momentum given", "tiny-variance feature", "constant feature"},
         _bn_make(given=True, tiny=True)),
    # (N - 1) / N = 1/2: the biased and the unbiased variance far apart
    Case("N = 2", _TRAIN | {"eps and momentum given", "N = 2"}, _bn_make(N=2, given=True)),
], measure=_bn_properties)

# the backward also after a test-mode forward (the running statistics are constants there)
_BN_BACKWARD_CASES = Cases(_BN_CASES.visible + [
    Case("after a test-mode forward", {"test mode", "running statistics given", "eps and momentum given"},
         _bn_make(given=True, mode="test"))], measure=_bn_properties)


def _eps(param):
    return float(param.get("eps", 1e-5))


def _momentum(param):
    return float(param.get("momentum", 0.9))


def _bn_train_oracle(x, gamma, beta, param, grads_for=None):
    """torch's batch_norm in training mode: output (and autograd gradients for dout)."""
    torch = _torch()
    F = torch.nn.functional
    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.tensor(beta, requires_grad=True)
    out = F.batch_norm(xt, None, None, gt, bt, training=True, eps=_eps(param))
    if grads_for is None:
        return out.detach().numpy()
    dx, dg, db = torch.autograd.grad(out, [xt, gt, bt], grad_outputs=torch.tensor(grads_for))
    return out.detach().numpy(), dx.numpy(), dg.numpy(), db.numpy()


def _bn_variants(x, gamma, beta, eps):
    """What common slips compute in train mode, to name the slip."""
    mu = x.mean(axis=0)
    var_b, var_u = x.var(axis=0), (x.var(axis=0, ddof=1) if len(x) > 1 else np.full(x.shape[1], np.nan))
    with np.errstate(all="ignore"):       # a constant feature divides 0 by 0 in the "no eps" variant
        return _bn_variant_table(x, gamma, beta, eps, mu, var_b, var_u)


def _bn_variant_table(x, gamma, beta, eps, mu, var_b, var_u):
    return {
        "the unbiased variance (divide by N - 1); batch norm normalizes with the biased one (divide by N)":
            gamma * (x - mu) / np.sqrt(var_u + eps) + beta,
        "eps outside the square root, (x - mean) / (sqrt(var) + eps); it belongs inside, sqrt(var + eps)":
            gamma * (x - mu) / (np.sqrt(var_b) + eps) + beta,
        "no eps at all; it belongs inside the square root, sqrt(var + eps)":
            gamma * (x - mu) / np.sqrt(var_b) + beta,
        "the standard deviation where the variance belongs, sqrt(std + eps)":
            gamma * (x - mu) / np.sqrt(np.sqrt(var_b) + eps) + beta,
        "gamma and beta swapped": beta * (x - mu) / np.sqrt(var_b + eps) + gamma,
    }


def _name_slip(got, variants, tol=1e-9):
    got = np.asarray(got, dtype=np.float64)
    for what, v in variants.items():
        with np.errstate(all="ignore"):
            if got.shape == v.shape and np.all(np.isfinite(v)) and \
                    np.max(np.abs(got - v)) <= tol * max(np.max(np.abs(v)), 1e-8):
                return what
    return ""


def _bn_forward_probe(fns, inp):
    out, _ = call(fns[0], "batchnorm_forward", inp["x"].copy(), inp["gamma"].copy(), inp["beta"].copy(),
                  _copy(inp["bn_param"]), returns=2)
    return {"out": out}


def _bn_forward_judge(inp, out):
    x, g, b, param = inp["x"], inp["gamma"], inp["beta"], inp["bn_param"]
    expected = _bn_train_oracle(x, g, b, param)
    got = _as_float_array("batchnorm_forward's output", out["out"])
    try:
        err = compare("batchnorm_forward's output in train mode", got, expected,
                      hint="out = gamma * (x - mean) / sqrt(var + eps) + beta with the mean and the "
                           "biased variance (divide by N) of each feature over the batch (axis 0)")
    except CheckFailed as exc:
        slip = _name_slip(got, _bn_variants(x, g, b, _eps(param)))
        if not slip and got.shape == x.shape:
            rm, rv = param["running_mean"], param["running_var"]
            slip = _name_slip(got, {"the running statistics; in train mode batch norm uses the batch's mean "
                                    "and variance": g * (x - rm) / np.sqrt(rv + _eps(param)) + b})
        raise CheckFailed(f"{exc}. Yours computes {slip}." if slip else str(exc)) from None
    return f"train-mode output matches torch's batch_norm (relative error {err:.1e} <= 1e-09)"


register("batchnorm_forward", ("batchnorm_forward",), _BN_CASES, _bn_forward_probe, _bn_forward_judge,
         doc="batchnorm_forward: the train-mode output against torch")


# --- running statistics -------------------------------------------------------------------
def _bn_running_make(absent, given):
    first_make = _bn_make(given=given, absent=absent)

    def make(rng):
        first = first_make(rng)
        N, D = first["x"].shape
        xs = [first["x"]] + [_bn_batch(rng, N, D, False) * rng.uniform(0.5, 2.0) + rng.uniform(-1, 1)
                             for _ in range(2)]
        return {"xs": xs, "gamma": first["gamma"], "beta": first["beta"], "bn_param": first["bn_param"]}
    return make


def _bn_running_properties(inp):
    return _bn_properties({"x": inp["xs"][0], "bn_param": inp["bn_param"]}) - {
        "constant feature", "tiny-variance feature"}


# both every time: the running statistics given, and absent (created as zeros and ones: a
# running_var started at zeros is wrong, and must cost the same for every student)
_BN_RUNNING_CASES = Cases([
    Case("running statistics given", _TRAIN | {"default eps and momentum"}, _bn_running_make(False, False)),
    Case("running statistics absent", {"train mode", "running statistics absent", "eps and momentum given"},
         _bn_running_make(True, True)),
], measure=_bn_running_properties)


def _bn_running_probe(fns, inp):
    param = _copy(inp["bn_param"])
    means, variances = [], []
    for step, x in enumerate(inp["xs"], 1):
        call(fns[0], "batchnorm_forward", x.copy(), inp["gamma"].copy(), inp["beta"].copy(), param, returns=2)
        for key, into in (("running_mean", means), ("running_var", variances)):
            if key not in param:
                raise CheckFailed(f"after a train-mode call, bn_param has no {key!r}: keep the running "
                                  "averages in bn_param (the given last lines store them)")
            value = np.array(param[key], dtype=np.float64, copy=True)
            if value.shape != inp["gamma"].shape:
                raise CheckFailed(
                    f"after train-mode call {step}, bn_param[{key!r}] has shape {value.shape}; expected "
                    f"{inp['gamma'].shape}, one value per feature like gamma"
                    + (": a batch statistic taken with keepdims=True? The running averages keep shape (D,)"
                       if value.shape == (1,) + inp["gamma"].shape else ""))
            into.append(value)
    # (calls, D) arrays: the outputs cross to the judge as plain arrays
    return {"running_mean": np.stack(means), "running_var": np.stack(variances)}


def _bn_running_oracle(inp):
    """Our running averages, from torch's: torch keeps the unbiased variance, we the biased one."""
    torch = _torch()
    F = torch.nn.functional
    param = inp["bn_param"]
    m = _momentum(param)
    D = inp["xs"][0].shape[1]
    rm = np.asarray(param.get("running_mean", np.zeros(D)), dtype=np.float64)
    rv = np.asarray(param.get("running_var", np.ones(D)), dtype=np.float64)
    means, variances = [], []
    for x in inp["xs"]:
        N = x.shape[0]
        trm, trv = torch.tensor(rm), torch.tensor(rv)
        # torch's momentum is the weight of the NEW batch: 1 - ours
        F.batch_norm(torch.tensor(x), trm, trv, training=True, momentum=1 - m, eps=_eps(param))
        # torch: trv = m rv + (1 - m) var_unbiased; ours: m rv + (1 - m) var_biased, and
        # var_biased = var_unbiased (N - 1) / N
        rm = trm.numpy().copy()
        rv = m * rv + (trv.numpy() - m * rv) * (N - 1) / N
        means.append(rm)
        variances.append(rv)
    return means, variances


def _bn_running_judge(inp, out):
    means, variances = _bn_running_oracle(inp)
    N = inp["xs"][0].shape[0]
    m = _momentum(inp["bn_param"])
    got_m, got_v = np.asarray(out["running_mean"]), np.asarray(out["running_var"])
    D = len(means[0])
    for key, got in (("running_mean", got_m), ("running_var", got_v)):
        if got.shape != (len(means), D):
            fail(f"bn_param[{key!r}] over the {len(means)} train-mode calls has shape {got.shape}; expected "
                 f"{(len(means), D)}: one value per feature (shape ({D},)) after each call")
    # a running average created otherwise than the API says when bn_param has none
    absent = {key: key not in inp["bn_param"] for key in ("running_mean", "running_var")}
    started = {}
    if absent["running_mean"]:
        started["running_mean"] = _bn_running_oracle(
            dict(inp, bn_param=dict(inp["bn_param"], running_mean=np.ones(D))))[0]
    if absent["running_var"]:
        started["running_var"] = _bn_running_oracle(
            dict(inp, bn_param=dict(inp["bn_param"], running_var=np.zeros(D))))[1]
    start_hint = {"running_mean": "Yours starts running_mean at ones: when bn_param has no 'running_mean' it "
                                  "is created as zeros when absent",
                  "running_var": "Yours starts running_var at zeros: when bn_param has no 'running_var' it is "
                                 "created as ones when absent, PyTorch's convention; CS231n starts at zeros"}

    def wrong_start(key, step, got):
        alt = started.get(key)
        return alt is not None and np.allclose(got, alt[step - 1], rtol=1e-9, atol=1e-12)

    worst = 0.0
    for step, (gm, gv, em, ev) in enumerate(zip(got_m, got_v, means, variances), 1):
        try:
            worst = max(worst, compare(f"bn_param['running_mean'] after train-mode call {step}", gm, em,
                                       hint=f"running_mean = momentum * running_mean + (1 - momentum) * batch "
                                            f"mean, with momentum = {m:g} the weight of the OLD value"))
        except CheckFailed as exc:
            if not wrong_start("running_mean", step, gm):
                raise
            raise CheckFailed(f"{str(exc).split('. Hint: ')[0]}. {start_hint['running_mean']}") from None
        try:
            worst = max(worst, compare(f"bn_param['running_var'] after train-mode call {step}", gv, ev))
        except CheckFailed as exc:
            gv = np.asarray(gv, dtype=np.float64)
            if wrong_start("running_var", step, gv):
                raise CheckFailed(f"{exc}. {start_hint['running_var']}") from None
            # what the unbiased variance (PyTorch's running_var) would have given at this step
            prev = variances[step - 2] if step > 1 else np.asarray(
                inp["bn_param"].get("running_var", np.ones(len(ev))), dtype=np.float64)
            unbiased = m * prev + (ev - m * prev) * N / (N - 1)
            swapped = (1 - m) * prev + (ev - m * prev) / (1 - m) * m
            slip = _name_slip(gv, {"the unbiased batch variance (divide by N - 1, PyTorch's convention "
                                   "for running_var); our API keeps the biased one (divide by N)": unbiased,
                                   "momentum on the wrong side: momentum must weight the old running value":
                                       swapped})
            raise CheckFailed(f"{exc}. " + (f"Yours uses {slip}." if slip else
                              "Hint: running_var = momentum * running_var + (1 - momentum) * the biased "
                              "batch variance (the one you normalize with)")) from None
    return (f"running_mean and running_var after {len(means)} train-mode calls match torch's, converted "
            f"to the biased variance (relative error {worst:.1e} <= 1e-09)")


register("batchnorm_forward.running", ("batchnorm_forward",), _BN_RUNNING_CASES, _bn_running_probe,
         _bn_running_judge, doc="batchnorm_forward: the running averages of mean and variance")


# --- test mode ----------------------------------------------------------------------------
def _bn_test_make(N=None):
    base = _bn_make(N=N, given=True)

    def make(rng):
        inp = base(rng)
        D = inp["x"].shape[1]
        # running statistics far from this batch's, so that using the batch's is visible
        inp["x"] = inp["x"] * 2.0 + 1.5
        param = inp["bn_param"]
        param["mode"] = "test"
        param["running_mean"] = rng.uniform(-2, 2, D)
        param["running_var"] = rng.uniform(0.2, 4.0, D)
        param["running_var"][0] = 1e-7         # eps matters for this feature
        return inp
    return make


_TEST = {"test mode", "running statistics given", "eps and momentum given", "running_var below eps"}
_BN_TEST_CASES = Cases([
    Case("test mode", _TEST, _bn_test_make()),
    Case("test mode, one example", _TEST | {"N = 1"}, _bn_test_make(N=1)),   # no batch statistics
], measure=_bn_properties)


def _bn_test_probe(fns, inp):
    param = _copy(inp["bn_param"])
    out, _ = call(fns[0], "batchnorm_forward", inp["x"].copy(), inp["gamma"].copy(), inp["beta"].copy(),
                  param, returns=2)
    return {"out": out, "running_mean": param.get("running_mean"), "running_var": param.get("running_var")}


def _bn_test_judge(inp, out):
    torch = _torch()
    x, g, b, param = inp["x"], inp["gamma"], inp["beta"], inp["bn_param"]
    rm, rv = param["running_mean"], param["running_var"]
    expected = torch.nn.functional.batch_norm(
        torch.tensor(x), torch.tensor(rm), torch.tensor(rv), torch.tensor(g), torch.tensor(b),
        training=False, eps=_eps(param)).numpy()
    got = _as_float_array("batchnorm_forward's output", out["out"])
    try:
        err = compare("batchnorm_forward's output in test mode", got, expected,
                      hint="test mode normalizes with bn_param's running_mean and running_var: "
                           "gamma * (x - running_mean) / sqrt(running_var + eps) + beta")
    except CheckFailed as exc:
        variants = {} if len(x) < 2 else {
            "the batch's statistics, as in train mode; test mode must use the running averages, so "
            "that an example's output does not depend on the rest of its batch":
                _bn_train_oracle(x, g, b, param)}
        variants["eps outside the square root; it belongs inside, sqrt(running_var + eps)"] = \
            g * (x - rm) / (np.sqrt(rv) + _eps(param)) + b
        slip = _name_slip(got, variants)
        if not slip and len(x) == 1 and np.allclose(got, b[None, :], rtol=1e-9, atol=1e-12):
            slip = ("the batch's statistics (one example: x - mean = 0 and out = beta); test mode must use "
                    "the running averages")
        raise CheckFailed(f"{exc}. Yours uses {slip}." if slip else str(exc)) from None
    for key, given in (("running_mean", rm), ("running_var", rv)):
        after = out.get(key)
        if after is None or np.shape(after) != np.shape(given) or not np.array_equal(
                np.asarray(after, dtype=np.float64), given):
            fail(f"a test-mode call changed bn_param[{key!r}]: the running averages are updated in "
                 "train mode only")
    return (f"test-mode output matches torch's batch_norm with the running statistics (relative error "
            f"{err:.1e} <= 1e-09); the running averages are left alone")


register("batchnorm_forward.test", ("batchnorm_forward",), _BN_TEST_CASES, _bn_test_probe, _bn_test_judge,
         doc="batchnorm_forward: test mode uses the running statistics")


# --- backward -----------------------------------------------------------------------------
def _bn_backward_probe(fns, inp):
    _, cache = call(fns[0], "batchnorm_forward", inp["x"].copy(), inp["gamma"].copy(), inp["beta"].copy(),
                    _copy(inp["bn_param"]), returns=2)
    dx, dgamma, dbeta = call(fns[1], "batchnorm_backward", inp["dout"].copy(), cache, returns=3)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


_BN_HINTS = {
    "dx": "in train mode the mean and the variance depend on every example: with g = dout * gamma, "
          "dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps), means over the batch axis; "
          "dropping either subtracted term, or gamma, is the usual slip",
    "dgamma": "dgamma = sum over the batch of dout * x_hat (the normalized input, not x)",
    "dbeta": "dbeta = dout summed over the batch axis (axis 0)",
}


def _bn_test_grads(x, gamma, beta, param, dout):
    """torch's batch_norm in test mode (the running statistics): autograd gradients for dout."""
    torch = _torch()
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    out = torch.nn.functional.batch_norm(xt, torch.tensor(param["running_mean"]),
                                         torch.tensor(param["running_var"]), gt, bt, training=False,
                                         eps=_eps(param))
    return (None,) + tuple(g.numpy() for g in torch.autograd.grad(out, [xt, gt, bt],
                                                                 grad_outputs=torch.tensor(dout)))


def _bn_backward_judge(gname):
    def judge(inp, out):
        oracle = _bn_train_oracle if inp["bn_param"]["mode"] == "train" else _bn_test_grads
        _, dx, dg, db = oracle(inp["x"], inp["gamma"], inp["beta"], inp["bn_param"], inp["dout"])
        expected = {"dx": dx, "dgamma": dg, "dbeta": db}[gname]
        err = compare(f"{gname} from batchnorm_backward", out[gname], expected, hint=_BN_HINTS[gname],
                      oracle="PyTorch autograd")
        return f"{gname} matches PyTorch autograd of batch_norm (relative error {err:.1e} <= 1e-09)"
    return judge


for _g in ("dx", "dgamma", "dbeta"):
    register(f"batchnorm_backward.{_g}", ("batchnorm_forward", "batchnorm_backward"), _BN_BACKWARD_CASES,
             _bn_backward_probe, _bn_backward_judge(_g), doc=f"batchnorm_backward: {_g} against autograd")


# =========================================================================== layer normalization
def _ln_make(lead_axes, given):
    def make(rng):
        lead = tuple(int(s) for s in rng.integers(2, 6, size=lead_axes))  # (N,) or (N, T)
        D = int(rng.integers(3, 13))
        param = {"eps": float(rng.choice([1e-3, 1e-2]))} if given else {}
        shape = lead + (D,)
        rows = int(np.prod(lead))
        x = (rng.standard_normal((rows, D)) * rng.uniform(0.5, 3.0, (rows, 1))
             + rng.uniform(-3.0, 3.0, (rows, 1)))
        if given:
            x[0] = x[0, 0] + 1e-3 * rng.standard_normal(D)              # variance ~1e-6 < eps
            x[-1] = x[-1, 0]                                            # a constant example
        return {"x": x.reshape(shape), "gamma": rng.uniform(0.5, 2.0, D) * rng.choice([-1, 1], D),
                "beta": rng.standard_normal(D), "ln_param": param, "dout": rng.standard_normal(shape)}
    return make


def _ln_properties(inp):
    x = inp["x"]
    rows = x.reshape(-1, x.shape[-1])
    var, constant = rows.var(axis=1), np.ptp(rows, axis=1) == 0
    props = {"leading axes" if x.ndim > 2 else "2-D x",
             "eps given" if "eps" in inp["ln_param"] else "default eps"}
    if np.any(constant):
        props.add("constant row")
    if np.any(~constant & (var < 1e-5)):
        props.add("tiny-variance row")
    return props


_LN_CASES = Cases([
    Case("(N, D), default eps", {"2-D x", "default eps"}, _ln_make(1, False)),
    # a transformer's layout, eps given, a row of variance ~1e-6 and a constant one
    Case("(N, T, D), eps given, tiny-variance and constant rows",
         {"leading axes", "eps given", "tiny-variance row", "constant row"}, _ln_make(2, True)),
], measure=_ln_properties)


def _ln_oracle(inp, with_grads=False):
    torch = _torch()
    F = torch.nn.functional
    D = inp["x"].shape[-1]
    xt = torch.tensor(inp["x"], requires_grad=True)
    gt = torch.tensor(inp["gamma"], requires_grad=True)
    bt = torch.tensor(inp["beta"], requires_grad=True)
    out = F.layer_norm(xt, (D,), gt, bt, eps=float(inp["ln_param"].get("eps", 1e-5)))
    if not with_grads:
        return out.detach().numpy()
    grads = torch.autograd.grad(out, [xt, gt, bt], grad_outputs=torch.tensor(inp["dout"]))
    return dict(zip(("dx", "dgamma", "dbeta"), (g.numpy() for g in grads)))


def _ln_forward_probe(fns, inp):
    out, _ = call(fns[0], "layernorm_forward", inp["x"].copy(), inp["gamma"].copy(), inp["beta"].copy(),
                  _copy(inp["ln_param"]), returns=2)
    return {"out": out}


def _ln_forward_judge(inp, out):
    err = compare("layernorm_forward's output", out["out"], _ln_oracle(inp),
                  hint="each example is normalized over its features (the LAST axis, keepdims=True): "
                       "gamma * (x - mean) / sqrt(var + eps) + beta with the biased variance; the "
                       "input may have several leading axes, e.g. (N, T, D)")
    return f"output matches torch's layer_norm (relative error {err:.1e} <= 1e-09)"


register("layernorm_forward", ("layernorm_forward",), _LN_CASES, _ln_forward_probe, _ln_forward_judge,
         doc="layernorm_forward: the output against torch")


def _ln_backward_probe(fns, inp):
    _, cache = call(fns[0], "layernorm_forward", inp["x"].copy(), inp["gamma"].copy(), inp["beta"].copy(),
                    _copy(inp["ln_param"]), returns=2)
    dx, dgamma, dbeta = call(fns[1], "layernorm_backward", inp["dout"].copy(), cache, returns=3)
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


_LN_HINTS = {
    "dx": "the same compact form as batch norm with the means over the LAST axis: with "
          "g = dout * gamma, dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)",
    "dgamma": "dgamma = dout * x_hat summed over every leading axis (reshape to (-1, D) first)",
    "dbeta": "dbeta = dout summed over every leading axis (reshape to (-1, D) first)",
}


def _ln_backward_judge(gname):
    def judge(inp, out):
        err = compare(f"{gname} from layernorm_backward", out[gname], _ln_oracle(inp, True)[gname],
                      hint=_LN_HINTS[gname], oracle="PyTorch autograd")
        return f"{gname} matches PyTorch autograd of layer_norm (relative error {err:.1e} <= 1e-09)"
    return judge


for _g in ("dx", "dgamma", "dbeta"):
    register(f"layernorm_backward.{_g}", ("layernorm_forward", "layernorm_backward"), _LN_CASES,
             _ln_backward_probe, _ln_backward_judge(_g), doc=f"layernorm_backward: {_g} against autograd")


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
