"""Checks of numerical gradients and linear models (assignment 01): centred differences, least
squares, logistic and softmax regression, minibatch SGD.

Oracles, none of them dlhw's own code:

* numerical_gradient: ``torch.autograd`` of a known smooth function, and, for the step size,
  the exact centred difference of a cubic polynomial, written out by hand
  ((a(x+h)^3 - a(x-h)^3) / 2h = 3 a x^2 + a h^2, and so on);
* rel_error: its formula in torch;
* least_squares_fit: ``torch.linalg.lstsq`` (QR / SVD, not the normal equations); ridge as the
  least squares problem of the augmented system [X; sqrt(l2) I] w = [y; 0];
* logistic and softmax regression: ``binary_cross_entropy_with_logits`` / ``cross_entropy``
  plus the penalty, and their autograd gradients;
* minibatch_sgd: the probe hands the student's loop a *recording* loss function (one of ours,
  which remembers every w and batch it is called with); the judge replays the updates
  w <- w - lr * grad with torch's gradients of the same loss on the recorded batches, checks
  that the batches cut every epoch into the promised pieces, and runs full-batch gradient
  descent itself for batch_size >= N, where the trajectory does not depend on any random order.

Tolerances are float64 ones (eps = 2.2e-16) and are stated where they are not compare()'s
default of 1e-9.
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, call, compare, fail, register
from dlhw.checks.helpers import sizes, torch as _torch
from dlhw.checks.spec import loss


# =========================================================================== numerical_gradient
# A smooth function that couples every coordinate, with curvature of order one:
#   f(x) = sum(c * x * sin(x)) + 0.5 * ||M vec(x)||^2 + log sum exp(v * vec(x))
# so a one-sided quotient is off by ~h * f'' / 2 ~ 1e-6 (relative), a centred one by
# ~h^2 f''' / 6 + eps |f| / h ~ 1e-10.

def _smooth_numpy(p):
    c, M, v = p["c"], p["M"], p["v"]

    def f(x):
        z = x.reshape(-1)
        s = v * z
        m = s.max()
        return float(np.sum(c.reshape(-1) * z * np.sin(z)) + 0.5 * np.sum((M @ z) ** 2)
                     + m + np.log(np.sum(np.exp(s - m))))
    return f


def _smooth_torch_grad(p, x):
    torch = _torch()
    xt = torch.tensor(x, requires_grad=True)
    z = xt.reshape(-1)
    f = (torch.sum(torch.tensor(p["c"]).reshape(-1) * z * torch.sin(z))
         + 0.5 * torch.sum((torch.tensor(p["M"]) @ z) ** 2) + torch.logsumexp(torch.tensor(p["v"]) * z, 0))
    f.backward()
    return xt.grad.numpy()


def _ng_make(shape):
    def make(rng):
        n = int(np.prod(shape))
        while True:
            inp = {"x": rng.standard_normal(shape),
                   "fn": {"c": rng.uniform(0.5, 2.0, shape), "M": rng.standard_normal((n + 1, n)) / np.sqrt(n),
                          "v": rng.standard_normal(n)}}
            # keep the gradient away from 0, so that the round-off of the quotient (~1e-11 absolute)
            # stays far below the tolerance relative to max |grad|
            if np.max(np.abs(_smooth_torch_grad(inp["fn"], inp["x"]))) >= 0.5:
                return inp
    return make


def _ng_properties(inp):
    x = inp["x"]
    return {f"{x.ndim}-D x"} | ({"one entry"} if x.size == 1 else set())


# visible and hidden alike: x of any shape (a loop over rows and columns only works for 2-D)
_ng_inputs = Cases([Case("(3, 4)", {"2-D x"}, _ng_make((3, 4))),
                    Case("(7,)", {"1-D x"}, _ng_make((7,))),
                    Case("(1,)", {"1-D x", "one entry"}, _ng_make((1,))),
                    Case("(3, 2, 2)", {"3-D x"}, _ng_make((3, 2, 2))),
                    Case("(2, 1, 3)", {"3-D x"}, _ng_make((2, 1, 3)))], measure=_ng_properties)


def _ng_probe(fns, inp):
    x = np.array(inp["x"], dtype=np.float64)          # a fresh contiguous copy for the student
    grad = call(fns[0], "numerical_gradient", _smooth_numpy(inp["fn"]), x)
    return {"grad": grad, "x_after": x}


def _ng_judge(inp, out):
    expected = _smooth_torch_grad(inp["fn"], inp["x"])
    # 1e-8: centred differences with h = 1e-5 land near 1e-10; one-sided ones near 1e-6.
    err = compare("the gradient from numerical_gradient", out["grad"], expected, tol=1e-8,
                  oracle="PyTorch autograd",
                  hint="perturb one entry at a time by +h and -h, grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h), "
                       "and put the entry back before moving on (f couples every entry of x)")
    return f"matches PyTorch autograd (relative error {err:.1e} <= 1e-08)"


register("numerical_gradient", ("numerical_gradient",), _ng_inputs, _ng_probe, _ng_judge,
         doc="numerical_gradient against torch autograd of a known smooth function")


def _ng_restore_judge(inp, out):
    err = compare("x after numerical_gradient returned", out["x_after"], inp["x"], tol=1e-12, oracle="the original x",
                  hint="numerical_gradient may change x while it works, but must put every entry back "
                       "(the caller's parameters are perturbed in place)")
    return f"x comes back unchanged (relative error {err:.1e})"


register("numerical_gradient.restores_x", ("numerical_gradient",), _ng_inputs, _ng_probe, _ng_restore_judge,
         doc="numerical_gradient leaves x as it found it")


# A cubic with a large step h: the centred difference is *not* the derivative, it is exactly
#   3 a x^2 + a h^2 + 2 b x + c   (entrywise),
# so this catches a step size other than h and a one-sided quotient (+ (3 a x + b) h).
def _step_make(rng):
    shape = sizes(rng, 1, 5, 2)
    return {"x": rng.standard_normal(shape), "a": rng.uniform(0.5, 2.0, shape),
            "b": rng.standard_normal(shape), "c": rng.standard_normal(shape), "h": float(rng.uniform(0.05, 0.3))}


_step_inputs = Cases([Case("a cubic, a large step h", {"large h"}, _step_make)])


def _step_probe(fns, inp):
    a, b, c = inp["a"], inp["b"], inp["c"]
    x = np.array(inp["x"], dtype=np.float64)
    grad = call(fns[0], "numerical_gradient", lambda z: float(np.sum(a * z ** 3 + b * z ** 2 + c * z)), x, inp["h"])
    return {"grad": grad}


def _step_judge(inp, out):
    x, a, b, c, h = inp["x"], inp["a"], inp["b"], inp["c"], inp["h"]
    expected = 3 * a * x ** 2 + a * h ** 2 + 2 * b * x + c
    err = compare(f"numerical_gradient(f, x, h={h:.3g}) of the cubic f(x) = sum(a x^3 + b x^2 + c x)",
                  out["grad"], expected, tol=1e-9, oracle="the exact centred difference",
                  hint=f"use the step h you are given (here {h:.3g}, not 1e-5) and the centred quotient "
                       "(f(x + h e_i) - f(x - h e_i)) / (2 h); for this cubic it equals 3 a x^2 + a h^2 + 2 b x + c, "
                       "a one-sided quotient adds (3 a x + b) h")
    return f"equals the exact centred difference with step h (relative error {err:.1e})"


register("numerical_gradient.step", ("numerical_gradient",), _step_inputs, _step_probe, _step_judge,
         doc="numerical_gradient uses its step h and the centred quotient")


# =========================================================================== rel_error
def _rel_make(rng):
    shape = sizes(rng, 2, 6, 2)
    a = rng.standard_normal(shape)
    zeros = rng.random(shape) < 0.5
    pairs = {
        "a vs a slightly perturbed": (a, a * (1 + 1e-6 * rng.standard_normal(shape))),
        "arrays of different scales": (10.0 ** rng.integers(-3, 4, shape) * rng.standard_normal(shape),
                                       rng.standard_normal(shape)),
        "zeros at the same places in both": (np.where(zeros, 0.0, a),
                                             np.where(zeros, 0.0, a + 0.1 * rng.standard_normal(shape))),
        "two identical arrays": (a, a.copy()),
        "opposite signs": (a, -a),
        "all zeros": (np.zeros(shape), np.zeros(shape)),
    }
    names = list(pairs)
    return {"names": ";".join(names), "a": [pairs[k][0] for k in names], "b": [pairs[k][1] for k in names]}


def _rel_probe(fns, inp):
    values = [call(fns[0], "rel_error", np.array(a), np.array(b)) for a, b in zip(inp["a"], inp["b"])]
    out = {}
    for i, v in enumerate(values):
        out[f"v{i}"] = v if isinstance(v, (int, float)) else np.asarray(v, dtype=np.float64)
    return out


def _rel_judge(inp, out):
    torch = _torch()
    names = inp["names"].split(";")
    for i, (name, a, b) in enumerate(zip(names, inp["a"], inp["b"])):
        ta, tb = torch.tensor(a), torch.tensor(b)
        expected = ((ta - tb).abs() / torch.clamp(ta.abs() + tb.abs(), min=1e-12)).max().item()
        got = out[f"v{i}"]
        if np.ndim(got) != 0 and np.size(got) != 1:
            fail(f"rel_error should return one number (the largest relative error); for {name} it returned an "
                 f"array of shape {np.shape(got)}. Hint: take the max over all entries")
        g = float(np.reshape(got, ()))
        if not np.isfinite(g):
            fail(f"rel_error({name}) is {g}; expected {expected:.6g}. Hint: where a and b are both 0 the "
                 "denominator |a| + |b| is 0: divide by max(|a| + |b|, floor) instead")
        # absolute 1e-12 on a number in [0, 1]
        if abs(g - expected) > 1e-12 + 1e-9 * expected:
            fail(f"rel_error({name}) is {g:.6g}; expected {expected:.6g} = max |a - b| / max(|a| + |b|, 1e-12) "
                 "(the largest entrywise relative error, not a mean; |a| + |b| in the denominator)")
    return f"all {len(names)} cases match max |a - b| / max(|a| + |b|, floor)"


_rel_inputs = Cases([Case("six pairs", {"zeros", "identical", "opposite", "scales"}, _rel_make)])
register("rel_error", ("rel_error",), _rel_inputs, _rel_probe, _rel_judge,
         doc="rel_error on pairs including zeros, identical and opposite arrays")


# =========================================================================== least squares
def _lsq_make(ridge, K, wide=False, bias=False):
    """y of shape (N,) (K = 0) or (N, K); ``wide``: N < D (ridge only); ``bias``: a column of ones."""
    def make(rng):
        D = int(rng.integers(3, 8))
        N = int(rng.integers(1, D)) if wide else int(rng.integers(D + 2, 30))
        X = rng.standard_normal((N, D))
        if bias:
            X[:, -1] = 1.0                     # a bias column of ones
        y = rng.standard_normal((N, K) if K else N)
        l2 = float(10.0 ** rng.uniform(-2, 1)) if ridge else 0.0
        return {"X": X, "y": y, "l2": l2}
    return make


def _lsq_properties(inp):
    X, y = inp["X"], inp["y"]
    props = {"y (N,)" if y.ndim == 1 else "y (N, K)", "N < D" if X.shape[0] < X.shape[1] else "N > D"}
    if np.all(X[:, -1] == 1.0):
        props.add("bias column")
    return props


# visible and hidden alike: y a vector and a matrix, a bias column; ridge also with N < D
_lsq_plain = Cases([Case("y of shape (N,)", {"y (N,)", "N > D"}, _lsq_make(False, 0)),
                    Case("y of shape (N, K), a bias column", {"y (N, K)", "N > D", "bias column"},
                         _lsq_make(False, 3, bias=True))], measure=_lsq_properties)
_lsq_ridge = Cases([Case("y of shape (N,)", {"y (N,)", "N > D"}, _lsq_make(True, 0)),
                    Case("y of shape (N, K), a bias column", {"y (N, K)", "N > D", "bias column"},
                         _lsq_make(True, 2, bias=True)),
                    Case("fewer examples than features", {"y (N,)", "N < D"}, _lsq_make(True, 0, wide=True))],
                   measure=_lsq_properties)


def _lsq_probe(fns, inp):
    w = call(fns[0], "least_squares_fit", inp["X"].copy(), inp["y"].copy(), inp["l2"])
    return {"w": w}


def _lsq_oracle(X, y, l2):
    torch = _torch()
    A, b = torch.tensor(X), torch.tensor(y)
    if l2 > 0:
        D = X.shape[1]
        A = torch.cat([A, np.sqrt(l2) * torch.eye(D, dtype=torch.float64)])
        b = torch.cat([b, torch.zeros((D,) + tuple(y.shape[1:]), dtype=torch.float64)])
    sol = torch.linalg.lstsq(A, b if b.ndim == 2 else b[:, None], driver="gelsd").solution
    return sol.numpy() if y.ndim == 2 else sol[:, 0].numpy()


def _lsq_judge(ridge):
    def judge(inp, out):
        X, y, l2 = inp["X"], inp["y"], inp["l2"]
        expected = _lsq_oracle(X, y, l2)
        # 1e-8: the normal equations square the condition number of X (here below ~1e2),
        # so a right solution stays under ~1e-11.
        what = f"w from least_squares_fit(X {X.shape}, y {y.shape}, l2={l2:.3g})"
        hint = ("solve (X^T X + l2 I) w = X^T y with np.linalg.solve; the penalty is (l2/2) ||w||^2, so l2 "
                "itself (not l2/2 or 2 l2) goes on the diagonal" if ridge else
                "solve the normal equations X^T X w = X^T y (np.linalg.solve(X.T @ X, X.T @ y)); "
                "y may be (N,) or (N, K)")
        err = compare(what, out["w"], expected, tol=1e-8, hint=hint, oracle="torch.linalg.lstsq")
        return f"w matches torch.linalg.lstsq{' of the augmented system' if ridge else ''} (relative error {err:.1e})"
    return judge


register("least_squares_fit", ("least_squares_fit",), _lsq_plain, _lsq_probe,
         _lsq_judge(False), doc="least_squares_fit with l2 = 0 against torch.linalg.lstsq")
register("least_squares_fit.ridge", ("least_squares_fit",), _lsq_ridge, _lsq_probe,
         _lsq_judge(True), doc="least_squares_fit with l2 > 0 against lstsq of [X; sqrt(l2) I]")


# =========================================================================== logistic regression
def _logistic_make(large):
    def make(rng):
        N, D = sizes(rng, 2, 12, 2)
        X, w = rng.standard_normal((N, D)), rng.standard_normal(D)
        t = rng.integers(0, 2, N).astype(np.float64)
        if large:
            # the hard corners: logits of +-1000, where sigmoid rounds to exactly 0 or 1. Row 0 on the
            # wrong side of its label (loss ~1000: log(sigmoid(z)) is log(0) there, and clipping h
            # caps the loss at ~35), row 1 confidently right (log(1 - h) = log(0) times 1 - t = 0).
            for n, wrong in ((0, True), (1, False)):
                z = float(X[n] @ w)
                X[n] *= 1000.0 / max(abs(z), 1e-3)
                t[n] = float((z < 0) == wrong)
        return {"w": w, "X": X, "t": t, "l2": float(rng.uniform(0.05, 1.0))}
    return make


# visible and hidden alike: logits of 1e3 too
_logistic_inputs = Cases([Case("moderate logits", {"moderate logits"}, _logistic_make(False)),
                          Case("logits of 1e3", {"logits of 1e3"}, _logistic_make(True))],
                         measure=lambda i: {"logits of 1e3" if np.max(np.abs(i["X"] @ i["w"])) > 100
                                            else "moderate logits"})


def _logistic_oracle(inp):
    torch = _torch()
    w = torch.tensor(inp["w"], requires_grad=True)
    loss = (torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor(inp["X"]) @ w, torch.tensor(inp["t"]))
            + 0.5 * inp["l2"] * (w * w).sum())
    loss.backward()
    return {"loss": np.asarray(loss.item()), "grad": w.grad.numpy()}


def _logistic_probe(fns, inp):
    loss, grad = call(fns[0], "logistic_loss", inp["w"].copy(), inp["X"].copy(), inp["t"].copy(), inp["l2"],
                      returns=2)
    return {"loss": np.asarray(loss, dtype=np.float64), "grad": grad}


loss("logistic_loss", _logistic_inputs, _logistic_probe, _logistic_oracle, grad="grad", grad_check="grad",
     grad_says="gradient", oracle_says="PyTorch's binary_cross_entropy_with_logits + (l2/2)||w||^2", why=None,
     hints={"loss": "mean over the N examples of -[t log h + (1 - t) log(1 - h)], plus (l2/2) ||w||^2. Some tests "
                    "use logits of ~1e3, where log(sigmoid(z)) is log(0): compute log(1 + exp(z)) - t z with "
                    "np.logaddexp(0, z) instead",
            "grad": "grad = X^T (h - t) / N + l2 w with h = sigmoid(X w)"})


# =========================================================================== softmax regression
def _softmax_make(large, N=None):
    def make(rng):
        while True:
            n, D, C = sizes(rng, 2, 10, 3)
            n = n if N is None else N
            W, X = rng.standard_normal((D, C)), rng.standard_normal((n, D))
            y = rng.integers(0, C, n)
            if not large:
                break
            # The largest score becomes +1500, so exp overflows to inf without the max shift.
            # That row's label is its lowest score, at least 800 below the row's max, so its
            # probability underflows to exactly 0 and the log of a probability is caught for every
            # draw, not only when the drawn labels happen to fall there. A draw without such a row
            # is drawn again (about one in five).
            S = X @ W
            X *= 1500.0 / S.flat[int(np.argmax(np.abs(S)))]
            S = X @ W
            r = int(np.argmax(S.max(axis=1)))
            if S[r].max() - S[r].min() >= 800.0:
                y[r] = int(np.argmin(S[r]))
                break
        return {"W": W, "X": X, "y": y, "l2": float(rng.uniform(0.05, 1.0))}
    return make


def _softmax_properties(inp):
    props = {"scores of 1e3" if np.max(np.abs(inp["X"] @ inp["W"])) > 100 else "moderate scores"}
    return props | ({"N = 1"} if len(inp["X"]) == 1 else set())


# visible and hidden alike: scores of 1e3 and a batch of one too
_softmax_inputs = Cases([Case("moderate scores", {"moderate scores"}, _softmax_make(False)),
                         Case("scores of 1e3", {"scores of 1e3"}, _softmax_make(True)),
                         Case("one example", {"moderate scores", "N = 1"}, _softmax_make(False, N=1))],
                        measure=_softmax_properties)


def _softmax_oracle(inp):
    torch = _torch()
    W = torch.tensor(inp["W"], requires_grad=True)
    loss = (torch.nn.functional.cross_entropy(torch.tensor(inp["X"]) @ W, torch.tensor(inp["y"]))
            + 0.5 * inp["l2"] * (W * W).sum())
    loss.backward()
    return {"loss": np.asarray(loss.item()), "dW": W.grad.numpy()}


def _softmax_probe(fns, inp):
    loss, dW = call(fns[0], "softmax_regression_loss", inp["W"].copy(), inp["X"].copy(), inp["y"].copy(),
                    inp["l2"], returns=2)
    return {"loss": np.asarray(loss, dtype=np.float64), "dW": dW}


def _softmax_loss_hint(inp, out):
    """An infinite loss with a right dW took the log of a probability that underflowed to 0."""
    hint = ("mean over the N rows of -log softmax(X W)[n, y_n], plus (l2/2) sum W^2; subtract each row's "
            "max score before exp (some tests use scores of ~1e3)")
    try:
        loss, dW = np.asarray(out["loss"], dtype=np.float64), np.asarray(out["dW"], dtype=np.float64)
    except (TypeError, ValueError, KeyError):
        return hint
    if loss.size != 1 or np.isfinite(loss).all():
        return hint
    expected = _softmax_oracle(inp)["dW"]
    if dW.shape == expected.shape and np.isfinite(dW).all() and np.allclose(dW, expected, rtol=1e-6, atol=1e-12):
        return ("your probabilities are right (dW matches), but with scores of ~1e3 the small ones underflow "
                "to 0 and log(0) = -inf: use log-sum-exp, never the log of a probability: log softmax(s) "
                "= (s - max) - log(sum(exp(s - max))), then pick the entry of class y")
    return hint + "; then take the log with log-sum-exp, never the log of a probability"


loss("softmax_regression_loss", _softmax_inputs, _softmax_probe, _softmax_oracle, grad="dW", grad_check="grad",
     oracle_says="PyTorch's cross_entropy + (l2/2)||W||^2", why=None,
     hints={"loss": _softmax_loss_hint,
            "dW": "dW = X^T (P - Y) / N + l2 W, P the softmax probabilities, Y the one-hot labels; compute P "
                  "from the max-shifted scores"})


# =========================================================================== minibatch SGD
# Two losses of ours (neither is graded anywhere), in numpy for the student's loop and in
# torch for the judge:
#   "logcosh":   w (D,),   y (N,) floats:  mean(log cosh(X w - y))
#   "prototype": W (D, K), y (N,) ints:    mean_n 0.5 ||(X W)_n - T[y_n]||^2,  T (C, K) a table
# The second takes y as indices, so a loop that turns y into floats breaks it.

def _np_loss(kind, T=None):
    def loss_fn(w, Xb, yb):
        if kind == "logcosh":
            r = Xb @ w - yb
            a = np.abs(r)
            return float(np.mean(a + np.log1p(np.exp(-2 * a)) - np.log(2))), Xb.T @ np.tanh(r) / len(yb)
        R = Xb @ w - T[yb]
        return float(0.5 * np.mean(np.sum(R ** 2, axis=1))), Xb.T @ R / len(yb)
    return loss_fn


def _torch_loss(kind, w, Xb, yb, T=None):
    torch = _torch()
    wt = torch.tensor(w, requires_grad=True)
    if kind == "logcosh":
        loss = torch.mean(torch.log(torch.cosh(torch.tensor(Xb) @ wt - torch.tensor(yb, dtype=torch.float64))))
    else:
        R = torch.tensor(Xb) @ wt - torch.tensor(T)[torch.tensor(yb, dtype=torch.int64)]
        loss = 0.5 * torch.mean(torch.sum(R ** 2, dim=1))
    loss.backward()
    return loss.item(), wt.grad.numpy()


def _sgd_data(rng, N, D, kind):
    X = rng.standard_normal((N, D))          # distinct rows (almost surely): a row names its example
    if kind == "logcosh":
        return {"X": X, "y": rng.standard_normal(N), "w0": 0.3 * rng.standard_normal(D), "T": np.zeros((1, 1))}
    C, K = int(rng.integers(2, 5)), int(rng.integers(1, 4))
    return {"X": X, "y": rng.integers(0, C, N), "w0": 0.3 * rng.standard_normal((D, K)),
            "T": rng.standard_normal((C, K))}


def _recorder(loss_fn, log):
    def recording(w, Xb, yb):
        log.append((np.array(w, dtype=np.float64, copy=True), np.array(Xb, copy=True), np.array(yb, copy=True)))
        return loss_fn(w, Xb, yb)
    return recording


def _run_sgd(fn, inp, seed, batch_size, epochs, log=None):
    loss_fn = _np_loss(inp["kind"], inp["T"])
    if log is not None:
        loss_fn = _recorder(loss_fn, log)
    w0 = inp["w0"].copy()
    res = call(fn, "minibatch_sgd", loss_fn, w0, inp["X"].copy(), inp["y"].copy(), inp["lr"], batch_size, epochs,
               np.random.default_rng(seed), returns=2)
    return res[0], res[1], w0


def _pack_log(log, prefix):
    if not log:
        return {f"{prefix}n": 0}
    return {f"{prefix}n": len(log), f"{prefix}ws": np.stack([e[0] for e in log]),
            f"{prefix}X": np.concatenate([e[1] for e in log]), f"{prefix}y": np.concatenate([e[2] for e in log]),
            f"{prefix}sizes": np.array([len(e[1]) for e in log])}


def _unpack_log(out, prefix):
    n = out[f"{prefix}n"]
    if n == 0:
        return []
    bounds = np.cumsum(out[f"{prefix}sizes"])[:-1]
    return list(zip(out[f"{prefix}ws"], np.split(out[f"{prefix}X"], bounds), np.split(out[f"{prefix}y"], bounds)))


# --- full batch: plain gradient descent, no randomness in the trajectory
def _fullbatch_make(kind, extra):
    """Full batch: batch_size = N + extra (0: exactly N, > 0: larger than N)."""
    def make(rng):
        N, D = int(rng.integers(2, 12)), int(rng.integers(1, 6))
        inp = _sgd_data(rng, N, D, kind)
        inp.update(kind=kind, lr=float(rng.uniform(0.1, 0.8)), batch_size=N + extra,
                   epochs=int(rng.integers(1, 6)), seed=int(rng.integers(0, 2 ** 31)))
        return inp
    return make


def _sgd_properties(inp):
    N, B = len(inp["X"]), inp["batch_size"]
    props = {f"{inp['kind']} loss"}
    if B > N:
        props.add("batch_size > N")
    elif B == N:
        props.add("batch_size = N")
    else:
        props.add("batch_size divides N" if N % B == 0 else "a smaller last batch")
    if B == 1:
        props.add("batch_size 1")
    return props


# visible and hidden alike: both losses (a vector w and a matrix w), batch_size = N and > N
_fullbatch_inputs = Cases([Case("batch_size = N, vector w", {"logcosh loss", "batch_size = N"},
                                _fullbatch_make("logcosh", 0)),
                           Case("batch_size > N, matrix w", {"prototype loss", "batch_size > N"},
                                _fullbatch_make("prototype", 2))], measure=_sgd_properties)


def _fullbatch_probe(fns, inp):
    w, history, w0_after = _run_sgd(fns[0], inp, inp["seed"], inp["batch_size"], inp["epochs"])
    w_zero, history_zero, _ = _run_sgd(fns[0], inp, inp["seed"], inp["batch_size"], 0)
    return {"w": w, "history": history, "w0_after": w0_after, "w_zero": w_zero, "history_zero": history_zero}


def _fullbatch_judge(inp, out):
    X, y, lr, E = inp["X"], inp["y"], inp["lr"], inp["epochs"]
    w, losses = inp["w0"].copy(), []
    for _ in range(E):                              # batch_size >= N: one step per epoch on all of X
        loss, g = _torch_loss(inp["kind"], w, X, y, inp["T"])
        losses.append(loss)
        w = w - lr * g
    setting = f"batch_size={inp['batch_size']} >= N={len(X)}, {E} epochs, learning_rate={lr:.3g}"
    compare(f"history from minibatch_sgd ({setting})", out["history"], np.array(losses), tol=1e-10,
            oracle="gradient descent in PyTorch",
            hint="one entry per step: the batch's loss, computed before that step's update "
                 "(with batch_size >= N every epoch is a single step on all N examples)")
    err = compare(f"w from minibatch_sgd ({setting})", out["w"], w, tol=1e-10, oracle="gradient descent in PyTorch",
                  hint="each step is w <- w - learning_rate * grad, grad from loss_fn(w, X_batch, y_batch)")
    compare("w from minibatch_sgd with epochs=0", out["w_zero"], inp["w0"], tol=0.0, oracle="w0",
            hint="no epoch, no step: return (a copy of) w0")
    compare("history from minibatch_sgd with epochs=0", out["history_zero"], np.zeros(0), oracle="an empty history",
            hint="no step, no loss: an array of shape (0,)")
    return f"{E} full-batch steps w <- w - lr * grad match gradient descent in PyTorch (relative error {err:.1e})"


register("minibatch_sgd.full_batch", ("minibatch_sgd",), _fullbatch_inputs, _fullbatch_probe, _fullbatch_judge,
         doc="minibatch_sgd with batch_size >= N is gradient descent (and epochs=0 does nothing)")


# --- the batches: every epoch a fresh random order, cut into batch_size pieces
def _sgd_make(kind, B=None, divides=True):
    def make(rng):
        D = int(rng.integers(1, 5))
        # N >= 15: two independent orders of N examples coincide with probability 1/N! < 1e-12, so
        # the judge's "same order in every epoch" never fails a correct implementation by chance
        if B == 1:
            b, N = 1, int(rng.integers(15, 21))
        else:
            b = int(rng.integers(3, 6))
            k = -(-15 // b)
            N = b * int(rng.integers(k, k + 2)) + (0 if divides else int(rng.integers(1, b)))
        inp = _sgd_data(rng, N, D, kind)
        inp.update(kind=kind, lr=float(rng.uniform(0.05, 0.5)), batch_size=b, epochs=int(rng.integers(2, 4)),
                   seed=int(rng.integers(0, 2 ** 31)))
        return inp
    return make


# visible and hidden alike: a batch size that divides N, one that leaves a smaller last batch,
# batch size 1; both losses
_sgd_inputs = Cases([Case("batch_size divides N", {"logcosh loss", "batch_size divides N"}, _sgd_make("logcosh")),
                     Case("a smaller last batch", {"prototype loss", "a smaller last batch"},
                          _sgd_make("prototype", divides=False)),
                     Case("batch_size 1", {"logcosh loss", "batch_size divides N", "batch_size 1"},
                          _sgd_make("logcosh", B=1))], measure=_sgd_properties)


def _batches_probe(fns, inp):
    out = {}
    for prefix, seed in (("a_", inp["seed"]), ("b_", inp["seed"]), ("c_", inp["seed"] + 1)):
        log = []
        _run_sgd(fns[0], inp, seed, inp["batch_size"], inp["epochs"], log)
        out.update(_pack_log(log, prefix))
    return out


def _example_index(X, Xb, step):
    rows = {X[i].tobytes(): i for i in range(len(X))}
    idx = []
    for r in np.asarray(Xb, dtype=np.float64):
        if r.tobytes() not in rows:
            fail(f"step {step}: loss_fn received a row of X_batch that is not a row of X. Hint: X_batch = X[batch] "
                 "for an array of indices batch")
        idx.append(rows[r.tobytes()])
    return np.array(idx, dtype=np.int64)


def _epochs_of(inp, log, label):
    X, y, N, B, E = inp["X"], inp["y"], len(inp["X"]), inp["batch_size"], inp["epochs"]
    sizes = [B] * (N // B) + ([N % B] if N % B else [])
    if len(log) != E * len(sizes):
        fail(f"{label}: loss_fn was called {len(log)} times; expected {E * len(sizes)} = epochs * ceil(N / batch_size) "
             f"= {E} * ceil({N} / {B}). Hint: one call per batch, and keep the last, smaller batch "
             f"(range(0, N, batch_size))")
    orders = []
    for e in range(E):
        order = []
        for j, size in enumerate(sizes):
            step = e * len(sizes) + j
            _, Xb, yb = log[step]
            if len(Xb) != size:
                fail(f"{label}: batch {j} of epoch {e} has {len(Xb)} examples; expected {size} (N={N}, "
                     f"batch_size={B}: batches of {B}, the last one holding the {N % B or B} left over)")
            idx = _example_index(X, Xb, step)
            if np.shape(yb) != (size,) or not np.array_equal(np.asarray(yb), y[idx]):
                fail(f"{label}: in batch {j} of epoch {e}, y_batch does not hold the targets of the rows of X_batch. "
                     "Hint: index X and y with the same indices: X[batch], y[batch]")
            order.extend(idx.tolist())
        if sorted(order) != list(range(N)):
            missing = sorted(set(range(N)) - set(order))
            fail(f"{label}: epoch {e} does not visit every example exactly once (missing {missing[:5]}"
                 f"{'...' if len(missing) > 5 else ''}). Hint: cut one permutation of range(N) into batches")
        orders.append(order)
    return orders


def _batches_judge(inp, out):
    N, B, E = len(inp["X"]), inp["batch_size"], inp["epochs"]
    a = _epochs_of(inp, _unpack_log(out, "a_"), f"minibatch_sgd(batch_size={B}, epochs={E}) on N={N} examples")
    if all(o == list(range(N)) for o in a):
        fail("minibatch_sgd visits the examples in their original order in every epoch. Hint: draw a new order "
             "each epoch with rng.permutation(N)")
    if all(o == a[0] for o in a):
        fail(f"minibatch_sgd visits the examples in the same order in all {E} epochs. Hint: draw the permutation "
             "inside the epoch loop, a new one each epoch")
    b = _epochs_of(inp, _unpack_log(out, "b_"), "a second run with the same seed")
    c = _epochs_of(inp, _unpack_log(out, "c_"), "a run with another seed")
    if a != b:
        fail("two runs with np.random.default_rng(seed) of the same seed visit the examples in different orders: "
             "the order must come from the rng argument (rng.permutation(N)), not from np.random")
    if a == c:
        fail("runs with different seeds visit the examples in the same orders: the order must come from the rng "
             "argument (rng.permutation(N)), not from a generator of your own")
    return (f"every epoch visits the {N} examples once, in a new random order drawn from rng, in batches of "
            f"{B} (last one {N % B or B})")


register("minibatch_sgd.batches", ("minibatch_sgd",), _sgd_inputs, _batches_probe, _batches_judge,
         doc="minibatch_sgd's batches: a fresh permutation per epoch from rng, cut into batch_size pieces")


# --- the trajectory along the batches the loop formed
def _trajectory_probe(fns, inp):
    log = []
    w, history, w0_after = _run_sgd(fns[0], inp, inp["seed"], inp["batch_size"], inp["epochs"], log)
    out = _pack_log(log, "")
    out.update(w=w, history=history, w0_after=w0_after)
    return out


def _trajectory_judge(inp, out):
    log = _unpack_log(out, "")
    lr = inp["lr"]
    compare("w0 after minibatch_sgd returned", out["w0_after"], inp["w0"], tol=0.0, oracle="the original w0",
            hint="start from a copy, w = w0.copy(): an in-place update w -= ... on w0 itself changes the caller's array")
    if not log:
        fail("minibatch_sgd never called loss_fn")
    w, losses = inp["w0"].copy(), []
    for k, (wk, Xb, yb) in enumerate(log):
        compare(f"the w passed to loss_fn at step {k}", wk, w, tol=1e-10,
                oracle="w0 minus the previous steps' learning_rate * grad" if k else "w0",
                hint="step k must call loss_fn at the parameters after the k previous updates "
                     "w <- w - learning_rate * grad (each grad from its own batch)")
        loss, g = _torch_loss(inp["kind"], w, Xb, yb, inp["T"])
        losses.append(loss)
        w = w - lr * g
    compare(f"history from minibatch_sgd ({len(log)} steps)", out["history"], np.array(losses), tol=1e-10,
            oracle="the losses of the batches", hint="history holds, for every step in order, the loss that "
            "loss_fn returned for that step's batch (before the update): shape (epochs * ceil(N / batch_size),)")
    err = compare("the w that minibatch_sgd returned", out["w"], w, tol=1e-10,
                  oracle="the last step's update in PyTorch", hint="return w after the last update")
    return (f"all {len(log)} steps follow w <- w - lr * grad exactly, with PyTorch's gradients on the batches "
            f"(relative error {err:.1e})")


register("minibatch_sgd.trajectory", ("minibatch_sgd",), _sgd_inputs, _trajectory_probe, _trajectory_judge,
         doc="minibatch_sgd's steps, losses and result along its own batches")
