"""Checks of assignment 02: multilayer perceptrons and backpropagation.

Oracles: ``torch.nn.functional`` in float64 for values, ``torch.autograd`` for gradients.
Visible checks use small fixed shapes; hidden ones (``hidden=True``) draw other shapes, 4-D
inputs for affine layers and extreme logits for the loss.
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import call, compare, register
from dlhw.checks.layerchecks import register_layer


def _torch():
    import torch
    return torch


def _sizes(rng, hidden, visible, low=1, high=9):
    return tuple(int(s) for s in rng.integers(low, high, size=len(visible))) if hidden else visible


# --------------------------------------------------------------------------- affine
def _affine_inputs(rng, hidden):
    N, D, M = _sizes(rng, hidden, (4, 6, 3))
    # hidden: a (N, d1, d2) input so that the flattening is checked too
    xshape = (N, 2, D) if hidden else (N, D)
    Dflat = int(np.prod(xshape[1:]))
    return {"args": [rng.standard_normal(xshape), rng.standard_normal((Dflat, M)),
                     rng.standard_normal(M)], "dout": rng.standard_normal((N, M))}


register_layer(
    "affine", _affine_inputs,
    lambda x, w, b: x.reshape(x.shape[0], -1) @ w + b,
    arg_names=("x", "w", "b"), grad_names=("dx", "dw", "db"),
    hints={"out": "out = x reshaped to (N, D) times w, plus b broadcast over the rows",
           "dx": "dx = dout @ w.T, reshaped back to x's shape",
           "dw": "dw = x_flat.T @ dout (x reshaped to (N, D))",
           "db": "db sums dout over the batch axis (axis 0)"})


# --------------------------------------------------------------------------- activations
def _act_inputs(rng, hidden, scale=1.0):
    shape = _sizes(rng, hidden, (5, 4)) + ((3,) if hidden else ())
    x = rng.standard_normal(shape) * scale
    if hidden:  # the numerically hard corners: large magnitudes
        x.flat[0], x.flat[-1] = 40.0, -800.0
    return {"args": [x], "dout": rng.standard_normal(shape)}


register_layer("relu", _act_inputs, lambda x: x.clamp(min=0), ("x",), ("dx",),
               hints={"dx": "the gradient passes where x > 0 and is 0 elsewhere"})
register_layer("sigmoid", lambda r, h: _act_inputs(r, h, 3.0), lambda x: x.sigmoid(), ("x",), ("dx",),
               hints={"out": "for large negative x, 1 / (1 + exp(-x)) overflows: use exp(x) / (1 + exp(x)) there",
                      "dx": "sigmoid'(x) = s (1 - s) with s = sigmoid(x)"})
register_layer("tanh", lambda r, h: _act_inputs(r, h, 2.0), lambda x: x.tanh(), ("x",), ("dx",),
               hints={"dx": "tanh'(x) = 1 - tanh(x)^2, not (1 - tanh(x))^2"})


# --------------------------------------------------------------------------- losses
def _loss_inputs(rng, hidden):
    N, C = _sizes(rng, hidden, (6, 5), 2, 12)
    scale = 1e3 if hidden else 3.0      # hidden: logits of size 1e3 (softmax must not overflow)
    return {"x": rng.standard_normal((N, C)) * scale, "y": rng.integers(0, C, size=N)}


def _softmax_oracle(x, y):
    torch = _torch()
    t = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(t, torch.tensor(y))
    loss.backward()
    return loss.item(), t.grad.numpy()


def _probe_loss(name):
    def probe(fns, inp):
        loss, dx = call(fns[0], name, inp["x"], inp["y"], returns=2)
        return {"loss": np.asarray(loss, dtype=np.float64) if np.ndim(loss) == 0 else loss, "dx": dx}
    return probe


def _judge_scalar(what, got, expected, hint):
    if np.ndim(got) != 0 and np.size(got) != 1:
        from dlhw.checks.core import fail
        fail(f"{what} should be a single number (the mean over the batch); got an array of shape {np.shape(got)}")
    return compare(what, np.reshape(got, ()), expected, hint=hint)


register("softmax_loss.loss", ("softmax_loss",), _loss_inputs, _probe_loss("softmax_loss"),
         lambda i, o: "loss matches PyTorch's cross_entropy (relative error %.1e)" % _judge_scalar(
             "the loss from softmax_loss", o["loss"], _softmax_oracle(i["x"], i["y"])[0],
             "subtract each row's max before exp (logits may be ~1e3), average over the batch"))
register("softmax_loss.dx", ("softmax_loss",), _loss_inputs, _probe_loss("softmax_loss"),
         lambda i, o: "dx matches PyTorch autograd (relative error %.1e)" % compare(
             "dx from softmax_loss", o["dx"], _softmax_oracle(i["x"], i["y"])[1], oracle="PyTorch autograd",
             hint="dx = (softmax(x) - one_hot(y)) / N"))


def _mse_inputs(rng, hidden):
    N, D = _sizes(rng, hidden, (6, 3))
    return {"x": rng.standard_normal((N, D)), "y": rng.standard_normal((N, D))}


def _mse_oracle(x, y):
    torch = _torch()
    t = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.mse_loss(t, torch.tensor(y))
    loss.backward()
    return loss.item(), t.grad.numpy()


register("mse_loss.loss", ("mse_loss",), _mse_inputs, _probe_loss("mse_loss"),
         lambda i, o: "loss matches PyTorch's mse_loss (relative error %.1e)" % _judge_scalar(
             "the loss from mse_loss", o["loss"], _mse_oracle(i["x"], i["y"])[0],
             "the mean of (x - y)^2 over all N * D entries, like torch.nn.functional.mse_loss"))
register("mse_loss.dx", ("mse_loss",), _mse_inputs, _probe_loss("mse_loss"),
         lambda i, o: "dx matches PyTorch autograd (relative error %.1e)" % compare(
             "dx from mse_loss", o["dx"], _mse_oracle(i["x"], i["y"])[1], oracle="PyTorch autograd",
             hint="d/dx mean((x - y)^2) = 2 (x - y) / (N * D)"))


# --------------------------------------------------------------------------- two-layer net
def _net_inputs(rng, hidden):
    N, D, H, C = _sizes(rng, hidden, (5, 4, 7, 3), 2, 10)
    return {"X": rng.standard_normal((N, D)), "y": rng.integers(0, C, size=N),
            "params": {"W1": 0.5 * rng.standard_normal((D, H)), "b1": 0.1 * rng.standard_normal(H),
                       "W2": 0.5 * rng.standard_normal((H, C)), "b2": 0.1 * rng.standard_normal(C)},
            "reg": 0.1 if not hidden else float(rng.uniform(0.0, 0.5))}


def _net_oracle(inp):
    torch = _torch()
    p = {k: torch.tensor(v, requires_grad=True) for k, v in inp["params"].items()}
    X = torch.tensor(inp["X"])
    scores = torch.relu(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor(inp["y"])) + \
        0.5 * inp["reg"] * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())
    loss.backward()
    return loss.item(), {k: t.grad.numpy() for k, t in p.items()}


def _net_probe(fns, inp):
    params = {k: v.copy() for k, v in inp["params"].items()}
    loss, grads = call(fns[0], "two_layer_net", inp["X"], params, inp["y"], inp["reg"], returns=2)
    if not isinstance(grads, dict):
        from dlhw.checks.core import CheckFailed
        raise CheckFailed(f"two_layer_net must return grads as a dict with keys W1, b1, W2, b2; got {type(grads).__name__}")
    return {"loss": np.asarray(loss, dtype=np.float64), "grads": {k: np.asarray(v) for k, v in grads.items()}}


def _net_judge_grads(inp, out):
    _, expected = _net_oracle(inp)
    worst = 0.0
    for k, e in expected.items():
        if k not in out["grads"]:
            from dlhw.checks.core import fail
            fail(f"grads has no key {k!r}; it has {sorted(out['grads'])}")
        worst = max(worst, compare(f"grads[{k!r}] from two_layer_net", out["grads"][k], e,
                                   oracle="PyTorch autograd",
                                   hint="the regularization adds reg * W to dW (the loss has 0.5 * reg * ||W||^2)"))
    return f"every gradient matches PyTorch autograd (largest relative error {worst:.1e})"


register("two_layer_net.loss", ("two_layer_net",), _net_inputs, _net_probe,
         lambda i, o: "loss matches PyTorch (relative error %.1e)" % _judge_scalar(
             "the loss from two_layer_net", o["loss"], _net_oracle(i)[0],
             "data loss (mean softmax cross-entropy) + 0.5 * reg * (sum W1^2 + sum W2^2); biases are not penalized"))
register("two_layer_net.grads", ("two_layer_net",), _net_inputs, _net_probe, _net_judge_grads)
