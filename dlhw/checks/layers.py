"""Checks of layers and backpropagation (assignment 02): affine, activations, losses, a two-layer net.

Oracles: ``torch.nn.functional`` in float64 for values, ``torch.autograd`` for gradients.
Every check runs a fixed list of cases, visible and hidden alike (leading axes and N = 1 for
affine layers, magnitudes of 800 for activations, logits of 1e3 for the loss); hidden ones
(``hidden=True``) draw other sizes and values inside each case.
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, call, compare
from dlhw.checks.helpers import scalar, sizes, torch as _torch
from dlhw.checks.spec import loss, torch_layer, values



# --------------------------------------------------------------------------- affine
# Fixed cases (visible and hidden alike; hidden ones draw other sizes): every student's tests
# exercise the same rules, and a rule a hidden test checks is one a visible test showed.
def _affine_case(xshape_of):
    def make(rng):
        N, D, M = sizes(rng, 2, 7, 3)
        xshape = xshape_of(rng, N, D)
        Dflat = int(np.prod(xshape[1:]))
        return {"args": [rng.standard_normal(xshape), rng.standard_normal((Dflat, M)),
                         rng.standard_normal(M)], "dout": rng.standard_normal((xshape[0], M))}
    return make


def _shape_properties(inp):
    """Properties of the first argument's shape: leading axes (more than 2), N = 1, D = 1."""
    x = inp["args"][0]
    props = {"leading axes" if x.ndim > 2 else "2-D x"}
    if x.shape[0] == 1:
        props.add("N = 1")
    if x.ndim == 2 and x.shape[1] == 1:
        props.add("D = 1")
    return props


_AFFINE_CASES = Cases([
    Case("(N, D) input", {"2-D x"}, _affine_case(lambda rng, N, D: (N, D))),
    # (N, d1, d2): the flattening to (N, d1 * d2), and dx reshaped back to x's shape
    Case("(N, d1, d2) input", {"leading axes"}, _affine_case(lambda rng, N, D: (N, 2, D))),
    Case("(1, d1, d2, d3) input", {"leading axes", "N = 1"},
         _affine_case(lambda rng, N, D: (1, 2, D, 3))),
    Case("(N, 1) input", {"2-D x", "D = 1"}, _affine_case(lambda rng, N, D: (N, 1))),
], measure=_shape_properties)

torch_layer(
    "affine", _AFFINE_CASES,
    lambda x, w, b: x.reshape(x.shape[0], -1) @ w + b,
    grads=("dx", "dw", "db"),
    hints={"out": "out = x reshaped to (N, D) times w, plus b broadcast over the rows",
           "dx": "dx = dout @ w.T, reshaped back to x's shape",
           "dw": "dw = x_flat.T @ dout (x reshaped to (N, D))",
           "db": "db sums dout over the batch axis (axis 0)"},
    describe=lambda inp: f"x of shape {inp['args'][0].shape}")


# --------------------------------------------------------------------------- activations
def _act_case(ndim, scale, large):
    def make(rng):
        shape = sizes(rng, 2, 7, ndim)
        x = rng.standard_normal(shape) * scale
        if large:  # the numerically hard corners: large magnitudes (exp(800) overflows)
            x.flat[0], x.flat[-1] = 40.0, -800.0
        return {"args": [x], "dout": rng.standard_normal(shape)}
    return make


def _act_properties(inp):
    x = inp["args"][0]
    props = {f"{x.ndim}-D x"}
    if np.max(np.abs(x)) > 700:
        props.add("large magnitudes")
    return props


def _act_cases(scale):
    return Cases([Case("(N, D) input", {"2-D x"}, _act_case(2, scale, False)),
                  Case("3-D input with |x| up to 800", {"3-D x", "large magnitudes"},
                       _act_case(3, scale, True))], measure=_act_properties)


torch_layer("relu", _act_cases(1.0), lambda x: x.clamp(min=0), ("dx",),
            hints={"dx": "the gradient passes where x > 0 and is 0 elsewhere"})
# the notebook calls 1 / (1 + exp(-x)) a trap: it overflows (a RuntimeWarning, then inf) for
# x = -800, so the probe runs under np.errstate(over="raise") and an overflow fails the check
torch_layer("sigmoid", _act_cases(3.0), lambda x: x.sigmoid(), ("dx",),
            hints={"out": "for large negative x, 1 / (1 + exp(-x)) overflows: use exp(x) / (1 + exp(x)) there",
                   "dx": "sigmoid'(x) = s (1 - s) with s = sigmoid(x)",
                   "overflow": "exp(-x) overflows for x < -709 (here x = -800): compute sigmoid "
                               "from exp(-|x|), which never overflows, e.g. exp(x) / (1 + exp(x)) "
                               "where x < 0"},
            errstate={"over": "raise"})
torch_layer("tanh", _act_cases(2.0), lambda x: x.tanh(), ("dx",),
            hints={"dx": "tanh'(x) = 1 - tanh(x)^2, not (1 - tanh(x))^2"})


# --------------------------------------------------------------------------- losses
def _loss_case(scale, N=None):
    def make(rng):
        n, C = sizes(rng, 2, 12, 2)
        n = n if N is None else N
        x, y = rng.standard_normal((n, C)) * scale, rng.integers(0, C, size=n)
        if scale > 100:
            # One row holds a logit of +1500 (exp overflows without the max shift) and its label's
            # logit is at least 1000 below it (its probability underflows to exactly 0, so the log
            # of a probability is caught): for every draw, not only when the labels fall there.
            r = int(rng.integers(n))
            x[r, (y[r] + 1 + int(rng.integers(C - 1))) % C] = 1500.0
            x[r, y[r]] = min(x[r, y[r]], 500.0)
        return {"x": x, "y": y}
    return make


def _loss_properties(inp):
    x = inp["x"]
    props = {"logits of 1e3" if np.max(np.abs(x)) > 100 else "moderate logits"}
    if x.shape[0] == 1:
        props.add("N = 1")
    return props


# logits of size 1e3: softmax must not overflow (subtract each row's max), visible too
_LOSS_CASES = Cases([Case("moderate logits", {"moderate logits"}, _loss_case(3.0)),
                     Case("logits of 1e3", {"logits of 1e3"}, _loss_case(1e3)),
                     Case("one example", {"moderate logits", "N = 1"}, _loss_case(3.0, N=1))],
                    measure=_loss_properties)


def _torch_loss_oracle(name):
    """The oracle of a loss: torch.nn.functional.<name>(x, y) and its gradient wrt x, by autograd."""
    def oracle(inp):
        torch = _torch()
        t = torch.tensor(inp["x"], requires_grad=True)
        loss = getattr(torch.nn.functional, name)(t, torch.tensor(inp["y"]))
        loss.backward()
        return {"loss": np.asarray(loss.item()), "dx": t.grad.numpy()}
    return oracle


_cross_entropy_oracle = _torch_loss_oracle("cross_entropy")
_mse_oracle = _torch_loss_oracle("mse_loss")


def _probe_loss(name):
    def probe(fns, inp):
        loss, dx = call(fns[0], name, inp["x"].copy(), inp["y"].copy(), returns=2)
        return {"loss": np.asarray(loss, dtype=np.float64) if np.ndim(loss) == 0 else loss, "dx": dx}
    return probe


def _softmax_loss_hint(inp, out):
    """The hint for a wrong loss: an infinite loss with a right dx took the log of a probability."""
    hint = "subtract each row's max before exp (logits may be ~1e3), average over the batch"
    try:
        loss = np.asarray(out["loss"], dtype=np.float64)
        dx = np.asarray(out["dx"], dtype=np.float64)
    except (TypeError, ValueError, KeyError):
        return hint
    if loss.size != 1 or np.isfinite(loss).all():
        return hint
    expected_dx = _cross_entropy_oracle(inp)["dx"]
    if dx.shape == expected_dx.shape and np.isfinite(dx).all() and np.allclose(dx, expected_dx, rtol=1e-6,
                                                                                 atol=1e-12):
        return ("your probabilities are right (dx matches), but with logits of 1e3 the small ones underflow "
                "to 0 and log(0) = -inf: use log-sum-exp, never the log of a probability: log softmax(x) "
                "= (x - max) - log(sum(exp(x - max))), then pick the entry of class y")
    return hint + "; then take the log with log-sum-exp, never the log of a probability"


loss("softmax_loss", _LOSS_CASES, _probe_loss("softmax_loss"), _cross_entropy_oracle, grad="dx", grad_check="dx",
     oracle_says="PyTorch's cross_entropy",
     hints={"loss": _softmax_loss_hint, "dx": "dx = (softmax(x) - one_hot(y)) / N"})


def _mse_make(rng):
    N, D = sizes(rng, 2, 9, 2)   # D >= 2: the mean is over N * D entries
    return {"x": rng.standard_normal((N, D)), "y": rng.standard_normal((N, D))}


_MSE_CASES = Cases([Case("(N, D) batch", {"2-D x"}, _mse_make)])
loss("mse_loss", _MSE_CASES, _probe_loss("mse_loss"), _mse_oracle, grad="dx", grad_check="dx",
     oracle_says="PyTorch's mse_loss",
     hints={"loss": "the mean of (x - y)^2 over all N * D entries, like torch.nn.functional.mse_loss",
            "dx": "d/dx mean((x - y)^2) = 2 (x - y) / (N * D)"})


# --------------------------------------------------------------------------- two-layer net
def _net_make(rng):
    N, D, H, C = sizes(rng, 2, 10, 4)
    return {"X": rng.standard_normal((N, D)), "y": rng.integers(0, C, size=N),
            "params": {"W1": 0.5 * rng.standard_normal((D, H)), "b1": 0.1 * rng.standard_normal(H),
                       "W2": 0.5 * rng.standard_normal((H, C)), "b2": 0.1 * rng.standard_normal(C)},
            "reg": float(rng.uniform(0.05, 0.5))}


_NET_CASES = Cases([Case("regularized net", {"reg > 0"}, _net_make)])


def _net_oracle(inp):
    torch = _torch()
    p = {k: torch.tensor(v, requires_grad=True) for k, v in inp["params"].items()}
    X = torch.tensor(inp["X"])
    scores = torch.relu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor(inp["y"])) + \
        0.5 * inp["reg"] * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())
    loss.backward()
    return {"loss": np.asarray(loss.item()), **{k: t.grad.numpy() for k, t in p.items()}}


def _net_probe(fns, inp):
    params = {k: v.copy() for k, v in inp["params"].items()}
    loss, grads = call(fns[0], "two_layer_net", inp["X"].copy(), params, inp["y"].copy(), inp["reg"], returns=2)
    if not isinstance(grads, dict):
        raise CheckFailed(f"two_layer_net must return grads as a dict with keys W1, b1, W2, b2; got {type(grads).__name__}")
    return {"loss": np.asarray(loss, dtype=np.float64), "grads": {k: np.asarray(v) for k, v in grads.items()}}


def _compare_scalar(what, got, expected, tol=1e-9, hint="", oracle="PyTorch"):
    return compare(what, scalar(what, got), expected, tol=tol, hint=hint, oracle=oracle)


values("two_layer_net.loss", ("two_layer_net",), _NET_CASES, _net_probe, _net_oracle, ("loss",),
       label="the loss from {fn}", compare_with=_compare_scalar, says="loss matches PyTorch (relative error {err:.1e})",
       hints={"loss": "data loss (mean softmax cross-entropy) + 0.5 * reg * (sum W1^2 + sum W2^2); biases are "
                      "not penalized"})
values("two_layer_net.grads", ("two_layer_net",), _NET_CASES, _net_probe, _net_oracle, ("W1", "b1", "W2", "b2"),
       within="grads", label="grads[{key!r}] from {fn}", oracle_name="PyTorch autograd",
       missing="grads has no key {key!r}; it has {have}",
       hints=lambda key, inp, out: "the regularization adds reg * W to dW (the loss has 0.5 * reg * ||W||^2)",
       says="every gradient matches PyTorch autograd (largest relative error {err:.1e})")
