"""Checks of the torch ports (assignment 09): the layers ported to torch, a device, the training loop.

The torch ports of earlier layers are checked by the very checks of the numpy layers they port
(assignments 02, 05, 06, 07 and 08), with the same visible and hidden cases and the same
oracles (PyTorch's built-ins in float64 and their autograd), through an *adapter*: the student's
torch function, called on float64 tensors, stands in for the numpy forward, and
``torch.autograd`` applied to its result stands in for the hand-written backward. What the
earlier checks say about a wrong value or gradient therefore holds here too; their messages
name the torch function. Tolerances are theirs: 1e-9 of the largest entry, float64.

The adapter adds what only a torch port can get wrong: a result that is not a tensor, a graph
broken by a trip through numpy or ``.item()`` (no gradient can reach the inputs), running
statistics of batch normalization that stay attached to the autograd graph.

The training loop is checked against a replay written without ``torch.nn`` modules or
``torch.optim``: the same small network (linear, batch normalization, ReLU, linear) as plain
functional operations, its gradients from ``torch.autograd.grad`` and the SGD-with-momentum
update spelled out (PyTorch's form: ``buf = momentum * buf + (grad + weight_decay * p)``,
``p -= lr * buf``). Hidden cases change every size, the batch size (never dividing the number of
examples, so the last batch is short), the learning rate, momentum and weight decay.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# the modules whose checks the ports reuse (importing them registers those checks)
from dlhw.checks import attention, convolution, layers, normalization, recurrent  # noqa: F401
from dlhw.checks.core import Case, Cases, CheckFailed, call, compare, fail, register
from dlhw.checks.helpers import ri as _ri, torch as _torch
from dlhw.checks.spec import port

TOL = 1e-9


# =========================================================================== adapters
def _leaf(a):
    torch = _torch()
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=True)


def _tensor_result(fn: str, what: str, t):
    torch = _torch()
    if not isinstance(t, torch.Tensor):
        hint = ""
        if isinstance(t, (float, int, np.ndarray, np.floating)):
            hint = (": a number or a numpy array has left autograd's graph, so no gradient can flow "
                    "back; keep the result a tensor (no .item(), .numpy() or np. functions)")
        raise CheckFailed(f"{fn} must return a torch.Tensor as {what}; got {type(t).__name__}{hint}")
    return t


def _grads(fn: str, outs, douts, inputs: Sequence):
    """Gradients of sum_i <outs[i], douts[i]> with respect to the (name, leaf) pairs ``inputs``."""
    torch = _torch()
    for o, d in zip(outs, douts):
        if tuple(o.shape) != tuple(np.shape(d)):
            raise CheckFailed(f"{fn}'s result has shape {tuple(o.shape)}; expected {tuple(np.shape(d))}")
    if not any(o.requires_grad for o in outs):
        raise CheckFailed(f"{fn}'s result is not connected to its inputs in the autograd graph, so no "
                          "gradient can be computed: did an intermediate go through numpy (.numpy(), np.*), "
                          ".item(), .detach() or torch.tensor(...)? Keep every step a torch operation")
    pairs = [(o, torch.as_tensor(np.asarray(d, dtype=np.float64)).to(o.dtype)) for o, d in zip(outs, douts)
             if o.requires_grad]
    gs = torch.autograd.grad([p[0] for p in pairs], [t for _, t in inputs], [p[1] for p in pairs],
                             allow_unused=True, retain_graph=True)   # a check may backprop twice
    # every input of these layers shapes the result, so autograd's None means a cut graph
    cut = [name for (name, _), g in zip(inputs, gs) if g is None]
    if cut:
        raise CheckFailed(f"no gradient reaches {', '.join(cut)}: in autograd's graph {fn}'s result does not "
                          "depend on it (a .detach(), a trip through numpy, torch.tensor(...) of an "
                          "intermediate, or a missing term?)")
    return tuple(g.detach().cpu().double().numpy() for g in gs)


def _values(*ts):
    return tuple(t.detach().cpu().double().numpy() for t in ts)


def _softmax_adapters(fn: Callable, name: str, sub: str) -> dict:
    def softmax_loss(x, y):
        torch = _torch()
        xt = _leaf(x)
        loss = _tensor_result(name, "the loss", fn(xt, torch.as_tensor(np.asarray(y), dtype=torch.int64)))
        if loss.numel() != 1:
            raise CheckFailed(f"{name} must return the MEAN loss, a 0-d tensor; got a tensor of shape "
                              f"{tuple(loss.shape)}")
        (dx,) = _grads(name, [loss.reshape(())], [np.array(1.0)], [("scores", xt)])
        return float(loss.detach()), dx
    return {"softmax_loss": softmax_loss}


def _batchnorm_adapters(fn: Callable, name: str, sub: str) -> dict:
    torch_state_checked = sub == "batchnorm_forward.running"

    def batchnorm_forward(x, gamma, beta, bn_param):
        torch = _torch()
        ins = (_leaf(x), _leaf(gamma), _leaf(beta))
        tparam = {k: torch.tensor(v, dtype=torch.float64) if isinstance(v, np.ndarray) else v
                  for k, v in bn_param.items()}
        out = _tensor_result(name, "out", fn(*ins, tparam))
        for key in ("running_mean", "running_var"):
            v = tparam.get(key)
            if isinstance(v, torch.Tensor):
                if v.requires_grad and torch_state_checked:
                    raise CheckFailed(f"{name}: bn_param['{key}'] is part of the autograd graph "
                                      "(requires_grad=True): update it under torch.no_grad() or from "
                                      ".detach()ed statistics, or every training step keeps the graphs "
                                      "of all the steps before it alive")
                bn_param[key] = v.detach().cpu().double().numpy().copy()
            elif key in tparam:
                bn_param[key] = v
        return _values(out)[0], (out, ins)

    def batchnorm_backward(dout, cache):
        out, ins = cache
        return _grads(name, [out], [dout], list(zip(("x", "gamma", "beta"), ins)))
    return {"batchnorm_forward": batchnorm_forward, "batchnorm_backward": batchnorm_backward}


def _conv_adapters(fn: Callable, name: str, sub: str) -> dict:
    def conv_forward(x, w, b, conv_param):
        ins = (_leaf(x), _leaf(w), _leaf(b))
        out = _tensor_result(name, "out", fn(*ins, dict(conv_param)))
        return _values(out)[0], (out, ins)

    def conv_backward(dout, cache):
        out, ins = cache
        return _grads(name, [out], [dout], list(zip(("x", "w", "b"), ins)))
    return {"conv_forward": conv_forward, "conv_backward": conv_backward}


_LSTM_ARGS = ("x", "prev_h", "prev_c", "Wx", "Wh", "b")


def _lstm_adapters(fn: Callable, name: str, sub: str) -> dict:
    def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
        ins = tuple(_leaf(a) for a in (x, prev_h, prev_c, Wx, Wh, b))
        res = fn(*ins)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise CheckFailed(f"{name} must return the pair (next_h, next_c); got {type(res).__name__}")
        next_h = _tensor_result(name, "next_h", res[0])
        next_c = _tensor_result(name, "next_c", res[1])
        h, c = _values(next_h, next_c)
        return h, c, (next_h, next_c, ins)

    def lstm_step_backward(dnext_h, dnext_c, cache):
        next_h, next_c, ins = cache
        return _grads(name, [next_h, next_c], [dnext_h, dnext_c], list(zip(_LSTM_ARGS, ins)))
    return {"lstm_step_forward": lstm_step_forward, "lstm_step_backward": lstm_step_backward}


def _attention_adapters(fn: Callable, name: str, sub: str) -> dict:
    def attention_forward(q, k, v, mask=None):
        torch = _torch()
        ins = (_leaf(q), _leaf(k), _leaf(v))
        tmask = None if mask is None else torch.as_tensor(np.asarray(mask, dtype=bool))
        out = _tensor_result(name, "out", fn(*ins, tmask))
        return _values(out)[0], (out, ins)

    def attention_backward(dout, cache):
        out, ins = cache
        return _grads(name, [out], [dout], list(zip(("q", "k", "v"), ins)))
    return {"attention_forward": attention_forward, "attention_backward": attention_backward}


def _renames(forward: str, backward: str, port: str) -> dict:
    return {backward: f"autograd through {port}", forward: port}


port("softmax_loss_torch", "softmax_loss_torch", ["softmax_loss.loss"], _softmax_adapters,
              {"the loss from softmax_loss": "the loss from softmax_loss_torch", "softmax_loss": "softmax_loss_torch"})
port("softmax_loss_torch.dscores", "softmax_loss_torch", ["softmax_loss.dx"], _softmax_adapters,
              {"dx from softmax_loss": "the gradient of the loss with respect to scores (autograd through "
                                       "softmax_loss_torch)", "softmax_loss": "softmax_loss_torch"})

_BN = _renames("batchnorm_forward", "batchnorm_backward", "batchnorm_torch")
port("batchnorm_torch", "batchnorm_torch", ["batchnorm_forward"], _batchnorm_adapters, _BN)
port("batchnorm_torch.grads", "batchnorm_torch",
              ["batchnorm_backward.dx", "batchnorm_backward.dgamma", "batchnorm_backward.dbeta"],
              _batchnorm_adapters, _BN)
port("batchnorm_torch.running", "batchnorm_torch", ["batchnorm_forward.running"], _batchnorm_adapters, _BN)
port("batchnorm_torch.test", "batchnorm_torch", ["batchnorm_forward.test"], _batchnorm_adapters, _BN)

_CONV = _renames("conv_forward", "conv_backward", "conv2d_torch")
port("conv2d_torch", "conv2d_torch", ["conv_forward"], _conv_adapters, _CONV)
port("conv2d_torch.grads", "conv2d_torch", ["conv_backward.dx", "conv_backward.dw", "conv_backward.db"],
              _conv_adapters, _CONV)

_LSTM = _renames("lstm_step_forward", "lstm_step_backward", "lstm_step_torch")
port("lstm_step_torch", "lstm_step_torch", ["lstm_step_forward.next_h", "lstm_step_forward.next_c"],
              _lstm_adapters, _LSTM)
port("lstm_step_torch.grads", "lstm_step_torch",
              [f"lstm_step_backward.{g}" for g in ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db")],
              _lstm_adapters, _LSTM)

_ATT = _renames("attention_forward", "attention_backward", "attention_torch")
port("attention_torch", "attention_torch", ["attention_forward"], _attention_adapters, _ATT)
port("attention_torch.grads", "attention_torch",
              ["attention_backward.dq", "attention_backward.dk", "attention_backward.dv"], _attention_adapters, _ATT)


# =========================================================================== get_device
def _device_probe(fns, inp):
    torch = _torch()
    dev = call(fns[0], "get_device")
    return {"is_device": isinstance(dev, torch.device), "type_name": type(dev).__name__,
            "device": str(getattr(dev, "type", dev)), "cuda_available": bool(torch.cuda.is_available())}


def _device_judge(inp, out):
    if not out["is_device"]:
        fail(f"get_device must return a torch.device; got a {out['type_name']} ({out['device']!r}). "
             "Hint: torch.device('cuda') or torch.device('cpu')")
    want = "cuda" if out["cuda_available"] else "cpu"
    if out["device"] != want:
        fail(f"get_device returned the device {out['device']!r}, but torch.cuda.is_available() is "
             f"{out['cuda_available']} here, so it should be {want!r}")
    return f"returns torch.device({want!r}), as torch.cuda.is_available() says"


register("get_device", ("get_device",), lambda rng, hidden: {}, _device_probe, _device_judge,
         doc="get_device: a torch.device, cuda exactly when torch.cuda.is_available()")


# =========================================================================== the training loop
def _loop_inputs(rng, hidden, evaluation=False, drawn=None):
    """``drawn``: other sizes and hyperparameters (default: when hidden), with weight decay."""
    if hidden if drawn is None else drawn:
        D, H, C = _ri(rng, 3, 9), _ri(rng, 4, 12), _ri(rng, 2, 6)
        bs = _ri(rng, 5, 16)
        n = bs * _ri(rng, 3, 6) + _ri(rng, 2, bs - 1)          # the last batch is short (>= 2 for batch norm)
        lr, mom = float(rng.uniform(0.02, 0.3)), float(rng.uniform(0.5, 0.95))
        wd = float(rng.choice([1e-3, 1e-2]))
    else:
        D, H, C, bs, n, lr, mom, wd = 5, 7, 3, 8, 30, 0.1, 0.9, 0.0
    x = rng.standard_normal((n, D)) * 1.5
    y = rng.integers(0, C, size=n)
    inp = {"X": x, "y": y, "batch_size": bs, "lr": lr, "momentum": mom, "weight_decay": wd,
           "W1": rng.standard_normal((H, D)) / np.sqrt(D), "b1": 0.1 * rng.standard_normal(H),
           "gamma": rng.uniform(0.5, 1.5, H), "beta": 0.1 * rng.standard_normal(H),
           "W2": rng.standard_normal((C, H)) / np.sqrt(H), "b2": 0.1 * rng.standard_normal(C),
           "running_mean": np.zeros(H), "running_var": np.ones(H)}
    if evaluation:
        # running statistics far from the batches', so that batch statistics show in the loss
        inp["running_mean"] = rng.uniform(-1.0, 1.0, H)
        inp["running_var"] = rng.uniform(0.3, 3.0, H)
    return inp


_STATE_KEYS = {"0.weight": "W1", "0.bias": "b1", "1.weight": "gamma", "1.bias": "beta",
               "1.running_mean": "running_mean", "1.running_var": "running_var",
               "3.weight": "W2", "3.bias": "b2"}


def _model(inp, device):
    """linear -> batch norm -> relu -> linear, float64, with the case's weights, on ``device``."""
    torch = _torch()
    nn = torch.nn
    H, D = inp["W1"].shape
    model = nn.Sequential(nn.Linear(D, H), nn.BatchNorm1d(H), nn.ReLU(), nn.Linear(H, inp["W2"].shape[0])).double()
    with torch.no_grad():
        for key, src in _STATE_KEYS.items():
            model.state_dict()[key].copy_(torch.tensor(inp[src]))
    return model.to(device)


def _loader(inp):
    torch = _torch()
    from torch.utils.data import DataLoader, TensorDataset
    data = TensorDataset(torch.tensor(inp["X"]), torch.tensor(inp["y"], dtype=torch.int64))
    return DataLoader(data, batch_size=inp["batch_size"], shuffle=False)


def _device_for(hidden: bool):
    torch = _torch()
    return torch.device("cuda" if hidden and torch.cuda.is_available() else "cpu")


def _state(model) -> dict:
    return {src: model.state_dict()[key].detach().cpu().numpy().copy() for key, src in _STATE_KEYS.items()}


def _as_number(fn: str, what: str, v) -> float:
    torch = _torch()
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise CheckFailed(f"{fn} must return {what} as one number; got a tensor of shape {tuple(v.shape)}")
        return float(v.detach().cpu())
    try:
        return float(v)
    except (TypeError, ValueError):
        raise CheckFailed(f"{fn} must return {what} as a float; got {type(v).__name__}") from None


class _RecordingLoss:
    """CrossEntropyLoss that notes, at every call, whether autograd and training mode were on."""

    def __init__(self, model):
        self.model, self.calls, self.grad_on, self.training = model, 0, [], []
        self.inner = _torch().nn.CrossEntropyLoss()

    def __call__(self, scores, target):
        torch = _torch()
        self.calls += 1
        self.grad_on.append(bool(torch.is_grad_enabled()))
        self.training.append(bool(self.model.training))
        return self.inner(scores, target)


def _train_probe(fns, inp):
    torch = _torch()
    device = _device_for(inp.get("hidden", False))
    model = _model(inp, device)
    model.eval()                       # the function must switch training mode on itself
    opt = torch.optim.SGD(model.parameters(), lr=inp["lr"], momentum=inp["momentum"],
                          weight_decay=inp["weight_decay"])
    loss_fn = _RecordingLoss(model)
    ret = call(fns[0], "train_one_epoch", model, _loader(inp), loss_fn, opt, device)
    return {"loss": _as_number("train_one_epoch", "the mean loss", ret), "state": _state(model),
            "loss_calls": loss_fn.calls}


def _forward_functional(p: dict, x, training: bool, running: dict):
    """The network as functional torch operations; batch norm updates ``running`` in training."""
    torch = _torch()
    F = torch.nn.functional
    h = F.linear(x, p["W1"], p["b1"])
    if training:
        mean, var = h.mean(dim=0), h.var(dim=0, correction=0)
        n = h.shape[0]
        with torch.no_grad():   # PyTorch's BatchNorm1d: momentum 0.1 on the new batch, unbiased running var
            running["running_mean"] = 0.9 * running["running_mean"] + 0.1 * mean
            running["running_var"] = 0.9 * running["running_var"] + 0.1 * var * n / (n - 1)
    else:
        mean, var = running["running_mean"], running["running_var"]
    h = (h - mean) / torch.sqrt(var + 1e-5) * p["gamma"] + p["beta"]
    return F.linear(torch.relu(h), p["W2"], p["b2"])


_PARAMS = ("W1", "b1", "gamma", "beta", "W2", "b2")


def _replay_epoch(inp, zero_grad=True, training=True):
    """(state, per-batch losses, batch sizes) of one epoch of SGD with momentum, spelled out."""
    torch = _torch()
    F = torch.nn.functional
    p = {k: torch.tensor(inp[k], requires_grad=True) for k in _PARAMS}
    running = {k: torch.tensor(inp[k]) for k in ("running_mean", "running_var")}
    buf, acc = {}, {k: torch.zeros_like(v) for k, v in p.items()}
    X, y = torch.tensor(inp["X"]), torch.tensor(inp["y"], dtype=torch.int64)
    losses, sizes, bs = [], [], inp["batch_size"]
    for start in range(0, len(X), bs):
        xb, yb = X[start:start + bs], y[start:start + bs]
        loss = F.cross_entropy(_forward_functional(p, xb, training, running), yb)
        grads = torch.autograd.grad(loss, [p[k] for k in _PARAMS])
        with torch.no_grad():
            for k, g in zip(_PARAMS, grads):
                acc[k] = g if zero_grad else acc[k] + g         # .grad is accumulated unless cleared
                d = acc[k] + inp["weight_decay"] * p[k]
                buf[k] = d.clone() if k not in buf else inp["momentum"] * buf[k] + d
                p[k] -= inp["lr"] * buf[k]
        losses.append(float(loss.detach()))
        sizes.append(len(xb))
    state = {k: v.detach().numpy() for k, v in p.items()}
    state.update({k: v.numpy() for k, v in running.items()})
    return state, np.array(losses), np.array(sizes)


def _matches(got: dict, want: dict) -> bool:
    try:
        return all(np.allclose(np.asarray(got[k], dtype=np.float64), want[k], rtol=1e-7, atol=1e-9)
                   for k in want)
    except (KeyError, ValueError, TypeError):
        return False


def _train_params_judge(inp, out):
    want, losses, _sizes = _replay_epoch(inp)
    n_batches = len(losses)
    if out["loss_calls"] != n_batches:
        fail(f"train_one_epoch called loss_fn {out['loss_calls']} times; the loader has {n_batches} batches "
             "(one forward pass, loss, backward and optimizer step per batch, each batch once)")
    slips = {"the model was left in evaluation mode (batch normalization used its running statistics "
             "and never updated them): call model.train() at the start": dict(zero_grad=True, training=False),
             "the gradients were never cleared, so each step used the sum of all gradients so far: call "
             "optimizer.zero_grad() before each backward": dict(zero_grad=False, training=True)}
    worst = 0.0
    for k in ("W1", "b1", "gamma", "beta", "W2", "b2", "running_mean", "running_var"):
        try:
            worst = max(worst, compare(f"the model's {k} after train_one_epoch", out["state"][k], want[k],
                                       oracle="the replay"))
        except CheckFailed as exc:
            named = next((why for why, kw in slips.items() if _matches(out["state"], _replay_epoch(inp, **kw)[0])), None)
            raise CheckFailed(f"{exc}. " + (f"Found: {named}" if named else
                              "Hint: per batch, in this order: move it to the device, optimizer.zero_grad(), "
                              "loss = loss_fn(model(x), y), loss.backward(), optimizer.step()")) from None
    return (f"after one epoch every parameter and batch-norm statistic matches a functional replay of SGD "
            f"with momentum (relative error {worst:.1e} <= {TOL:.0e})")


def _train_loss_judge(inp, out):
    _state_, losses, sizes = _replay_epoch(inp)
    want = float((losses * sizes).sum() / sizes.sum())
    got = out["loss"]
    try:
        err = compare("the mean loss returned by train_one_epoch", np.float64(got), want, oracle="the replay")
    except CheckFailed as exc:
        variants = {"the mean of the batch means (the short last batch then weighs as much as a full one: "
                    "weight each batch's loss by its size)": losses.mean(),
                    "the sum of the batch losses (divide by the number of examples)": losses.sum(),
                    "the last batch's loss (average over the whole epoch)": losses[-1],
                    "the sum of loss * batch size (divide by the number of examples)": (losses * sizes).sum()}
        named = next((why for why, v in variants.items() if np.isclose(got, v, rtol=1e-9, atol=0)), None)
        raise CheckFailed(f"{exc}. " + (f"Yours is {named}" if named else
                          "Hint: the loss averaged over the epoch's examples, each batch's mean loss "
                          "weighted by its size, computed before that batch's step")) from None
    return (f"the mean loss over the epoch's {int(sizes.sum())} examples ({len(sizes)} batches, the last of "
            f"{int(sizes[-1])}) matches the replay (relative error {err:.1e})")


def _loop_cases(evaluation):
    """Two fixed cases, visible and hidden alike: the notebook's sizes without weight decay, and
    other sizes with weight decay (both with a short last batch). Hidden cases run on the GPU
    when the grader has one."""
    def make(hidden, drawn):
        return lambda rng: dict(_loop_inputs(rng, hidden, evaluation, drawn=drawn), hidden=hidden)
    cases = lambda hidden: [  # noqa: E731
        Case("the notebook's sizes, no weight decay", {"short last batch", "no weight decay"}, make(hidden, False)),
        Case("other sizes, weight decay", {"short last batch", "weight decay"}, make(hidden, True))]
    return Cases(cases(False), hidden=cases(True),
                 measure=lambda i: {"weight decay" if i["weight_decay"] > 0 else "no weight decay"}
                 | ({"short last batch"} if len(i["X"]) % i["batch_size"] else set()))


_train_inputs = _loop_cases(False)


register("train_one_epoch.params", ("train_one_epoch",), _train_inputs, _train_probe, _train_params_judge,
         doc="train_one_epoch: parameters and batch-norm statistics after one epoch, against a replay")
register("train_one_epoch.loss", ("train_one_epoch",), _train_inputs, _train_probe, _train_loss_judge,
         doc="train_one_epoch: the mean loss over the epoch's examples")


_eval_inputs = _loop_cases(True)


def _eval_probe(fns, inp):
    device = _device_for(inp.get("hidden", False))
    model = _model(inp, device)
    model.train()                      # the function must switch to evaluation mode itself
    loss_fn = _RecordingLoss(model)
    ret = call(fns[0], "evaluate", model, _loader(inp), loss_fn, device, returns=2)
    grads_left = any(p.grad is not None for p in model.parameters())
    return {"loss": _as_number("evaluate", "the mean loss", ret[0]),
            "accuracy": _as_number("evaluate", "the accuracy", ret[1]), "state": _state(model),
            "grad_on": bool(any(loss_fn.grad_on)), "training": bool(any(loss_fn.training)),
            "calls": loss_fn.calls, "grads_left": grads_left}


def _eval_judge(inp, out):
    torch = _torch()
    F = torch.nn.functional
    p = {k: torch.tensor(inp[k]) for k in _PARAMS}
    running = {k: torch.tensor(inp[k]) for k in ("running_mean", "running_var")}
    X, y = torch.tensor(inp["X"]), torch.tensor(inp["y"], dtype=torch.int64)
    scores = _forward_functional(p, X, False, running)
    want_loss = float(F.cross_entropy(scores, y))
    want_acc = float((scores.argmax(dim=1) == y).double().mean())
    if out["training"]:
        fail("evaluate ran the model in training mode (batch normalization on batch statistics, and "
             "dropout would be on): call model.eval() first")
    if out["grad_on"]:
        fail("evaluate computed with autograd on: wrap the loop in `with torch.no_grad():` (building a "
             "graph that is never used costs memory and time)")
    if out["grads_left"]:
        fail("evaluate left gradients in the model's parameters: evaluation must not call backward")
    for k in ("W1", "b1", "gamma", "beta", "W2", "b2", "running_mean", "running_var"):
        compare(f"the model's {k} after evaluate", out["state"][k], inp[k], tol=0.0,
                hint="evaluation must change nothing in the model", oracle="before the call")
    err = compare("the mean loss returned by evaluate", np.float64(out["loss"]), want_loss,
                  hint="each batch's mean loss weighted by its size, over the whole loader",
                  oracle="the functional model")
    n = len(inp["y"])
    if not abs(out["accuracy"] - want_acc) <= 0.5 / n:
        hint = (" (a percentage? return a fraction in [0, 1])" if np.isclose(out["accuracy"], 100 * want_acc) else
                " (the number of correct labels? divide by how many there are)" if np.isclose(out["accuracy"], want_acc * n)
                else " (the class axis is axis 1 of the scores)")
        fail(f"evaluate's accuracy is {out['accuracy']:.6g}; the model gets {want_acc:.6g} "
             f"({int(round(want_acc * n))} of {n} right){hint}")
    return (f"mean loss (relative error {err:.1e}) and accuracy {want_acc:.4f} match the model in evaluation "
            f"mode, computed without autograd, and the model is unchanged")


register("evaluate", ("evaluate",), _eval_inputs, _eval_probe, _eval_judge,
         doc="evaluate: mean loss and accuracy in evaluation mode without autograd, the model unchanged")
