"""Checks of assignment 06: convolutional networks.

Oracles: ``torch.nn.functional.conv2d``, ``max_pool2d`` and ``batch_norm`` in float64 for
values, ``torch.autograd`` for gradients, plain torch reductions for the running statistics.
Tolerance 1e-9 relative to the largest entry everywhere: every quantity here is a sum of at
most a few thousand float64 products, so a correct implementation that merely adds in another
order stays below 1e-13, while any slip in an index, a stride or a sum lands far above.

Visible checks use small square images, stride 1 and pad 1 (2x2 pools with stride 2).
Hidden checks (``hidden=True``) draw other shapes and the corners a loop gets wrong: stride 2,
pad 0, non-square kernels and images, sizes the stride does not divide (the last rows and
columns are dropped, as in PyTorch), overlapping pool windows and tied maxima; the fast
convolution's hidden checks run on a bigger batch (values and gradients only: no timing).
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import CheckFailed, call, compare, register
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


def _conv_inputs(rng, hidden):
    if not hidden:
        return _conv_case(rng, N=2, C=3, H=5, W=5, F=4, HH=3, WW=3, stride=1, pad=1)
    # stride 2 and no padding, a kernel and an image that are not square; H - HH is odd, so
    # the stride does not divide it and the last row of x is reached by no window
    HH, WW = 3, 2
    H = HH + 2 * int(rng.integers(2, 4)) + 1
    W = H + int(rng.integers(1, 3))
    return _conv_case(rng, N=int(rng.integers(2, 5)), C=int(rng.integers(2, 4)), H=H, W=W,
                      F=int(rng.integers(2, 5)), HH=HH, WW=WW, stride=2, pad=0)


def _conv_fast_inputs(rng, hidden):
    if not hidden:
        return _conv_case(rng, N=2, C=3, H=5, W=5, F=4, HH=3, WW=3, stride=1, pad=1)
    # a bigger batch: stride 2 with padding, overlapping windows of a non-square kernel,
    # a non-square image whose padded width the stride does not divide
    HH, WW = 5, 3
    H = int(rng.integers(20, 28))
    W = 2 * ((H + 4) // 2) + 2 * int(rng.integers(0, 2))   # even: W + 2 pad - WW is odd
    return _conv_case(rng, N=int(rng.integers(12, 17)), C=int(rng.integers(3, 6)), H=H, W=W,
                      F=int(rng.integers(8, 13)), HH=HH, WW=WW, stride=2, pad=2)


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
def _pool_inputs(rng, hidden):
    if not hidden:
        N, C, H, W, PH, PW, S = 2, 3, 6, 6, 2, 2, 2
        x = rng.standard_normal((N, C, H, W))
    else:
        # windows of 3 rows taken 2 apart overlap (one pixel can be the maximum of two
        # windows); H - PH is odd, so the last row is in no window. Channel 0 holds small
        # integers, so that tied maxima are common (the gradient goes to the first one, as
        # in PyTorch); the other channels are Gaussian, so that a window in the wrong place
        # shows in the values
        PH, PW, S = 3, 2, 2
        N, C = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        H = PH + 2 * int(rng.integers(1, 3)) + 1
        W = PW + 2 * int(rng.integers(1, 3)) + int(rng.integers(0, 2))
        x = rng.standard_normal((N, C, H, W))
        x[:, 0] = rng.integers(-1, 2, size=(N, H, W))
        # row 2 belongs to the windows of rows 0-2 and 2-4: a large value there is the
        # maximum of both, and must collect both gradients
        x[:, -1, 2, 0] = 5.0
    H_out, W_out = 1 + (H - PH) // S, 1 + (W - PW) // S
    return {"args": [x, {"pool_height": PH, "pool_width": PW, "stride": S}],
            "dout": rng.standard_normal((N, C, H_out, W_out))}


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
def _sbn_inputs(rng, hidden):
    if not hidden:
        N, C, H, W = 4, 3, 5, 6
        eps = 1e-5
    else:
        N, C, H, W = (int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(2, 6)),
                      int(rng.integers(2, 6)))
        eps = 1e-3
    # every channel its own mean and scale; in hidden inputs channel 0 varies so little that
    # eps matters
    scale = rng.uniform(0.5, 3.0, size=(1, C, 1, 1))
    if hidden:
        scale[0, 0] = 0.03
    x = rng.uniform(-4, 4, size=(1, C, 1, 1)) + scale * rng.standard_normal((N, C, H, W))
    gamma = rng.uniform(0.5, 2.0, size=C)
    beta = rng.standard_normal(C)
    return {"args": [x, gamma, beta, {"mode": "train", "eps": eps}],
            "dout": rng.standard_normal((N, C, H, W))}


def _sbn_describe(inp):
    x, _g, _b, bn = inp["args"]
    return f"x of shape {x.shape}, mode 'train', eps {bn['eps']:g}"


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
    "spatial_batchnorm", _sbn_inputs,
    lambda x, g, b, bn: _F().batch_norm(x, None, None, g, b, training=True, eps=bn["eps"]),
    arg_names=("x", "gamma", "beta"), grad_names=("dx", "dgamma", "dbeta"),
    forward_extra=("bn_param",), hints=_SBN_HINTS, describe=_sbn_describe)


def _sbn_test_inputs(rng, hidden):
    inp = _sbn_inputs(rng, hidden)
    x, gamma, beta, bn = inp["args"]
    C = x.shape[1]
    # running statistics far from this batch's, so that using the batch's is caught
    bn = {"mode": "test", "eps": bn["eps"], "running_mean": rng.standard_normal(C),
          "running_var": rng.uniform(0.5, 4.0, size=C)}
    return {"args": [x, gamma, beta, bn]}


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


def _sbn_running_inputs(rng, hidden):
    first = _sbn_inputs(rng, hidden)["args"]
    x1, gamma, beta, bn = first
    x2 = 1.5 + 0.5 * rng.standard_normal(x1.shape)
    C = x1.shape[1]
    return {"x1": x1, "x2": x2, "gamma": gamma, "beta": beta, "eps": bn["eps"],
            "momentum": 0.9 if not hidden else float(rng.uniform(0.6, 0.8)),
            "running_mean": rng.standard_normal(C), "running_var": rng.uniform(0.5, 2.0, size=C)}


def _sbn_running_probe(fns, inp):
    bn = {"mode": "train", "eps": inp["eps"], "momentum": inp["momentum"],
          "running_mean": np.array(inp["running_mean"], dtype=np.float64),
          "running_var": np.array(inp["running_var"], dtype=np.float64)}
    for key in ("x1", "x2"):     # two training steps with the same bn_param
        call(fns[0], "spatial_batchnorm_forward", inp[key], inp["gamma"], inp["beta"], bn, returns=2)
    if "running_mean" not in bn or "running_var" not in bn:
        raise CheckFailed("after a training step bn_param must hold 'running_mean' and 'running_var'")
    return {"running_mean": bn["running_mean"], "running_var": bn["running_var"]}


def _sbn_running_judge(inp, outp):
    torch = _torch()
    m = inp["momentum"]
    rm, rv = torch.tensor(inp["running_mean"]), torch.tensor(inp["running_var"])
    for key in ("x1", "x2"):
        x = torch.tensor(inp[key])
        rm = m * rm + (1 - m) * x.mean(dim=(0, 2, 3))
        rv = m * rv + (1 - m) * x.var(dim=(0, 2, 3), unbiased=False)
    hint = ("per channel: running = momentum * running + (1 - momentum) * batch statistic, with "
            "the mean and the BIASED variance over axes (0, 2, 3); bn_param is updated in place "
            f"(momentum here {m:g}, two training steps)")
    e1 = compare("bn_param['running_mean'] after two training steps", outp["running_mean"],
                 rm.numpy(), hint=hint, oracle="torch")
    e2 = compare("bn_param['running_var'] after two training steps", outp["running_var"],
                 rv.numpy(), hint=hint, oracle="torch")
    return f"running mean and variance match (relative errors {e1:.1e}, {e2:.1e} <= 1e-09)"


register("spatial_batchnorm_forward.running_stats", ("spatial_batchnorm_forward",),
         _sbn_running_inputs, _sbn_running_probe, _sbn_running_judge,
         doc="spatial_batchnorm_forward: running mean and variance after two training steps")
