"""Checks of convolutional layers (assignment 06): convolution (naive and fast), max pooling.

Oracles: ``torch.nn.functional.conv2d`` and ``max_pool2d`` in float64 for values,
``torch.autograd`` for gradients. (Spatial batch normalization, also of 06, is checked with the
other normalizations, in normalization.py.)
Tolerance 1e-9 relative to the largest entry everywhere: every quantity here is a sum of at
most a few thousand float64 products, so a correct implementation that merely adds in another
order stays below 1e-13, while any slip in an index, a stride or a sum lands far above.

Every check runs a fixed list of cases, visible and hidden alike, so that every student is
tested on the same rules and every rule a hidden test checks is shown by a visible one: stride
1 and 2 with pad 0 and 1, square and non-square kernels and images, sizes the stride does not
divide (the last rows and columns are dropped, as in PyTorch), N = 1; pools with square and
non-square windows, overlapping windows, odd and even widths and tied maxima. Hidden checks
(``hidden=True``) draw other sizes and values inside each case; the fast convolution's last
hidden case runs on a bigger batch (values and gradients only: no timing).
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases
from dlhw.checks.spec import torch_layer


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

torch_layer("conv", _conv_inputs, _conv_oracle, ("dx", "dw", "db"), hints=_CONV_HINTS, describe=_conv_describe)
torch_layer("conv_fast", _conv_fast_inputs, _conv_oracle, ("dx", "dw", "db"), hints=_CONV_HINTS,
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


torch_layer(
    "max_pool", _pool_inputs,
    lambda x, pp: _F().max_pool2d(x, (pp["pool_height"], pp["pool_width"]), stride=pp["stride"]),
    ("dx",), describe=_pool_describe,
    hints={"out": "out[n, c, i, j] = max of x[n, c, i*S:i*S+PH, j*S:j*S+PW] with "
                  "H' = 1 + (H - PH) // S (pool_height and pool_width may differ)",
           "dx": "the whole dout[n, c, i, j] goes to ONE input: the first maximum of window (i, j) "
                 "in row-major order (np.argmax's choice, and PyTorch's, when maxima tie); "
                 "every other entry of the window gets 0, and a pixel that is the maximum of "
                 "several overlapping windows collects the sum (+=)"})
