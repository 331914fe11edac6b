"""dlhw.autodiff.Tensor against torch autograd (float64) and numerical gradients."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dlhw import autodiff as ad
from dlhw.autodiff import Tensor
from dlhw.gradcheck import numerical_gradient, rel_error


def pair(x, requires_grad=True):
    """The same leaf in both engines."""
    x = np.asarray(x, dtype=np.float64)
    return Tensor(x, requires_grad=requires_grad), torch.tensor(x, requires_grad=requires_grad)


def close(ours, theirs, rtol=1e-9):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    scale = max(1.0, float(np.max(np.abs(theirs), initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-12 * scale)


# --- random expressions -------------------------------------------------------------------

UNARY = ["neg", "tanh", "relu", "exp_tanh", "log1p_sq", "square", "cube", "recip"]
BINARY = ["add", "sub", "mul", "safe_div", "const_left", "const_right"]


def evaluate(expr, leaves):
    """Evaluate an expression tree with operators and methods both engines share."""
    op = expr[0]
    if op == "leaf":
        return leaves[expr[1]]
    if len(expr) == 2:
        x = evaluate(expr[1], leaves)
        return {"neg": lambda: -x, "tanh": lambda: x.tanh(), "relu": lambda: x.relu(),
                "exp_tanh": lambda: x.tanh().exp(), "log1p_sq": lambda: (x * x + 1).log(),
                "square": lambda: x ** 2, "cube": lambda: x ** 3,
                "recip": lambda: 1.5 / (x * x + 0.5)}[op]()
    a, b = evaluate(expr[1], leaves), evaluate(expr[2], leaves)
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
            "safe_div": lambda: a / (b * b + 1), "const_left": lambda: 2.0 - a * b,
            "const_right": lambda: (a - 0.5) * 3.0 + b}[op]()


expressions = st.recursive(
    st.integers(0, 2).map(lambda i: ("leaf", i)),
    lambda sub: st.one_of(st.tuples(st.sampled_from(UNARY), sub),
                          st.tuples(st.sampled_from(BINARY), sub, sub)),
    max_leaves=10)


@settings(max_examples=25, deadline=None)
@given(expr=expressions, seed=st.integers(0, 2 ** 16),
       shapes=st.sampled_from([[(3, 4)] * 3, [(3, 4), (4,), (3, 1)], [(2, 1, 4), (3, 1), ()],
                               [(), (), ()], [(1, 5), (4, 1), (5,)]]))
def test_random_expressions_match_torch(expr, seed, shapes):
    rng = np.random.default_rng(seed)
    pairs = [pair(rng.uniform(-1.5, 1.5, s)) for s in shapes]
    ours_leaves, torch_leaves = zip(*pairs)
    ours, theirs = evaluate(expr, ours_leaves), evaluate(expr, torch_leaves)
    close(ours.data, theirs)
    dout = rng.standard_normal(ours.shape)
    ours.backward(dout)
    theirs.backward(torch.from_numpy(dout))
    for o, t in zip(ours_leaves, torch_leaves):
        if t.grad is None:                         # the leaf does not occur in the expression
            assert o.grad is None
        else:
            assert o.grad.shape == o.shape
            close(o.grad, t.grad)


# --- the graph structures the brief names -----------------------------------------------------

def test_shared_node_accumulates():
    x, xt = pair([0.5, -2.0, 3.0])
    y = x * x + x
    y.backward(np.ones(3))
    np.testing.assert_allclose(x.grad, 2 * x.data + 1, rtol=1e-15)
    (xt * xt + xt).sum().backward()
    close(x.grad, xt.grad)


def test_diamond():
    # x -> a -> (b, c) -> d: a's gradient is the sum of both paths.
    x, xt = pair(np.linspace(-1, 1, 5))

    def f(x):
        a = x.tanh()
        return ((a * 2.0) * a.exp() + a ** 2).sum()

    out, out_t = f(x), f(xt)
    out.backward()
    out_t.backward()
    close(out.data, out_t)
    close(x.grad, xt.grad)
    order = out.topological_order()
    assert len(order) == len({id(n) for n in order})   # every node once
    position = {id(n): i for i, n in enumerate(order)}
    assert order[-1] is out
    for node in order:                                  # inputs before outputs
        for parent in node._inputs:
            assert position[id(parent)] < position[id(node)]


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
                                              ((5,), ()), ((1,), (2, 3))])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_broadcasting(a_shape, b_shape, op):
    rng = np.random.default_rng(0)
    a, at = pair(rng.uniform(0.5, 2, a_shape))
    b, bt = pair(rng.uniform(0.5, 2, b_shape))
    f = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
         "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    out, out_t = f(a, b), f(at, bt)
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    out_t.backward(torch.from_numpy(dout))
    assert a.grad.shape == a_shape and b.grad.shape == b_shape
    close(a.grad, at.grad)
    close(b.grad, bt.grad)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=0, max_size=3),
       lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), data=st.data())
def test_unbroadcast_is_torch_sum_to_size(shape, lead, data):
    # Stretch some size-1 axes of shape and prepend leading axes: that is a broadcast.
    ones = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    operand = tuple(1 if o else n for o, n in zip(ones, shape))
    big = tuple(lead) + tuple(data.draw(st.integers(1, 3)) if o else n for o, n in zip(ones, shape))
    g = np.random.default_rng(0).standard_normal(big)
    ours = Tensor.unbroadcast(g, operand)
    theirs = torch.from_numpy(g).sum_to_size(operand).numpy() if operand else g.sum()
    assert ours.shape == operand
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("axis, keepdims", [(None, False), (None, True), (0, False), (1, True),
                                            (-1, False), ((0, 2), False), ((0, -1), True)])
def test_sum_and_mean(axis, keepdims):
    rng = np.random.default_rng(1)
    x, xt = pair(rng.standard_normal((2, 3, 4)))
    w = rng.standard_normal(np.sum(x.data, axis=axis, keepdims=keepdims).shape)
    for name in ("sum", "mean"):
        out = getattr(x, name)(axis=axis, keepdims=keepdims)
        out_t = getattr(xt, name)(dim=axis, keepdim=keepdims) if axis is not None else (
            getattr(xt, name)().reshape((1, 1, 1) if keepdims else ()))
        close(out.data, out_t)
        out.backward(w)
        xt.grad = None
        out_t.backward(torch.from_numpy(np.asarray(w)))
        close(x.grad, xt.grad)


def test_matmul_reshape_transpose():
    rng = np.random.default_rng(2)
    a, at = pair(rng.standard_normal((2, 3, 4)))
    b, bt = pair(rng.standard_normal((4, 5)))

    def f(a, b, T):
        c = a @ b                                  # (2, 3, 5), b broadcast over the batch
        return T(c, (2, 0, 1)).reshape(5, 6) @ a.reshape(6, 4).tanh()

    out = f(a, b, lambda t, axes: t.transpose(axes))
    out_t = f(at, bt, lambda t, axes: t.permute(axes))
    close(out.data, out_t)
    dout = rng.standard_normal(out.shape)
    out.backward(dout)
    out_t.backward(torch.from_numpy(dout))
    close(a.grad, at.grad)
    close(b.grad, bt.grad)
    m, mt = pair(rng.standard_normal((3, 4)))
    m.T.sum().backward()
    np.testing.assert_array_equal(m.grad, np.ones((3, 4)))


def test_log_softmax_stable_and_matches_torch():
    x, xt = pair([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    out, out_t = x.log_softmax(), torch.log_softmax(xt, dim=-1)
    assert np.all(np.isfinite(out.data))
    close(out.data, out_t)
    dout = np.arange(6.0).reshape(2, 3)
    out.backward(dout)
    out_t.backward(torch.from_numpy(dout))
    close(x.grad, xt.grad)
    y, yt = pair(np.random.default_rng(3).standard_normal((4, 3)))
    y.log_softmax(axis=0).sum(axis=1).backward(np.ones(4))
    torch.log_softmax(yt, dim=0).sum().backward()
    close(y.grad, yt.grad)


def test_two_layer_mlp_matches_torch_and_numerical_gradient():
    rng = np.random.default_rng(4)
    N, D, H, C = 8, 5, 7, 3
    X = rng.standard_normal((N, D))
    Y = np.eye(C)[rng.integers(0, C, N)]           # one-hot labels
    params = [rng.standard_normal((D, H)) * 0.5, rng.standard_normal(H) * 0.1,
              rng.standard_normal((H, C)) * 0.5, rng.standard_normal(C) * 0.1]
    ours = [Tensor(p, requires_grad=True) for p in params]
    theirs = [torch.tensor(p, requires_grad=True) for p in params]

    def loss_fn(W1, b1, W2, b2, log_softmax, X=Tensor(X), Y=Tensor(Y)):
        scores = (X @ W1 + b1).relu() @ W2 + b2
        return -(log_softmax(scores) * Y).sum() / N + 0.05 * ((W1 * W1).sum() + (W2 * W2).sum())

    loss = loss_fn(*ours, lambda s: s.log_softmax())
    loss_t = loss_fn(*theirs, lambda s: torch.log_softmax(s, dim=1), torch.from_numpy(X),
                     torch.from_numpy(Y))
    close(loss.data, loss_t)
    loss.backward()
    loss_t.backward()
    for o, t in zip(ours, theirs):
        assert rel_error(o.grad, t.grad.numpy()) < 1e-10
    for i, p in enumerate(params):
        def f(value, i=i):
            args = [Tensor(q) for q in params]
            args[i] = Tensor(value)
            return loss_fn(*args, lambda s: s.log_softmax()).item()
        assert rel_error(numerical_gradient(f, p.copy()), ours[i].grad) < 1e-7


def test_repeated_backward_gives_the_same_result():
    x, xt = pair([0.3, -1.2])
    y = (x * x).exp().sum() + x.sum()
    y.backward()
    first = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(x.grad, first)
    (xt * xt).exp().sum().add(xt.sum()).backward()
    close(first, xt.grad)


def test_new_graph_on_the_same_leaf_starts_from_zero():
    # A training loop builds a fresh graph on the same parameters every step.
    w = Tensor([1.0, 2.0], requires_grad=True)
    (w * 3.0).sum().backward()
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0])


def test_constants_get_no_gradient():
    a = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([3.0, 4.0])
    out = (a * c + np.array([1.0, 1.0]) * a).sum()
    out.backward()
    assert c.grad is None and not c.requires_grad
    np.testing.assert_array_equal(a.grad, [4.0, 5.0])
    assert not (c * 2.0).requires_grad and (c * a).requires_grad


def test_numpy_array_on_the_left():
    a = Tensor(np.ones(3), requires_grad=True)
    out = np.array([1.0, 2.0, 3.0]) * a + np.array([1.0, 1.0, 1.0]) - a
    assert isinstance(out, Tensor)
    out = np.ones((2, 3)) @ a.reshape(3, 1)
    assert isinstance(out, Tensor) and out.shape == (2, 1)
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0, 2.0])


def test_deep_chain_does_not_recurse():
    x, xt = pair([0.7])
    y, yt = x, xt
    for _ in range(5000):
        y = (y * 1.001).tanh() + 0.01
        yt = (yt * 1.001).tanh() + 0.01
    y.backward(np.ones(1))
    yt.backward(torch.ones(1, dtype=torch.float64))
    close(y.data, yt)
    close(x.grad, xt.grad)
    assert len(y.topological_order()) > 15000


def test_training_an_mlp_on_xor_with_the_engine():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    t = np.array([[0.0], [1.0], [1.0], [0.0]])
    rng = np.random.default_rng(0)
    params = [Tensor(rng.standard_normal((2, 8)), requires_grad=True), Tensor(np.zeros(8), requires_grad=True),
              Tensor(rng.standard_normal((8, 1)), requires_grad=True), Tensor(np.zeros(1), requires_grad=True)]
    W1, b1, W2, b2 = params
    for _ in range(500):
        loss = (((X @ W1 + b1).tanh() @ W2 + b2 - t) ** 2).mean()
        loss.backward()
        for p in params:
            p.data -= 0.1 * p.grad
    assert loss.item() < 0.01


def test_errors():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"Tensor.backward: grad must be given for a tensor of shape \(2, 3\)"):
        (a * 2.0).backward()
    with pytest.raises(ValueError, match=r"Tensor.backward: grad must have shape \(2, 3\)"):
        (a * 2.0).backward(np.ones(3))
    with pytest.raises(ValueError, match="Tensor.backward: this tensor does not depend"):
        Tensor(1.0).backward()
    with pytest.raises(ValueError, match="matmul: both operands need ndim >= 2"):
        a @ Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"matmul: b must have shape \(\.\.\., 3, M\)"):
        a @ Tensor(np.ones((2, 2)))
    with pytest.raises(ValueError, match="power: the exponent must be a number"):
        a ** a
    with pytest.raises(ValueError, match="Tensor: data must be convertible"):
        Tensor("abc")
    with pytest.raises(ValueError, match="Tensor: requires_grad must be True or False"):
        Tensor(1.0, requires_grad="yes")


def test_data_is_copied_and_float64():
    src = np.array([1, 2, 3])
    t = Tensor(src)
    assert t.data.dtype == np.float64
    f = np.array([1.0, 2.0])
    t = Tensor(f)
    t.data[0] = 5.0
    assert f[0] == 1.0


def test_operation_functions_take_constants_on_either_side():
    # The operators call these functions; numbers and arrays are constants wherever they stand.
    rng = np.random.default_rng(5)
    x, xt = pair(rng.uniform(0.5, 2.0, (3, 4)))
    c = rng.standard_normal((2, 3))
    cases = [(lambda v: ad.sub(2.0, v), lambda v: 2.0 - v),
             (lambda v: ad.div(1.5, v), lambda v: 1.5 / v),
             (lambda v: ad.matmul(c, v), lambda v: torch.from_numpy(c) @ v),
             (lambda v: ad.reduce_mean(ad.power(v, 0.5), axis=(0, 1), keepdims=True),
              lambda v: (v ** 0.5).mean(dim=(0, 1), keepdim=True)),
             (lambda v: ad.log_softmax(ad.transpose(ad.reshape(v, 2, 6)), axis=0),
              lambda v: torch.log_softmax(v.reshape(2, 6).T, dim=0))]
    for ours_fn, torch_fn in cases:
        out, out_t = ours_fn(x), torch_fn(xt)
        close(out.data, out_t)
        dout = rng.standard_normal(out.shape)
        out.backward(dout)
        xt.grad = None
        out_t.backward(torch.from_numpy(dout))
        close(x.grad, xt.grad)
    assert not ad.add(1.0, np.ones(2)).requires_grad
