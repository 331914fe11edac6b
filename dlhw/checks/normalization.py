"""Checks of normalization layers: batch and layer normalization (assignment 05), spatial batch
normalization (assignment 06).

Oracles: ``torch.nn.functional.batch_norm`` / ``layer_norm`` in float64 and their autograd
gradients (tolerance 1e-9 relative to the largest entry: float64 arithmetic in another order
stays below 1e-13), plain torch reductions for spatial batch norm's running statistics.
PyTorch keeps the UNBIASED batch variance in ``running_var`` while our API keeps the biased one,
so the judge converts torch's running variance step by step (the factor (N - 1) / N), and
PyTorch's momentum (weight of the new batch) is 1 - ours.

Every check runs a fixed list of cases, visible and hidden alike (hidden ones draw other sizes):
batch norm with the defaults and with eps and momentum given, tiny-variance and constant
features, N = 2, the backward after a test-mode forward, running statistics given and absent;
layer norm over (N, D) and (N, T, D); spatial batch norm with N = 1, a low-variance channel, the
backward after a test-mode forward, and running statistics given and absent.
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, call, compare, fail, register
from dlhw.checks.helpers import as_float_array as _as_float_array, deep_copy as _copy, sizes, torch as _torch
from dlhw.checks.spec import autograd_oracle, layer, torch_layer, values


def _F():
    import torch.nn.functional as F
    return F


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


def _bn_train_oracle(x, gamma, beta, param):
    """torch's batch_norm in training mode: the output."""
    torch = _torch()
    return torch.nn.functional.batch_norm(torch.tensor(x), None, None, torch.tensor(gamma), torch.tensor(beta),
                                          training=True, eps=_eps(param)).numpy()


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
_BN_HINTS = {
    "dx": "in train mode the mean and the variance depend on every example: with g = dout * gamma, "
          "dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps), means over the batch axis; "
          "dropping either subtracted term, or gamma, is the usual slip",
    "dgamma": "dgamma = sum over the batch of dout * x_hat (the normalized input, not x)",
    "dbeta": "dbeta = dout summed over the batch axis (axis 0)",
}


def _bn_grads_oracle(inp):
    """torch's batch_norm in the case's mode (the batch's statistics, or the running ones): autograd."""
    torch = _torch()
    param = inp["bn_param"]
    xt, gt, bt = (torch.tensor(inp[a], requires_grad=True) for a in ("x", "gamma", "beta"))
    train = param["mode"] == "train"
    out = torch.nn.functional.batch_norm(xt, None if train else torch.tensor(param["running_mean"]),
                                         None if train else torch.tensor(param["running_var"]), gt, bt,
                                         training=train, eps=_eps(param))
    grads = torch.autograd.grad(out, [xt, gt, bt], grad_outputs=torch.tensor(inp["dout"]))
    return dict(zip(("dx", "dgamma", "dbeta"), (g.numpy() for g in grads)))


# the forward's check is its own (above: it names the slip); the backward's, one per gradient
layer("batchnorm_forward", "batchnorm_backward", _BN_BACKWARD_CASES, _bn_grads_oracle,
      args=lambda i: [i["x"], i["gamma"], i["beta"], i["bn_param"]], grads=("dx", "dgamma", "dbeta"),
      forward_checks={}, hints=_BN_HINTS, grad_says_oracle="PyTorch autograd of batch_norm",
      grad_doc="{fn}: {keys} against autograd")


# =========================================================================== layer normalization
def _ln_make(lead_axes, given):
    def make(rng):
        lead = sizes(rng, 2, 6, lead_axes)  # (N,) or (N, T)
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


_LN_HINTS = {
    "out": "each example is normalized over its features (the LAST axis, keepdims=True): "
           "gamma * (x - mean) / sqrt(var + eps) + beta with the biased variance; the "
           "input may have several leading axes, e.g. (N, T, D)",
    "dx": "the same compact form as batch norm with the means over the LAST axis: with "
          "g = dout * gamma, dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(var + eps)",
    "dgamma": "dgamma = dout * x_hat summed over every leading axis (reshape to (-1, D) first)",
    "dbeta": "dbeta = dout summed over every leading axis (reshape to (-1, D) first)",
}


def _ln_oracle(inp):
    torch = _torch()
    D = inp["x"].shape[-1]
    xt, gt, bt = (torch.tensor(inp[a], requires_grad=True) for a in ("x", "gamma", "beta"))
    out = torch.nn.functional.layer_norm(xt, (D,), gt, bt, eps=float(inp["ln_param"].get("eps", 1e-5)))
    grads = torch.autograd.grad(out, [xt, gt, bt], grad_outputs=torch.tensor(inp["dout"]))
    return dict(zip(("out", "dx", "dgamma", "dbeta"), (t.detach().numpy() for t in (out, *grads))))


layer("layernorm_forward", "layernorm_backward", _LN_CASES, _ln_oracle,
      args=lambda i: [i["x"], i["gamma"], i["beta"], i["ln_param"]], grads=("dx", "dgamma", "dbeta"),
      hints=_LN_HINTS, forward_label="{fn}'s output", shown={"out": "output"}, forward_says_oracle="torch's layer_norm",
      grad_says_oracle="PyTorch autograd of layer_norm", forward_doc="{fn}: the output against torch",
      grad_doc="{fn}: {keys} against autograd")


# --------------------------------------------------------------------------- spatial batchnorm
def _sbn_make(N=None, eps=1e-5, low=False, mode="train"):
    """A spatial batchnorm case; ``low``: channel 0 varies so little that eps matters."""
    def make(rng):
        n = int(rng.integers(2, 5)) if N is None else N
        C, H, W = int(rng.integers(2, 6)), int(rng.integers(2, 6)), int(rng.integers(3, 7))
        # every channel its own mean and scale
        scale = rng.uniform(0.5, 3.0, size=(1, C, 1, 1))
        if low:
            scale[0, 0] = 0.03
        x = rng.uniform(-4, 4, size=(1, C, 1, 1)) + scale * rng.standard_normal((n, C, H, W))
        bn = {"mode": mode, "eps": eps}
        if mode == "test":
            # running statistics far from this batch's, so that using the batch's is caught
            bn.update(running_mean=rng.standard_normal(C), running_var=rng.uniform(0.5, 4.0, size=C))
        return {"args": [x, rng.uniform(0.5, 2.0, size=C), rng.standard_normal(C), bn],
                "dout": rng.standard_normal((n, C, H, W))}
    return make


def _sbn_properties(inp):
    x, _g, _b, bn = inp["args"]
    props = {f"{bn['mode']} mode", f"eps {bn['eps']:g}"}
    if x.shape[0] == 1:
        props.add("N = 1")
    if np.min(x.var(axis=(0, 2, 3))) < 0.01:
        props.add("low-variance channel")
    return props


_SBN_CASES = [
    Case("train mode", {"train mode", "eps 1e-05"}, _sbn_make()),
    Case("train mode, N = 1, a low-variance channel", {"train mode", "eps 0.001", "N = 1", "low-variance channel"},
         _sbn_make(N=1, eps=1e-3, low=True)),
]
# the backward also after a test-mode forward (the running statistics are constants there)
_sbn_inputs = Cases(_SBN_CASES + [Case("after a test-mode forward", {"test mode", "eps 0.001"},
                                       _sbn_make(eps=1e-3, mode="test"))], measure=_sbn_properties)


def _sbn_oracle(x, g, b, bn):
    if bn["mode"] == "train":
        return _F().batch_norm(x, None, None, g, b, training=True, eps=bn["eps"])
    torch = _torch()
    return _F().batch_norm(x, torch.tensor(bn["running_mean"]), torch.tensor(bn["running_var"]), g, b,
                           training=False, eps=bn["eps"])


def _sbn_describe(inp):
    x, _g, _b, bn = inp["args"]
    return f"x of shape {x.shape}, mode {bn['mode']!r}, eps {bn['eps']:g}"


_SBN_HINTS = {
    "out": "each channel c is normalized with the mean and the biased variance of its N*H*W values "
           "x[:, c, :, :] (axes 0, 2, 3), then out = gamma[c] * x_hat + beta[c]; moving the "
           "channel axis last (transpose(0, 2, 3, 1)) before reshaping to (N*H*W, C) is essential",
    "dx": "the batchnorm gradient with the averages over the N*H*W values of each channel; "
          "undo the forward's transpose and reshape in the reverse order",
    "dgamma": "dgamma[c] = sum of dout * x_hat over axes (0, 2, 3)",
    "dbeta": "dbeta[c] = sum of dout over axes (0, 2, 3)",
}

_SBN = torch_layer("spatial_batchnorm", _sbn_inputs, _sbn_oracle, ("dx", "dgamma", "dbeta"), hints=_SBN_HINTS,
                   describe=_sbn_describe)


def _sbn_test_make(N=None, eps=1e-5):
    base = _sbn_make(N=N, eps=eps, mode="test")

    def make(rng):
        return {"args": base(rng)["args"]}
    return make


_sbn_test_inputs = Cases([Case("test mode", {"test mode", "eps 1e-05"}, _sbn_test_make()),
                          Case("test mode, N = 1", {"test mode", "eps 0.001", "N = 1"}, _sbn_test_make(1, 1e-3))],
                         measure=_sbn_properties)


# test mode: the forward's own probe, its output against batch_norm with the running statistics
values("spatial_batchnorm_forward.test_mode", ("spatial_batchnorm_forward",), _sbn_test_inputs, _SBN.forward_probe,
       autograd_oracle(_sbn_oracle), ("out",), label="{fn}'s output in test mode",
       says="test-mode output matches PyTorch (relative error {err:.1e} <= {tol:.0e})",
       hints={"out": "test mode normalizes with bn_param['running_mean'] and ['running_var'], not with the "
                     "statistics of the batch"},
       doc="spatial_batchnorm_forward in test mode: the running statistics against PyTorch")


def _sbn_running_make(absent, momentum=None):
    base = _sbn_make(eps=1e-3 if absent else 1e-5)

    def make(rng):
        x1, gamma, beta, bn = base(rng)["args"]
        C = x1.shape[1]
        inp = {"x1": x1, "x2": 1.5 + 0.5 * rng.standard_normal(x1.shape), "gamma": gamma, "beta": beta,
               "eps": bn["eps"], "momentum": float(rng.uniform(0.6, 0.8)) if momentum is None else momentum}
        if not absent:
            inp.update(running_mean=rng.standard_normal(C), running_var=rng.uniform(0.5, 2.0, size=C))
        return inp
    return make


# both every time: the running statistics given, and absent (created as zeros and ones: a
# running_var started at zeros is wrong, and must cost the same for every student)
_sbn_running_inputs = Cases([
    Case("running statistics given", {"running statistics given", "momentum 0.9"}, _sbn_running_make(False, 0.9)),
    Case("running statistics absent", {"running statistics absent", "momentum drawn"}, _sbn_running_make(True)),
], measure=lambda i: {"running statistics given" if "running_mean" in i else "running statistics absent",
                      "momentum 0.9" if i["momentum"] == 0.9 else "momentum drawn"})


def _sbn_running_probe(fns, inp):
    bn = {"mode": "train", "eps": inp["eps"], "momentum": inp["momentum"]}
    if "running_mean" in inp:
        bn["running_mean"] = np.array(inp["running_mean"], dtype=np.float64)
        bn["running_var"] = np.array(inp["running_var"], dtype=np.float64)
    for key in ("x1", "x2"):     # two training steps with the same bn_param
        call(fns[0], "spatial_batchnorm_forward", inp[key], inp["gamma"], inp["beta"], bn, returns=2)
    if "running_mean" not in bn or "running_var" not in bn:
        raise CheckFailed("after a training step bn_param must hold 'running_mean' and 'running_var'")
    return {"running_mean": bn["running_mean"], "running_var": bn["running_var"]}


def _sbn_running_judge(inp, outp):
    torch = _torch()
    m = inp["momentum"]
    C = inp["x1"].shape[1]
    # absent running statistics start as zeros and ones (batchnorm_forward's documented default)
    rm = torch.tensor(inp["running_mean"]) if "running_mean" in inp else torch.zeros(C, dtype=torch.float64)
    rv = torch.tensor(inp["running_var"]) if "running_var" in inp else torch.ones(C, dtype=torch.float64)
    for key in ("x1", "x2"):
        x = torch.tensor(inp[key])
        rm = m * rm + (1 - m) * x.mean(dim=(0, 2, 3))
        rv = m * rv + (1 - m) * x.var(dim=(0, 2, 3), unbiased=False)
    hint = ("per channel: running = momentum * running + (1 - momentum) * batch statistic, with "
            "the mean and the BIASED variance over axes (0, 2, 3); bn_param is updated in place "
            f"(momentum here {m:g}, two training steps"
            + ("; absent running statistics start as zeros (mean) and ones (var))" if "running_mean" not in inp else ")"))
    e1 = compare("bn_param['running_mean'] after two training steps", outp["running_mean"],
                 rm.numpy(), hint=hint, oracle="torch")
    if "running_var" not in inp:
        # started at zeros (CS231n's code) instead of ones: name that, not the update formula
        zv = torch.zeros(C, dtype=torch.float64)
        for key in ("x1", "x2"):
            zv = m * zv + (1 - m) * torch.tensor(inp[key]).var(dim=(0, 2, 3), unbiased=False)
        got = np.asarray(outp["running_var"], dtype=np.float64)
        if got.shape == (C,) and np.allclose(got, zv.numpy(), rtol=1e-9, atol=1e-12) \
                and not np.allclose(got, rv.numpy(), rtol=1e-9, atol=1e-12):
            compare("bn_param['running_var'] after two training steps", got, rv.numpy(), oracle="torch",
                    hint="yours starts running_var at zeros: when bn_param has no 'running_var' it is created "
                         "as ones when absent, PyTorch's convention; CS231n starts at zeros")
    e2 = compare("bn_param['running_var'] after two training steps", outp["running_var"],
                 rv.numpy(), hint=hint, oracle="torch")
    return f"running mean and variance match (relative errors {e1:.1e}, {e2:.1e} <= 1e-09)"


register("spatial_batchnorm_forward.running_stats", ("spatial_batchnorm_forward",),
         _sbn_running_inputs, _sbn_running_probe, _sbn_running_judge,
         doc="spatial_batchnorm_forward: running mean and variance after two training steps")
