"""Checks of the autodiff engine's operations (assignment 03): each operation's value and
gradients, then whole expressions (shared nodes, diamonds, a two-layer network).

Each operation (``add``, ``mul``, ``matmul``, ``reduce_sum``, ...) gives its result a
``_backward`` rule; the checks compare its value and gradients with PyTorch autograd in float64
on random inputs. Every check runs two fixed cases, visible and hidden alike: the notebook's own
shapes, and the other shapes and corners (operands that broadcast against each other, 0-d
tensors, large values); hidden runs draw other sizes and values inside both. The graph
machinery they rely on (``Tensor``) has its own checks, in autodiff_graph.py.

Tolerance: 1e-9 relative to the size of the expected array, as everywhere in float64.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dlhw.checks.autodiff_graph import (TOL, Student, cmp_grad, data_of, expect_tensor, grad_of, shape_of,
                                        two_cases)
from dlhw.checks.core import compare, register
from dlhw.checks.helpers import sizes, torch as _torch
from dlhw.checks.spec import values


# ============================================================================ operations
#
# A case: the operation's name, its arguments (those flagged in "grad" become Tensors with
# requires_grad=True, the others stay numbers or arrays: constants), extra arguments (the
# exponent, the axis...), and dout, the gradient of the result to pass to backward().

TORCH_OPS = SimpleNamespace(
    add=lambda a, b: a + b, sub=lambda a, b: a - b, mul=lambda a, b: a * b, div=lambda a, b: a / b,
    neg=lambda x: -x, power=lambda x, p: x ** p,
    relu=lambda x: _torch().relu(x), tanh=lambda x: _torch().tanh(x),
    exp=lambda x: _torch().exp(x), log=lambda x: _torch().log(x),
    matmul=lambda a, b: a @ b,
    reduce_sum=lambda x, axis=None, keepdims=False: _reduce(x, "sum", axis, keepdims),
    reduce_mean=lambda x, axis=None, keepdims=False: _reduce(x, "mean", axis, keepdims),
    reshape=lambda x, shape: x.reshape(shape),
    transpose=lambda x, axes=None: x.permute(tuple(reversed(range(x.dim()))) if axes is None
                                             else tuple(axes)),
    log_softmax=lambda x, axis=-1: _torch().log_softmax(x, dim=axis),
)


def _reduce(x, how, axis, keepdims):
    if axis is None:
        r = getattr(x, how)()
        return r.reshape((1,) * x.dim()) if keepdims else r
    return getattr(x, how)(dim=axis, keepdim=keepdims)


def _signature(case):
    """The case in words: ``sub(2.5, b) with b of shape (3, 4)``."""
    parts, shapes = [], []
    for n, a, g in zip(_arg_names(case), case["args"], case["grad"]):
        if g:
            parts.append(n)
            shapes.append(f"{n} of shape {shape_of(a)}")
        elif np.ndim(a) == 0:
            parts.append(f"{float(a):g}")
        else:
            parts.append(f"a constant array of shape {shape_of(a)}")
    parts += [repr(e) for e in case.get("extra", [])]
    return f"{case['op']}({', '.join(parts)})" + (f" with {', '.join(shapes)}" if shapes else "")


def _arg_names(case):
    return ["abcdefgh"[i] if len(case["args"]) > 1 else "x" for i in range(len(case["args"]))]


def _case(op, args, grad, extra, rng):
    """A case with dout drawn for the result's shape (computed here with numpy)."""
    numpy_value = {
        "add": lambda a, b: np.add(a, b), "sub": np.subtract, "mul": np.multiply,
        "div": np.divide, "neg": np.negative, "power": lambda x, p: np.power(x, p),
        "relu": lambda x: np.maximum(x, 0), "tanh": np.tanh, "exp": np.exp, "log": np.log,
        "matmul": np.matmul,
        "reduce_sum": lambda x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
        "reduce_mean": lambda x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
        "reshape": lambda x, shape: np.reshape(x, shape),
        "transpose": lambda x, axes=None: np.transpose(x, axes),
        "log_softmax": lambda x, axis=-1: x,
    }[op]
    shape = np.shape(numpy_value(*args, *extra))
    return {"op": op, "args": list(args), "grad": list(grad), "extra": list(extra),
            "dout": rng.standard_normal(shape)}


def _ops_probe(names):
    def probe(fns, inp):
        T, by_name = fns[0], dict(zip(names, fns[1:]))
        out = {}
        for i, case in enumerate(inp["cases"]):
            fn = by_name[case["op"]]
            with Student():
                args = [T(a, requires_grad=True) if g else a
                        for a, g in zip(case["args"], case["grad"])]
                res = expect_tensor(T, fn(*args, *case["extra"]), case["op"])
                out[f"{i}.out"] = data_of(res, case["op"])
                res.backward(case["dout"].copy())
                for n, a, g in zip(_arg_names(case), args, case["grad"]):
                    if g:
                        out[f"{i}.d{n}"] = grad_of(a, n)
        return out
    return probe


def _torch_case(case):
    torch = _torch()
    targs = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) if g
             else (float(a) if np.ndim(a) == 0 else torch.tensor(np.asarray(a, dtype=np.float64)))
             for a, g in zip(case["args"], case["grad"])]
    out = getattr(TORCH_OPS, case["op"])(*targs, *case["extra"])
    out.backward(torch.tensor(case["dout"]))
    grads = {n: t.grad.numpy() for n, t, g in zip(_arg_names(case), targs, case["grad"]) if g}
    return out.detach().numpy(), grads


def _op_keys(inp):
    """Per case i: "i.out" (the value), then "i.dNAME" for each argument with a gradient."""
    return [key for i, case in enumerate(inp["cases"])
            for key in [f"{i}.out"] + [f"{i}.d{n}" for n, g in zip(_arg_names(case), case["grad"]) if g]]


def _ops_oracle(inp):
    expected = {}
    for i, case in enumerate(inp["cases"]):
        value, grads = _torch_case(case)
        expected[f"{i}.out"] = value
        expected.update({f"{i}.d{n}": g for n, g in grads.items()})
    return expected


def _op_label(key, inp):
    i, what = key.split(".")
    sig = _signature(inp["cases"][int(i)])
    return f"the value of {sig}" if what == "out" else f"the gradient of {what[1:]} in {sig}"


def _op_hints(hints):
    """hints: {op: {"out": ..., argument name: hint}}; a gradient of the wrong shape is told to unbroadcast."""
    def hint(key, inp, out):
        i, what = key.split(".")
        case = inp["cases"][int(i)]
        h = hints.get(case["op"], {})
        if what == "out":
            return h.get("out", "")
        text, got = h.get(what[1:], ""), out.get(key)
        shape = np.shape(case["args"][_arg_names(case).index(what[1:])])
        if got is not None and np.shape(got) != shape:
            return ("a gradient must have its tensor's shape: accumulate sums a broadcast gradient back with "
                    "unbroadcast" + ("; " + text if text else ""))
        return text
    return hint


def _compare_op(what, got, expected, tol=TOL, hint="", oracle="PyTorch"):
    """A value against PyTorch; a gradient against its autograd (None: no gradient reached it)."""
    if oracle == "PyTorch autograd":
        return cmp_grad(what, got, expected, hint)
    return compare(what, got, expected, tol=tol, hint=hint)


def _register_ops(check, names, make_cases, hints, doc):
    def inputs(rng, hidden):
        return {"cases": make_cases(rng, hidden)}
    # the notebook's shapes, then broadcast pairs, 0-d and other shapes, large and tiny inputs
    values(f"autodiff.{check}", ("Tensor",) + tuple(names),
           two_cases(inputs, {"the notebook's shapes", "constant operands"},
                     {"other shapes", "broadcast and 0-d operands", "constant operands", "corners"}),
           _ops_probe(names), _ops_oracle, _op_keys, label=_op_label, hints=_op_hints(hints), tol=TOL,
           oracle_name=lambda key: "PyTorch" if key.endswith(".out") else "PyTorch autograd",
           compare_with=_compare_op, doc=doc,
           says=lambda inp, worst: (f"{', '.join(sorted({c['op'] for c in inp['cases']}))}: values and gradients "
                                    f"match PyTorch autograd on {len(inp['cases'])} cases (largest relative error "
                                    f"{worst:.1e})"))


# ------------------------------------------------------------------ shapes for the cases

def _rand_shape(rng, low=0, high=3, size_high=5):
    return sizes(rng, 1, size_high, int(rng.integers(low, high + 1)))


def _broadcast_pairs(rng, hidden):
    """Operand shapes: the same shapes, then (hidden) pairs that broadcast against each other."""
    if not hidden:
        return [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1), (1, 3))]
    pairs = [(_rand_shape(rng, 1),) * 2]
    for _ in range(3):
        base = _rand_shape(rng, 1, 3)

        def operand():
            s = [1 if rng.random() < 0.4 else n for n in base]
            return tuple(s[int(rng.integers(0, len(s) + 1)):])
        pairs.append((operand(), operand()))
    pairs.append(((2, 3, 4), (3, 1)))
    pairs.append(((), _rand_shape(rng, 1)))            # a 0-d tensor with a bigger one
    return pairs


def _nonzero(rng, shape, low=0.5, high=2.0):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def _binary_cases(ops, rng, hidden, values=None):
    values = values or (lambda s: rng.standard_normal(s))
    cases = []
    for op in ops:
        for sa, sb in _broadcast_pairs(rng, hidden):
            cases.append(_case(op, [values(sa), values(sb)], [True, True], [], rng))
        c = float(rng.uniform(0.5, 2.0))
        s = _rand_shape(rng, 1) if hidden else (2, 3)
        cases.append(_case(op, [values(s), c], [True, False], [], rng))      # tensor op number
        cases.append(_case(op, [c, values(s)], [False, True], [], rng))      # number op tensor
        if hidden:
            cases.append(_case(op, [rng.standard_normal(s), values(s)], [False, True], [], rng))
    return cases


_BROADCAST = "accumulate sums dout back to the operand's shape"

_register_ops(
    "add_sub", ("add", "sub"), lambda rng, hidden: _binary_cases(("add", "sub"), rng, hidden),
    {"add": {"a": "d(a + b)/da = 1: a gets dout", "b": "d(a + b)/db = 1: b gets dout"},
     "sub": {"a": "d(a - b)/da = 1: a gets dout", "b": "d(a - b)/db = -1: b gets -dout"}},
    "add and sub: gradients of both operands, broadcast and constant operands")
_register_ops(
    "mul", ("mul",), lambda rng, hidden: _binary_cases(("mul",), rng, hidden),
    {"mul": {"a": "d(a * b)/da = b: a gets dout * b (the other operand's value)",
             "b": "d(a * b)/db = a: b gets dout * a (the other operand's value)"}},
    "mul: gradients of both operands")
_register_ops(
    "div", ("div",), lambda rng, hidden: _binary_cases(("div",), rng, hidden,
                                                       values=lambda s: _nonzero(rng, s)),
    {"div": {"a": "d(a / b)/da = 1 / b", "b": "d(a / b)/db = -a / b^2 (note the minus sign)"}},
    "div: gradients of numerator and denominator")


# ------------------------------------------------------------------ one operand

def _unary_shape(rng, hidden):
    return _rand_shape(rng, 0, 3) if hidden else (3, 4)


def _neg_power_cases(rng, hidden):
    cases = [_case("neg", [rng.standard_normal(_unary_shape(rng, hidden))], [True], [], rng)]
    exponents = [2, 3] + ([float(rng.choice([2.0, 3.0, 4.0, 1.0]))] if hidden else [])
    for p in exponents:                                  # any sign of x
        cases.append(_case("power", [rng.standard_normal(_unary_shape(rng, hidden))], [True],
                           [float(p)], rng))
    fractional = [0.5, -1.0] + ([float(rng.choice([-2.0, 1.5, -0.5, 2.5]))] if hidden else [])
    for p in fractional:                                 # positive x
        cases.append(_case("power", [rng.uniform(0.3, 2.0, _unary_shape(rng, hidden))], [True],
                           [float(p)], rng))
    return cases


def _relu_cases(rng, hidden):
    out = []
    for _ in range(3 if hidden else 2):
        s = _unary_shape(rng, hidden)
        x = rng.standard_normal(s)
        x = np.where(x >= 0, x + 0.01, x - 0.01)        # no input at the kink x = 0
        out.append(_case("relu", [x], [True], [], rng))
    return out


def _with_corners(rng, x, corners):
    x = np.array(x, dtype=np.float64)
    if x.size >= len(corners):
        x.flat[:len(corners)] = corners
    return x


def _tanh_cases(rng, hidden):
    out = []
    for _ in range(3 if hidden else 2):
        x = 1.5 * rng.standard_normal(_unary_shape(rng, hidden))
        if hidden:
            x = _with_corners(rng, x, [25.0, -25.0, 4.0])
        out.append(_case("tanh", [x], [True], [], rng))
    return out


def _exp_log_cases(rng, hidden):
    out = []
    for _ in range(2 if hidden else 1):
        x = rng.uniform(-2, 2, _unary_shape(rng, hidden))
        if hidden:
            x = _with_corners(rng, x, [20.0, -30.0])
        out.append(_case("exp", [x], [True], [], rng))
        y = rng.uniform(0.2, 3.0, _unary_shape(rng, hidden))
        if hidden:
            y = _with_corners(rng, y, [1e-3, 1e3])
        out.append(_case("log", [y], [True], [], rng))
    return out


_register_ops("neg_power", ("neg", "power"), _neg_power_cases,
              {"neg": {"x": "d(-x)/dx = -1"},
               "power": {"x": "d(x^p)/dx = p x^(p-1): the factor p and the exponent p - 1"}},
              "neg and power (integer and fractional exponents)")
_register_ops("relu", ("relu",), _relu_cases,
              {"relu": {"x": "the gradient passes where x > 0 (the input, not dout) and is 0 elsewhere"}},
              "relu")
_register_ops("tanh", ("tanh",), _tanh_cases,
              {"tanh": {"x": "tanh'(x) = 1 - tanh(x)^2, not (1 - tanh(x))^2"}}, "tanh")
_register_ops("exp_log", ("exp", "log"), _exp_log_cases,
              {"exp": {"x": "exp'(x) = exp(x): reuse the value computed in the forward pass"},
               "log": {"x": "log'(x) = 1 / x (not 1 / x^2)"}},
              "exp and log (hidden: large and tiny inputs)")


# ------------------------------------------------------------------ matmul

def _matmul_cases(rng, hidden):
    if hidden:
        N, D, M = sizes(rng, 1, 7, 3)
        shapes = [((N, D), (D, M)), ((2, N, D), (2, D, M)), ((3, N, D), (D, M)),
                  ((1, N, D), (2, D, M)), ((N, D), (2, 1, D, M))]
    else:
        shapes = [((4, 3), (3, 5)), ((2, 4, 3), (2, 3, 5))]
    cases = [_case("matmul", [rng.standard_normal(sa), rng.standard_normal(sb)], [True, True], [], rng)
             for sa, sb in shapes]
    sa, sb = shapes[0]
    cases.append(_case("matmul", [rng.standard_normal(sa), rng.standard_normal(sb)], [False, True],
                       [], rng))                         # a constant on the left
    return cases


_register_ops("matmul", ("matmul",), _matmul_cases,
              {"matmul": {"a": "for C = A B, dA = dC B^T (swap the last two axes of B)",
                          "b": "for C = A B, dB = A^T dC (swap the last two axes of A); batch axes "
                               "that broadcasting added are summed by accumulate"}},
              "matmul: 2-D, batched and broadcast batch axes")


# ------------------------------------------------------------------ reductions and shapes

def _axes_cases(op, rng, hidden, n):
    if not hidden:
        x = rng.standard_normal((2, 3, 4))
        specs = {"reduce_sum": [(None, False), (1, False), (-1, True), ((0, 2), False)],
                 "reduce_mean": [(None, False), (0, False), ((1, 2), True)]}[op]
        return [_case(op, [x], [True], [axis, keep], rng) for axis, keep in specs]
    cases = []
    for _ in range(n):
        shape = _rand_shape(rng, 1, 4)
        k = len(shape)
        kind = rng.integers(0, 3)
        if kind == 0:
            axis = None
        elif kind == 1:
            axis = int(rng.integers(-k, k))
        else:
            chosen = sorted(rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False))
            axis = tuple(int(a) - (k if rng.random() < 0.5 else 0) for a in chosen)
        cases.append(_case(op, [rng.standard_normal(shape)], [True], [axis, bool(rng.random() < 0.5)],
                           rng))
    return cases


def _shape_cases(rng, hidden):
    if not hidden:
        x = rng.standard_normal((2, 3, 4))
        return [_case("reshape", [x], [True], [(6, 4)], rng),
                _case("reshape", [x], [True], [(4, -1)], rng),
                _case("transpose", [x], [True], [None], rng),
                _case("transpose", [x], [True], [(2, 0, 1)], rng),
                _case("transpose", [rng.standard_normal((3, 5))], [True], [(1, 0)], rng)]
    cases = []
    for _ in range(3):
        shape = _rand_shape(rng, 2, 4, 4)
        x = rng.standard_normal(shape)
        cases.append(_case("reshape", [x], [True], [(-1,) + shape[-1:]], rng))
        cases.append(_case("reshape", [x], [True], [(int(np.prod(shape)),)], rng))
        perm = tuple(int(a) for a in rng.permutation(len(shape)))
        if len(shape) >= 3:                          # a permutation that is not its own inverse
            perm = tuple(int(a) for a in np.roll(np.arange(len(shape)), int(rng.integers(1, len(shape)))))
        cases.append(_case("transpose", [x], [True], [perm], rng))
    return cases


_register_ops("sum", ("reduce_sum",), lambda rng, hidden: _axes_cases("reduce_sum", rng, hidden, 6),
              {"reduce_sum": {"x": "every summed element gets the dout of its sum: put back the "
                                   "summed axes (np.expand_dims when keepdims is False), then "
                                   "broadcast to x's shape"}},
              "reduce_sum over None, one axis, negative axes, tuples, keepdims")
_register_ops("mean", ("reduce_mean",), lambda rng, hidden: _axes_cases("reduce_mean", rng, hidden, 5),
              {"reduce_mean": {"out": "divide by the number of elements averaged into each output "
                                      "(the product of the reduced axes' sizes), not by x's size",
                               "x": "the gradient of a mean is the sum's gradient divided by the "
                                    "number of elements averaged into each output"}},
              "reduce_mean over None, axes and keepdims")
_register_ops("reshape_transpose", ("reshape", "transpose"), _shape_cases,
              {"reshape": {"x": "reshape dout back to x's shape"},
               "transpose": {"x": "undo the permutation: transpose dout by the inverse "
                                  "permutation np.argsort(axes), not by axes itself"}},
              "reshape and transpose (permutations that are not their own inverse)")


# ------------------------------------------------------------------ log_softmax

def _log_softmax_cases(rng, hidden):
    if not hidden:
        return [_case("log_softmax", [3 * rng.standard_normal((4, 5))], [True], [-1], rng),
                _case("log_softmax", [3 * rng.standard_normal((3, 4))], [True], [0], rng)]
    N, C = sizes(rng, 1, 8, 2)
    return [_case("log_softmax", [1e3 * rng.standard_normal((N, C))], [True], [-1], rng),
            _case("log_softmax", [5 * rng.standard_normal((2, C, N))], [True], [1], rng),
            _case("log_softmax", [rng.standard_normal((N, C))], [True], [1], rng)]


_register_ops("log_softmax", ("log_softmax",), _log_softmax_cases,
              {"log_softmax": {"x": "out = x - logsumexp(x), so dx = dout - softmax(x) * (the sum "
                                    "of dout over the axis); compute softmax as exp(out), which "
                                    "never overflows"}},
              "log_softmax along an axis (hidden: logits of size 1e3)")


# ============================================================================ whole graphs
#
# Expressions written once over a namespace of functions F: the student's (probe) or
# PyTorch's (judge).

def _shared(F, x):                       # x feeds two nodes: x * x + x
    return F.add(F.mul(x, x), x)


def _diamond(F, x):                      # a = tanh(x) feeds three nodes at different depths
    a = F.tanh(x)
    return F.reduce_sum(F.add(F.mul(F.mul(a, 2.0), F.exp(a)), F.power(a, 2)))


def _broadcast_shared(F, x, b):          # b (D,) broadcast into two nodes of shape (N, D)
    return F.reduce_sum(F.mul(F.add(x, b), F.sub(b, F.tanh(x))))


def _fan(F, x, w):                       # h feeds a quotient, a power and an exp
    h = F.tanh(F.mul(x, w))
    return F.div(F.add(F.power(h, 3), F.exp(h)), F.add(F.mul(h, h), 1.0))


GRAPHS = {"x * x + x": (_shared, 1), "diamond through tanh": (_diamond, 1),
          "a broadcast operand used twice": (_broadcast_shared, 2), "a node with three consumers": (_fan, 2)}


def _graph_inputs(rng, hidden):
    N, D = sizes(rng, 1, 6, 2) if hidden else (3, 4)
    args = {"x * x + x": [rng.standard_normal((N, D))],
            "diamond through tanh": [rng.standard_normal((N, D))],
            "a broadcast operand used twice": [rng.standard_normal((N, D)), rng.standard_normal(D)],
            "a node with three consumers": [rng.standard_normal((N, D)), rng.standard_normal((N, 1))]}
    douts = {"x * x + x": rng.standard_normal((N, D)), "diamond through tanh": None,
             "a broadcast operand used twice": None, "a node with three consumers":
                 rng.standard_normal((N, D))}
    return {"cases": [{"name": k, "args": args[k], "dout": douts[k]} for k in GRAPHS]}


_GRAPH_FNS = ("add", "sub", "mul", "div", "power", "tanh", "exp", "reduce_sum")


def _graph_probe(fns, inp):
    T, F = fns[0], SimpleNamespace(**dict(zip(_GRAPH_FNS, fns[1:])))
    out = {}
    with Student():
        for i, case in enumerate(inp["cases"]):
            f, _ = GRAPHS[case["name"]]
            leaves = [T(a, requires_grad=True) for a in case["args"]]
            res = expect_tensor(T, f(F, *leaves), case["name"])
            out[f"{i}.out"] = data_of(res, case["name"])
            res.backward(None if case["dout"] is None else case["dout"].copy())
            for j, leaf in enumerate(leaves):
                out[f"{i}.d{j}"] = grad_of(leaf, f"argument {j}")
    return out


def _graph_judge(inp, outp):
    torch = _torch()
    worst = 0.0
    for i, case in enumerate(inp["cases"]):
        f, _ = GRAPHS[case["name"]]
        leaves = [torch.tensor(a, requires_grad=True) for a in case["args"]]
        res = f(TORCH_OPS, *leaves)
        res.backward(None if case["dout"] is None else torch.tensor(case["dout"]))
        compare(f"the value of {case['name']}", outp.get(f"{i}.out"), res.detach().numpy(), tol=TOL)
        names = "xb" if len(leaves) == 2 and case["name"].startswith("a broadcast") else "xw"
        for j, leaf in enumerate(leaves):
            worst = max(worst, cmp_grad(
                f"the gradient of {names[j]} (shape {tuple(leaf.shape)}) in '{case['name']}'",
                outp.get(f"{i}.d{j}"), leaf.grad.numpy(),
                "a tensor used by several operations gets the sum of their contributions: "
                "accumulate adds, backward visits a tensor only once all its consumers are done"))
    return (f"{len(inp['cases'])} graphs with shared nodes and diamonds match PyTorch autograd "
            f"(largest relative error {worst:.1e})")


register("autodiff.graphs", ("Tensor",) + _GRAPH_FNS,
         two_cases(_graph_inputs, {"shared nodes"}, {"shared nodes", "other shapes"}), _graph_probe, _graph_judge,
         doc="whole expressions with shared nodes, against PyTorch autograd")


# ------------------------------------------------------------------ a two-layer MLP

_MLP_FNS = ("add", "sub", "mul", "matmul", "relu", "log_softmax", "reduce_sum", "reduce_mean")


def _mlp_loss(F, X, Y, W1, b1, W2, b2, reg):
    h = F.relu(F.add(F.matmul(X, W1), b1))
    scores = F.add(F.matmul(h, W2), b2)
    data = F.reduce_mean(F.reduce_sum(F.mul(F.log_softmax(scores, 1), Y), 1))
    penalty = F.add(F.reduce_sum(F.mul(W1, W1)), F.reduce_sum(F.mul(W2, W2)))
    return F.sub(F.mul(penalty, reg), data)


def _mlp_inputs(rng, hidden):
    N, D, H, C = sizes(rng, 2, 9, 4) if hidden else (6, 5, 7, 3)
    return {"X": rng.standard_normal((N, D)), "Y": np.eye(C)[rng.integers(0, C, N)],
            "params": [0.5 * rng.standard_normal((D, H)), 0.1 * rng.standard_normal(H),
                       0.5 * rng.standard_normal((H, C)), 0.1 * rng.standard_normal(C)],
            "reg": float(rng.uniform(0.01, 0.3)) if hidden else 0.05}


def _mlp_probe(fns, inp):
    T, F = fns[0], SimpleNamespace(**dict(zip(_MLP_FNS, fns[1:])))
    with Student():
        params = [T(p, requires_grad=True) for p in inp["params"]]
        loss = expect_tensor(T, _mlp_loss(F, inp["X"], inp["Y"], *params, inp["reg"]), "the loss")
        out = {"loss": data_of(loss, "the loss")}
        loss.backward()
        for name, p in zip(("W1", "b1", "W2", "b2"), params):
            out["d" + name] = grad_of(p, name)
    return out


def _mlp_judge(inp, outp):
    torch = _torch()
    params = [torch.tensor(p, requires_grad=True) for p in inp["params"]]
    loss = _mlp_loss(TORCH_OPS, torch.tensor(inp["X"]), torch.tensor(inp["Y"]), *params, inp["reg"])
    loss.backward()
    compare("the loss of the two-layer network", outp.get("loss"), loss.detach().numpy(), tol=TOL)
    worst = 0.0
    for name, p in zip(("W1", "b1", "W2", "b2"), params):
        worst = max(worst, cmp_grad(
            f"the gradient of {name} in the two-layer network's loss", outp.get("d" + name),
            p.grad.numpy(), "W1 and W2 are used twice (the scores and the penalty): their "
                            "contributions add; b1 and b2 are broadcast over the batch"))
    return f"the loss and all four gradients match PyTorch autograd (largest relative error {worst:.1e})"


register("autodiff.mlp", ("Tensor",) + _MLP_FNS,
         two_cases(_mlp_inputs, {"two-layer net"}, {"two-layer net", "other shapes"}), _mlp_probe, _mlp_judge,
         doc="a two-layer network's loss and gradients, against PyTorch autograd")
