"""numpy layers next to PyTorch: errors per device and dtype, and timings.

``compare_layers(np_layers)`` runs each numpy layer (forward and hand-written backward, float64)
and the PyTorch built-in that computes the same thing (forward and autograd) on the same
inputs, in float64 and float32 on the CPU and, when there is a GPU, in float32 on it with TF32
off and on. It reports the normwise relative error ``max|torch - numpy| / max|numpy|`` of the
output and of the worst gradient.

``np_layers`` maps names to the numpy functions (the assignment's ``blocks.py`` provides them),
so the module itself holds no layer: it is the student's or the reference's code that is
compared.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["LayerCase", "layer_cases", "compare_layers", "tf32", "median_time"]


@dataclass
class LayerCase:
    name: str
    args: list                       # numpy inputs of the forward (arrays first, then options)
    diff: Sequence[int]              # which args get gradients
    numpy_fwd: Callable              # (*args) -> out
    numpy_bwd: Callable              # (dout) -> tuple of gradients of args[diff]
    torch_fn: Callable               # (*tensor args) -> out, the PyTorch built-in


def _pair(fwd, bwd):
    """Wrap a numpy (forward, backward) pair so that backward only needs dout."""
    state = {}

    def forward(*args):
        out, state["cache"] = fwd(*args)
        return out

    def backward(dout):
        g = bwd(dout, state["cache"])
        return g if isinstance(g, tuple) else (g,)
    return forward, backward


def _perm(H):   # gate blocks i, f, o, g -> PyTorch's i, f, g, o
    return np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]


def layer_cases(L: Dict[str, Callable], seed: int = 0) -> List[LayerCase]:
    """The cases compared, built from the numpy functions in ``L`` (missing names are skipped)."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal
    cases = []

    def add(name, needs, args, diff, torch_fn, n_out=1):
        if not all(k in L for k in needs):
            return
        fwd, bwd = _pair(L[needs[0]], L[needs[1]])
        cases.append(LayerCase(name, args, diff, fwd, bwd, torch_fn))

    N, D, M = 64, 128, 96
    add("affine", ("affine_forward", "affine_backward"), [r((N, D)), r((D, M)) / np.sqrt(D), r(M)], [0, 1, 2],
        lambda x, w, b: x @ w + b)
    for act, fn in (("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        add(act, (f"{act}_forward", f"{act}_backward"), [2 * r((N, D))], [0], fn)
    if "softmax_loss" in L:
        y = rng.integers(0, 10, N)

        def sm_fwd(x):                         # (loss, dx) read as a layer's (out, cache)
            loss, dx = L["softmax_loss"](x, y)
            return np.asarray(loss), dx
        fwd, bwd = _pair(sm_fwd, lambda dout, dx: dx * dout)
        cases.append(LayerCase("softmax_loss", [3 * r((N, 10))], [0], fwd, bwd,
                               lambda x: F.cross_entropy(x, torch.as_tensor(y, device=x.device))))
    gamma, beta = rng.uniform(0.5, 1.5, D), 0.1 * r(D)
    add("batchnorm", ("batchnorm_forward", "batchnorm_backward"),
        [r((N, D)) * 2 + 1, gamma, beta, {"mode": "train"}], [0, 1, 2],
        lambda x, g, b, _p: F.batch_norm(x, None, None, g, b, training=True, eps=1e-5))
    add("layernorm", ("layernorm_forward", "layernorm_backward"), [r((N, D)) * 2 + 1, gamma, beta, {}], [0, 1, 2],
        lambda x, g, b, _p: F.layer_norm(x, (x.shape[-1],), g, b, eps=1e-5))
    x_img, w_img = r((16, 3, 16, 16)), r((8, 3, 3, 3)) / np.sqrt(27)
    conv_fwd = "conv_forward_fast" if "conv_forward_fast" in L else "conv_forward"
    conv_bwd = conv_fwd.replace("forward", "backward")
    add("conv (3x3, pad 1)", (conv_fwd, conv_bwd), [x_img, w_img, r(8), {"stride": 1, "pad": 1}], [0, 1, 2],
        lambda x, w, b, _p: F.conv2d(x, w, b, stride=1, padding=1))
    add("max_pool (2x2)", ("max_pool_forward", "max_pool_backward"),
        [r((16, 8, 16, 16)), {"pool_height": 2, "pool_width": 2, "stride": 2}], [0],
        lambda x, _p: F.max_pool2d(x, 2, 2))
    H = 32
    add("rnn_step", ("rnn_step_forward", "rnn_step_backward"),
        [r((N, D)), r((N, H)), r((D, H)) / np.sqrt(D), r((H, H)) / np.sqrt(H), r(H)], [0, 1, 2, 3, 4],
        lambda x, h, wx, wh, b: torch.tanh(x @ wx + h @ wh + b))
    if "lstm_step_forward" in L and "lstm_step_backward" in L:
        p = _perm(H)

        def lstm_fwd(*args):                   # compared on next_h; its gradient reaches every input
            next_h, _next_c, cache = L["lstm_step_forward"](*args)
            return next_h, cache
        fwd, bwd = _pair(lstm_fwd, lambda dout, cache: tuple(L["lstm_step_backward"](dout, np.zeros_like(dout), cache)))

        def lstm_torch(x, h, c, wx, wh, b):
            idx = torch.as_tensor(p, device=x.device)
            out_h, _ = torch._VF.lstm_cell(x, (h, c), wx[:, idx].T, wh[:, idx].T, b[idx], torch.zeros_like(b))
            return out_h
        cases.append(LayerCase("lstm_step", [r((N, D)), r((N, H)), r((N, H)), r((D, 4 * H)) / np.sqrt(D),
                                             r((H, 4 * H)) / np.sqrt(H), r(4 * H)], [0, 1, 2, 3, 4, 5],
                               fwd, bwd, lstm_torch))
    T = 32
    causal = np.tril(np.ones((T, T), dtype=bool))
    add("attention (causal)", ("attention_forward", "attention_backward"),
        [r((8, 4, T, 16)), r((8, 4, T, 16)), r((8, 4, T, 16)), causal], [0, 1, 2],
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m))
    return cases


@contextlib.contextmanager
def tf32(enabled: bool):
    """Allow (or forbid) TF32 tensor-core arithmetic for float32 matmuls and convolutions on the GPU."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _rel(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))


def _torch_run(case: LayerCase, dout: np.ndarray, device, dtype):
    targs = []
    for i, a in enumerate(case.args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            targs.append(torch.tensor(a, dtype=dtype, device=device, requires_grad=i in case.diff))
        elif isinstance(a, np.ndarray):
            targs.append(torch.as_tensor(a, device=device))
        else:
            targs.append(a)
    out = case.torch_fn(*targs)
    grads = torch.autograd.grad(out, [targs[i] for i in case.diff],
                                torch.as_tensor(dout, dtype=dtype, device=device))
    return out.detach().double().cpu().numpy(), [g.double().cpu().numpy() for g in grads]


def compare_layers(np_layers: Dict[str, Callable], seed: int = 0) -> List[dict]:
    """One row per layer: {'layer', then '<column> out' and '<column> grad' errors per column}.

    Columns: 'CPU float64', 'CPU float32', and with a GPU 'GPU float32' (TF32 off) and
    'GPU float32 TF32' (on). Errors are relative to the numpy float64 result.
    """
    columns = [("CPU float64", torch.device("cpu"), torch.float64, False),
               ("CPU float32", torch.device("cpu"), torch.float32, False)]
    if torch.cuda.is_available():
        columns += [("GPU float32", torch.device("cuda"), torch.float32, False),
                    ("GPU float32 TF32", torch.device("cuda"), torch.float32, True)]
    rows = []
    rng = np.random.default_rng(seed + 1)
    for case in layer_cases(np_layers, seed):
        out = np.asarray(case.numpy_fwd(*case.args), dtype=np.float64)
        dout = rng.standard_normal(out.shape)
        grads = case.numpy_bwd(dout)
        row = {"layer": case.name}
        for label, device, dtype, allow in columns:
            with tf32(allow) if device.type == "cuda" else contextlib.nullcontext():
                t_out, t_grads = _torch_run(case, dout, device, dtype)
            row[f"{label} out"] = _rel(t_out, out)
            row[f"{label} grad"] = max(_rel(tg, np.asarray(g, dtype=np.float64)) for tg, g in zip(t_grads, grads))
        rows.append(row)
    return rows


def median_time(fn: Callable[[], object], repeat: int = 5, device: Optional[torch.device] = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after one warm-up run
    (GPU work is asynchronous: the clock stops only after ``torch.cuda.synchronize``)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
