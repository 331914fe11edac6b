"""Checks of assignment 06: convolutional networks.

Oracles: ``torch.nn.functional.conv2d``, ``max_pool2d`` and ``batch_norm`` in float64 for
values, ``torch.autograd`` for gradients, plain torch reductions for the running statistics.
Tolerance 1e-9 relative to the largest entry everywhere: every quantity here is a sum of at
most a few thousand float64 products, so a correct implementation that merely adds in another
order stays below 1e-13, while any slip in an index, a stride or a sum lands far above.

Every check runs a fixed list of cases, visible and hidden alike, so that every student is
tested on the same rules and every rule a hidden test checks is shown by a visible one: stride
1 and 2 with pad 0 and 1, square and non-square kernels and images, sizes the stride does not
divide (the last rows and columns are dropped, as in PyTorch), N = 1; pools with square and
non-square windows, overlapping windows, odd and even widths and tied maxima; spatial batchnorm
with N = 1, a low-variance channel, the backward after a test-mode forward, and running
statistics given and absent. Hidden checks (``hidden=True``) draw other sizes and values inside
each case; the fast convolution's last hidden case runs on a bigger batch (values and gradients
only: no timing).
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, call, compare, register
from dlhw.checks.layerchecks import register_layer


def _torch():
    import torch
    return torch


def _F():
    import torch.nn.functional as F
    return F


# --------------------------------------------------------------------------- convolution
def _conv_case(rng, N, C, H, W, F, HH, WW, stride, pad):
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, HH, WW)) / np.sqrt(C * HH * WW)
    b = rng.standard_normal(F)
    # dout's shape, written unlike conv_forward's solution lines: this module ships in the
    # student kit, which must not contain them
    rows, cols = ((size + 2 * pad - kernel) // stride + 1 for size, kernel in ((H, HH), (W, WW)))
    return {"args": [x, w, b, {"stride": stride, "pad": pad}],
            "dout": rng.standard_normal((N, F, rows, cols))}


def _conv_make(stride, pad, square, N=None, big=False):
    """A convolution case of fixed stride, pad and shape class; sizes are drawn.

    Non-square cases have a non-square kernel and image, and a size the stride does not
    divide (the last rows and columns are reached by no window, as in PyTorch)."""
    def make(rng):
        n = int(rng.integers(2, 5)) if N is None else N
        if big:
            # a bigger batch (the fast convolution): overlapping windows of a 5x3 kernel, a
            # non-square image whose padded sizes the stride does not divide
            HH, WW = 5, 3
            H = 2 * int(rng.integers(10, 14)) + 1 if n > 4 else 2 * int(rng.integers(3, 5)) + 1
            W = H + 3
            return _conv_case(rng, N=n, C=int(rng.integers(3, 6)), H=H, W=W,
                              F=int(rng.integers(8, 13)) if n > 4 else 4, HH=HH, WW=WW, stride=stride, pad=pad)
        if square:
            HH = WW = 3
            H = W = HH - 2 * pad + stride * int(rng.integers(2, 4))   # the stride divides H + 2 pad - HH
        else:
            HH, WW = 3, 2
            H = HH - 2 * pad + stride * int(rng.integers(2, 4)) + 1   # ... does not: the last row is dropped
            W = H + int(rng.integers(1, 3))
        return _conv_case(rng, N=n, C=int(rng.integers(2, 4)), H=H, W=W, F=int(rng.integers(2, 5)),
                          HH=HH, WW=WW, stride=stride, pad=pad)
    return make


def _conv_properties(inp):
    x, w, _b, cp = inp["args"]
    (N, _C, H, W), (_F, _C2, HH, WW) = x.shape, w.shape
    S, P = cp["stride"], cp["pad"]
    props = {f"stride {S}", f"pad {P}", "square" if (H == W and HH == WW) else "non-square"}
    if N == 1:
        props.add("N = 1")
    if (H + 2 * P - HH) % S or (W + 2 * P - WW) % S:
        props.add("stride does not divide")
    return props


# visible and hidden alike: every combination of stride 1 and 2 with pad 0 and 1, square and
# not, N = 1; hidden ones draw other sizes
_CONV_CASES = [
    Case("stride 1, pad 1, square", {"stride 1", "pad 1", "square"}, _conv_make(1, 1, True)),
    Case("stride 2, pad 0, non-square, last row dropped",
         {"stride 2", "pad 0", "non-square", "stride does not divide"}, _conv_make(2, 0, False)),
    Case("stride 2, pad 1, square, N = 1", {"stride 2", "pad 1", "square", "N = 1"}, _conv_make(2, 1, True, N=1)),
    Case("stride 1, pad 0, non-square", {"stride 1", "pad 0", "non-square"}, _conv_make(1, 0, False)),
]
_CONV_FAST_BIG = {"stride 2", "pad 2", "non-square", "stride does not divide"}
# the fast convolution's last case: a bigger batch when hidden, the same rules small when visible
_conv_cases = Cases(_CONV_CASES + [Case("stride 2, pad 2, 5x3 kernel", _CONV_FAST_BIG, _conv_make(2, 2, False, N=2, big=True))],
                    hidden=_CONV_CASES + [Case("stride 2, pad 2, 5x3 kernel", _CONV_FAST_BIG,
                                               _conv_make(2, 2, False, N=12, big=True))],
                    measure=_conv_properties)
_conv_inputs = Cases(_CONV_CASES, measure=_conv_properties)
_conv_fast_inputs = _conv_cases


def _conv_describe(inp):
    x, w, _b, cp = inp["args"]
    return (f"x of shape {x.shape}, w of shape {w.shape}, "
            f"conv_param {{'stride': {cp['stride']}, 'pad': {cp['pad']}}}")


def _conv_oracle(x, w, b, cp):
    return _F().conv2d(x, w, b, stride=cp["stride"], padding=cp["pad"])


_CONV_HINTS = {
    "out": "a cross-correlation, as PyTorch's conv2d: out[n, f, i, j] = sum(x_pad[n, :, i*S:i*S+HH, "
           "j*S:j*S+WW] * w[f]) + b[f] with x_pad zero-padded by pad on every side and no kernel "
           "flip; H' = 1 + (H + 2 pad - HH) // stride",
    "dx": "each window adds dout[n, f, i, j] * w[f] to the patch of the PADDED input it came from "
          "(+=, windows overlap; window (i, j) starts at row i*stride, column j*stride); cut the "
          "padding off at the end",
    "dw": "dw[f] = sum over the batch n and all positions (i, j) of dout[n, f, i, j] times the "
          "padded patch of window (i, j)",
    "db": "b[f] is added at every (n, i, j): db sums dout over axes (0, 2, 3)",
}

register_layer("conv", _conv_inputs, _conv_oracle, arg_names=("x", "w", "b"),
               grad_names=("dx", "dw", "db"), forward_extra=("conv_param",), hints=_CONV_HINTS,
               describe=_conv_describe)


register_layer("conv_fast", _conv_fast_inputs, _conv_oracle, arg_names=("x", "w", "b"),
               grad_names=("dx", "dw", "db"), forward_extra=("conv_param",), hints=_CONV_HINTS,
               describe=_conv_describe, names=("conv_forward_fast", "conv_backward_fast"))


# --------------------------------------------------------------------------- max pooling
def _pool_make(PH, PW, S, width_parity=None, ties=False):
    """A max-pool case: windows PH x PW taken S apart; ``width_parity`` fixes W's parity (0 or 1)."""
    def make(rng):
        N, C = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        if width_parity is None:          # the stride divides both sizes: square output
            H = W = PH + S * int(rng.integers(1, 3))
        else:
            # H - PH odd: the last row is in no window; W of the given parity, and an output
            # that is not square
            H = PH + 2 * int(rng.integers(1, 3)) + 1
            W = 2 * int(rng.integers(2, 4)) + width_parity
            if 1 + (W - PW) // S == 1 + (H - PH) // S:
                W += 2
        x = rng.standard_normal((N, C, H, W))
        if ties:
            # channel 0 holds small integers, so that tied maxima are common (the gradient goes to
            # the first one, as in PyTorch); the other channels are Gaussian, so that a window in
            # the wrong place shows in the values
            x[:, 0] = rng.integers(-1, 2, size=(N, H, W))
            # row 2 belongs to the windows of rows 0-2 and 2-4: a large value there is the
            # maximum of both, and must collect both gradients
            x[:, -1, 2, 0] = 5.0
        H_out, W_out = 1 + (H - PH) // S, 1 + (W - PW) // S
        return {"args": [x, {"pool_height": PH, "pool_width": PW, "stride": S}],
                "dout": rng.standard_normal((N, C, H_out, W_out))}
    return make


def _pool_properties(inp):
    x, pp = inp["args"]
    PH, PW, S = pp["pool_height"], pp["pool_width"], pp["stride"]
    H, W = x.shape[2:]
    props = {"square window" if PH == PW else "non-square window",
             "overlapping windows" if S < max(PH, PW) else "disjoint windows",
             "odd width" if W % 2 else "even width",
             "square output" if 1 + (H - PH) // S == 1 + (W - PW) // S else "non-square output"}
    if np.all(x[:, 0] == np.round(x[:, 0])):
        props.add("tied maxima")
    return props


# visible and hidden alike: both width parities with windows that are not square (a width
# computed from pool_height slips through for one parity only), overlapping windows and ties
_pool_inputs = Cases([
    Case("2x2 windows, stride 2", {"square window", "disjoint windows", "even width", "square output"},
         _pool_make(2, 2, 2)),
    Case("3x2 windows, stride 2, odd width, ties",
         {"non-square window", "overlapping windows", "odd width", "non-square output", "tied maxima"},
         _pool_make(3, 2, 2, width_parity=1, ties=True)),
    Case("3x2 windows, stride 2, even width, ties",
         {"non-square window", "overlapping windows", "even width", "non-square output", "tied maxima"},
         _pool_make(3, 2, 2, width_parity=0, ties=True)),
], measure=_pool_properties)


def _pool_describe(inp):
    x, pp = inp["args"]
    ties = " (channel 0 of small integers: tied maxima)" if np.all(x[:, 0] == np.round(x[:, 0])) else ""
    return (f"x of shape {x.shape}{ties}, pool_param {{'pool_height': {pp['pool_height']}, "
            f"'pool_width': {pp['pool_width']}, 'stride': {pp['stride']}}}")


register_layer(
    "max_pool", _pool_inputs,
    lambda x, pp: _F().max_pool2d(x, (pp["pool_height"], pp["pool_width"]), stride=pp["stride"]),
    arg_names=("x",), grad_names=("dx",), forward_extra=("pool_param",),
    describe=_pool_describe,
    hints={"out": "out[n, c, i, j] = max of x[n, c, i*S:i*S+PH, j*S:j*S+PW] with "
                  "H' = 1 + (H - PH) // S (pool_height and pool_width may differ)",
           "dx": "the whole dout[n, c, i, j] goes to ONE input: the first maximum of window (i, j) "
                 "in row-major order (np.argmax's choice, and PyTorch's, when maxima tie); "
                 "every other entry of the window gets 0, and a pixel that is the maximum of "
                 "several overlapping windows collects the sum (+=)"})


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

register_layer(
    "spatial_batchnorm", _sbn_inputs, _sbn_oracle,
    arg_names=("x", "gamma", "beta"), grad_names=("dx", "dgamma", "dbeta"),
    forward_extra=("bn_param",), hints=_SBN_HINTS, describe=_sbn_describe)


def _sbn_test_make(N=None, eps=1e-5):
    base = _sbn_make(N=N, eps=eps, mode="test")

    def make(rng):
        return {"args": base(rng)["args"]}
    return make


_sbn_test_inputs = Cases([Case("test mode", {"test mode", "eps 1e-05"}, _sbn_test_make()),
                          Case("test mode, N = 1", {"test mode", "eps 0.001", "N = 1"}, _sbn_test_make(1, 1e-3))],
                         measure=_sbn_properties)


def _sbn_test_probe(fns, inp):
    x, gamma, beta, bn = inp["args"]
    bn = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in bn.items()}
    out, _cache = call(fns[0], "spatial_batchnorm_forward", x, gamma, beta, bn, returns=2)
    return {"out": out}


def _sbn_test_judge(inp, outp):
    torch = _torch()
    x, gamma, beta, bn = inp["args"]
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    expected = _F().batch_norm(t(x), t(bn["running_mean"]), t(bn["running_var"]), t(gamma), t(beta),
                               training=False, eps=bn["eps"]).numpy()
    err = compare("spatial_batchnorm_forward's output in test mode", outp["out"], expected,
                  hint="test mode normalizes with bn_param['running_mean'] and ['running_var'], "
                       "not with the statistics of the batch")
    return f"test-mode output matches PyTorch (relative error {err:.1e} <= 1e-09)"


register("spatial_batchnorm_forward.test_mode", ("spatial_batchnorm_forward",), _sbn_test_inputs,
         _sbn_test_probe, _sbn_test_judge,
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
