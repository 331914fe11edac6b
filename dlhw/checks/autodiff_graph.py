"""Checks of the autodiff engine's graph machinery (assignment 03): unbroadcasting, the
topological order, backward (once, twice, through thousands of nodes).

The student's engine is a class ``Tensor`` (the graph machinery: ``unbroadcast``,
``accumulate``, ``topological_order``, ``backward``) and one function per operation, each giving
its result a ``_backward`` rule (those are checked in autodiff_ops.py).

Oracles, never dlhw's own engine:

* the graph itself for the topological order (the judge knows every edge);
* ``torch.Tensor.sum_to_size`` for ``unbroadcast``;
* PyTorch autograd in float64 for every gradient;
* the chain rule in closed form (a product of factors) for a chain thousands of nodes deep.

The machinery checks build graphs by hand, before any operation exists: leaves
``Tensor(x, requires_grad=True)`` and nodes ``Tensor(t, _inputs=(...))`` whose ``_backward``
rule the check writes itself (``t = tanh(sum_j c_j * input_j)``), so that they test the
student's ordering and accumulation alone. Every check runs two fixed cases, visible and hidden
alike: the notebook's own shapes, and other shapes and bigger graphs; hidden runs draw other
sizes and values inside both.

Tolerance: 1e-9 relative to the size of the expected array, as everywhere in float64 (a
correct engine lands below 1e-13; a wrong rule is off by far more).
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, NotImplementedYet, compare, fail, register
from dlhw.checks.helpers import sizes, torch as _torch

TOL = 1e-9


# ============================================================================ student calls
# (shared with autodiff_ops.py: calling the student's engine, reading its results)

def _where(exc) -> str:
    """The student's function in which ``exc`` was raised (the innermost frame), in words."""
    tb, name = exc.__traceback__, None
    while tb is not None:
        code = tb.tb_frame.f_code
        if "dlhw/checks" not in code.co_filename.replace("\\", "/"):
            name = getattr(code, "co_qualname", code.co_name)
        tb = tb.tb_next
    if not name:
        return "the engine"
    if ".<locals>." in name:                      # mul.<locals>._backward
        outer = name.split(".<locals>.")[0]
        return f"the backward rule of {outer}" if name.endswith("_backward") else outer
    return name


class Student:
    """Context manager: NotImplementedError and RecursionError in the student's code become
    verdicts that say which function is unfinished or recursing."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is not None and issubclass(kind, NotImplementedError):
            raise NotImplementedYet(
                f"{_where(exc)} is not implemented yet: it still raises NotImplementedError "
                "(replace the `raise NotImplementedError()` line in its answer cell)") from None
        if kind is not None and issubclass(kind, RecursionError):
            raise CheckFailed(
                f"RecursionError in {_where(exc)}: the graph is deeper than Python's recursion "
                "limit. Hint: walk the graph with an explicit stack (a list you push to and pop "
                "from) instead of a recursive function") from None
        return False


def grad_of(t, what):
    """``t.grad`` as a float64 array (None stays None)."""
    g = getattr(t, "grad", None)
    if g is None:
        return None
    try:
        arr = np.asarray(g, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}.grad should be a numpy array; got {type(g).__name__}") from None
    return arr


def data_of(t, fname):
    data = getattr(t, "data", None)
    if data is None:
        raise CheckFailed(f"{fname} must return a Tensor (with its value in .data); got "
                          f"{type(t).__name__}")
    return np.asarray(data, dtype=np.float64)


def expect_tensor(T, out, fname):
    if not isinstance(out, T):
        raise CheckFailed(f"{fname} must return a Tensor; got {type(out).__name__} (did the "
                          "function forget `return out`?)")
    return out


def _need_grad(got, what, hint=""):
    if got is None:
        fail(f"{what} is None after backward(): no gradient reached it"
             + (f". Hint: {hint}" if hint else ""))


def shape_of(x):
    return tuple(int(s) for s in np.shape(x))


def cmp_grad(what, got, expected, hint):
    _need_grad(got, what, hint)
    return compare(what, got, expected, tol=TOL, hint=hint, oracle="PyTorch autograd")


# ============================================================================ hand-built graphs
#
# A graph: leaves 0..L-1 (arrays of one shape), then nodes L, L+1, ...; node k has the inputs
# parents[k - L] (indices of earlier nodes, repeats allowed: x used twice, as in x * x) and the
# value tanh(sum_j coefs[j] * input_j). The last node is the root.

def _random_dag(rng, n_leaves, n_nodes, shape):
    parents, coefs = [], []
    for k in range(n_nodes):
        idx = n_leaves + k
        if k == 0:
            ins = [0, 0]                               # one node uses a leaf twice
        else:
            m = int(rng.integers(1, 4))
            # mostly recent nodes (depth), sometimes anything earlier (shortcuts, diamonds)
            ins = [int(rng.integers(max(0, idx - 3), idx)) if rng.random() < 0.6
                   else int(rng.integers(0, idx)) for _ in range(m)]
        parents.append(ins)
        coefs.append(rng.choice([-1.0, 1.0], len(ins)) * rng.uniform(0.5, 1.5, len(ins)))
    # every leaf reaches the root: leaves the root does not depend on become its inputs
    reach = _ancestors(parents, n_leaves, n_leaves + n_nodes - 1)
    missing = [i for i in range(n_leaves) if i not in reach]
    if missing:
        parents[-1] = parents[-1] + missing
        coefs[-1] = np.concatenate([coefs[-1], rng.uniform(0.5, 1.5, len(missing))])
    leaves = [rng.standard_normal(shape) for _ in range(n_leaves)]
    return {"leaves": leaves, "parents": parents, "coefs": coefs, "shape": tuple(shape)}


def _ancestors(parents, n_leaves, q):
    """Indices of the nodes node q depends on, q included."""
    seen, stack = set(), [q]
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        if k >= n_leaves:
            stack.extend(parents[k - n_leaves])
    return seen


def _mix_rule(xs, cs, t):
    def _backward(dout):
        d = np.asarray(dout, dtype=np.float64) * (1.0 - t ** 2)
        for x, c in zip(xs, cs):
            x.accumulate(c * d)
    return _backward


def _build_dag(T, g, leaves=None):
    """The graph ``g`` as student Tensors (on the given leaf Tensors, or on new ones)."""
    nodes = [T(x, requires_grad=True) for x in g["leaves"]] if leaves is None else list(leaves)
    for ins, cs in zip(g["parents"], g["coefs"]):
        xs = [nodes[j] for j in ins]
        t = np.tanh(sum(c * np.asarray(x.data, dtype=np.float64) for c, x in zip(cs, xs)))
        node = T(t, _inputs=tuple(xs), _op="mix")
        node._backward = _mix_rule(xs, list(cs), t)
        nodes.append(node)
    return nodes


def _torch_dag_grads(g, dout):
    """PyTorch's gradients of sum(root * dout) with respect to the leaves of ``g``."""
    torch = _torch()
    leaves = [torch.tensor(x, requires_grad=True) for x in g["leaves"]]
    nodes = list(leaves)
    for ins, cs in zip(g["parents"], g["coefs"]):
        nodes.append(torch.tanh(sum(float(c) * nodes[j] for c, j in zip(cs, ins))))
    nodes[-1].backward(torch.tensor(dout))
    return [t.grad.numpy() for t in leaves]


def _dag_size(rng, hidden, visible_nodes):
    if not hidden:
        return 3, visible_nodes, (3,)
    shape = sizes(rng, 1, 4, int(rng.integers(0, 3)))
    return int(rng.integers(2, 5)), int(rng.integers(12, 40)), shape


# ------------------------------------------------------------------ fixed cases
def two_cases(inputs, notebook, others):
    """Two fixed cases, visible and hidden alike: the notebook's own cases (``inputs(rng, False)``)
    and the other shapes and corners (``inputs(rng, True)``), each with the properties it covers.
    Hidden runs draw other sizes and values inside both."""
    return Cases([Case("the notebook's cases", notebook, lambda rng: inputs(rng, False)),
                  Case("other shapes and corners", others, lambda rng: inputs(rng, True))])


# ------------------------------------------------------------------ unbroadcast

def _unbroadcast_inputs(rng, hidden):
    if not hidden:
        pairs = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (3, 1)), ((2, 3, 4), (1, 4)),
                 ((2, 3), ())]
    else:
        pairs = []
        for _ in range(6):
            shape = list(sizes(rng, 1, 4, int(rng.integers(0, 4))))
            operand = tuple(1 if rng.random() < 0.4 else n for n in shape)
            big = sizes(rng, 1, 4, int(rng.integers(0, 3))) + \
                tuple(int(rng.integers(1, 4)) if n == 1 else n for n in operand)
            pairs.append((big, operand))
        pairs.append(((1, 1, 5), (1, 5)))              # size-1 axes that stay size 1
    return {"cases": [{"grad": rng.standard_normal(big), "shape": tuple(shape)}
                      for big, shape in pairs]}


def _unbroadcast_probe(fns, inp):
    T = fns[0]
    out = {}
    with Student():
        for i, case in enumerate(inp["cases"]):
            res = T.unbroadcast(case["grad"].copy(), tuple(case["shape"]))
            out[f"case{i}"] = None if res is None else np.asarray(res, dtype=np.float64)
    return out


def _unbroadcast_judge(inp, outp):
    torch = _torch()
    worst = 0.0
    for i, case in enumerate(inp["cases"]):
        g, shape = case["grad"], tuple(case["shape"])
        expected = torch.from_numpy(g).sum_to_size(shape).numpy() if shape else np.asarray(g.sum())
        got = outp.get(f"case{i}")
        if got is None:
            fail(f"Tensor.unbroadcast(grad of shape {g.shape}, {shape}) returned None: return the "
                 "summed array")
        worst = max(worst, compare(
            f"Tensor.unbroadcast(grad of shape {g.shape}, shape {shape})", got, expected, tol=TOL,
            oracle="PyTorch's sum_to_size",
            hint="sum over the leading axes that broadcasting added, then (keeping the axis) over "
                 "every axis where shape has 1 and grad does not"))
    return f"every gradient is summed back to its operand's shape (largest error {worst:.1e})"


register("autodiff.unbroadcast", ("Tensor",),
         two_cases(_unbroadcast_inputs, {"leading axes", "size-1 axes", "0-d shape"},
                   {"leading axes", "size-1 axes", "size-1 axes kept"}), _unbroadcast_probe,
         _unbroadcast_judge, doc="Tensor.unbroadcast against torch's sum_to_size")


# ------------------------------------------------------------------ topological order

def _topo_inputs(rng, hidden):
    L, n, shape = _dag_size(rng, hidden, 9)
    g = _random_dag(rng, L, n, shape)
    root = L + n - 1
    middle = L + n // 2
    return {"graph": g, "queries": [root, middle, 0]}     # the root, an inner node, a leaf


def _topo_probe(fns, inp):
    T = fns[0]
    with Student():
        nodes = _build_dag(T, inp["graph"])
        index = {id(node): i for i, node in enumerate(nodes)}
        out = {}
        for q in inp["queries"]:
            order = nodes[q].topological_order()
            if order is None:
                raise CheckFailed("Tensor.topological_order returned None: return the list of "
                                  "tensors (inputs before outputs, self last)")
            try:
                order = list(order)
            except TypeError:
                raise CheckFailed("Tensor.topological_order must return a list of tensors; got "
                                  f"{type(order).__name__}") from None
            out[f"order{q}"] = np.array([index.get(id(node), -1) for node in order], dtype=np.int64)
    return out


def _topo_judge(inp, outp):
    g = inp["graph"]
    L, parents = len(g["leaves"]), g["parents"]

    def name(k):
        return f"leaf {k}" if k < L else f"node {k}"

    for q in inp["queries"]:
        order = [int(k) for k in np.asarray(outp[f"order{q}"]).ravel()]
        what = f"{name(q)}.topological_order()"
        if -1 in order:
            fail(f"{what} contains something that is not a tensor of the graph")
        dup = sorted({k for k in order if order.count(k) > 1})
        if dup:
            fail(f"{what} lists {name(dup[0])} {order.count(dup[0])} times: a tensor reached along "
                 "several paths (a diamond, or x * x) must appear once, or backward passes its "
                 "gradient on more than once. Hint: keep a set of visited tensors")
        need = _ancestors(parents, L, q)
        missing = sorted(need - set(order))
        if missing:
            fail(f"{what} misses {name(missing[0])}, which {name(q)} depends on: the order must "
                 "hold every tensor self depends on, leaves included, and self")
        extra = sorted(set(order) - need)
        if extra:
            fail(f"{what} holds {name(extra[0])}, which {name(q)} does not depend on: follow only "
                 "the _inputs of the tensors, starting from self")
        pos = {k: i for i, k in enumerate(order)}
        for k in order:
            if k >= L:
                for j in parents[k - L]:
                    if pos[j] > pos[k]:
                        fail(f"{what} puts {name(k)} (position {pos[k]}) before its input "
                             f"{name(j)} (position {pos[j]}): every tensor must come after all of "
                             "its inputs, so that reversed, the order visits a node only once "
                             "every node that uses it is done")
    sizes = ", ".join(str(len(outp[f"order{q}"])) for q in inp["queries"])
    return (f"every order lists each tensor once, inputs before outputs, exactly the tensors "
            f"self depends on ({sizes} tensors)")


_DAG_PROPERTIES = ({"shared nodes", "vector nodes"}, {"shared nodes", "any-shape nodes", "larger graphs"})
register("autodiff.topological_order", ("Tensor",), two_cases(_topo_inputs, *_DAG_PROPERTIES), _topo_probe,
         _topo_judge,
         doc="Tensor.topological_order on random graphs with shared nodes")


# ------------------------------------------------------------------ backward on hand-built graphs

def _backward_inputs(rng, hidden):
    L, n, shape = _dag_size(rng, hidden, 8)
    g = _random_dag(rng, L, n, shape)
    g2 = _random_dag(rng, L, max(3, n // 2), shape)
    g2["leaves"] = g["leaves"]                           # a second graph on the same leaves
    return {"graph": g, "graph2": g2, "dout": rng.standard_normal(shape),
            "dout2": rng.standard_normal(shape)}


def _leaf_grads(nodes, L, tag):
    return {f"{tag}.leaf{i}": grad_of(nodes[i], f"leaf {i}") for i in range(L)}


def _backward_probe(fns, inp):
    T = fns[0]
    g = inp["graph"]
    with Student():
        nodes = _build_dag(T, g)
        nodes[-1].backward(inp["dout"].copy())
        return _leaf_grads(nodes, len(g["leaves"]), "first")


def _judge_leaves(outp, tag, expected, what, hint):
    worst = 0.0
    for i, e in enumerate(expected):
        worst = max(worst, cmp_grad(f"leaf {i}'s gradient {what}", outp.get(f"{tag}.leaf{i}"), e,
                                     hint))
    return worst


_BACKWARD_HINT = ("visit the tensors in reversed topological order, so that a tensor's gradient "
                  "is complete before its _backward passes it on, and let accumulate add (not "
                  "overwrite) every contribution; seed the root's gradient with the grad argument")


def _backward_judge(inp, outp):
    g = inp["graph"]
    worst = _judge_leaves(outp, "first", _torch_dag_grads(g, inp["dout"]),
                          f"(a graph of {len(g['parents'])} nodes with shared inputs)", _BACKWARD_HINT)
    return f"every leaf's gradient matches PyTorch autograd (relative error {worst:.1e})"


register("autodiff.backward", ("Tensor",), two_cases(_backward_inputs, *_DAG_PROPERTIES), _backward_probe,
         _backward_judge,
         doc="Tensor.backward and accumulate on random graphs, against PyTorch autograd")


def _twice_probe(fns, inp):
    T = fns[0]
    g, g2 = inp["graph"], inp["graph2"]
    L = len(g["leaves"])
    out = {}
    with Student():
        nodes = _build_dag(T, g)
        nodes[-1].backward(inp["dout"].copy())
        out.update(_leaf_grads(nodes, L, "first"))
        nodes[-1].backward(inp["dout"].copy())
        out.update(_leaf_grads(nodes, L, "second"))
        nodes2 = _build_dag(T, g2, leaves=nodes[:L])     # a new graph on the same leaves
        nodes2[-1].backward(inp["dout2"].copy())
        out.update(_leaf_grads(nodes2, L, "other"))
    return out


def _twice_judge(inp, outp):
    first = _torch_dag_grads(inp["graph"], inp["dout"])
    _judge_leaves(outp, "first", first, "after the first backward()", _BACKWARD_HINT)
    reset = ("backward() must reset the gradients of the graph's tensors (to None or zero) "
             "before it accumulates, so that every call starts from scratch")
    _judge_leaves(outp, "second", first, "after calling backward() a second time on the same "
                  "output", reset)
    worst = _judge_leaves(outp, "other", _torch_dag_grads(inp["graph2"], inp["dout2"]),
                          "after backward() on a second graph built on the same leaves", reset)
    return ("a second backward() gives the same gradients, and a new graph on the same leaves "
            f"starts from zero (relative error {worst:.1e})")


register("autodiff.backward_twice", ("Tensor",), two_cases(_backward_inputs, *_DAG_PROPERTIES), _twice_probe,
         _twice_judge,
         doc="repeated backward calls give the same result")


# ------------------------------------------------------------------ a deep chain

def _chain_inputs(rng, hidden):
    n = int(rng.integers(4000, 8000)) if hidden else 3000
    return {"x": rng.standard_normal(2), "factors": 1.0 + 0.01 * rng.standard_normal(n),
            "dout": rng.standard_normal(2)}


def _chain_rule(prev, f):
    def _backward(dout):
        prev.accumulate(np.asarray(dout, dtype=np.float64) * f)
    return _backward


def _chain_probe(fns, inp):
    T = fns[0]
    with Student():
        x = T(inp["x"], requires_grad=True)
        node = x
        for f in inp["factors"]:
            nxt = T(np.asarray(node.data, dtype=np.float64) * f, _inputs=(node,), _op="scale")
            nxt._backward = _chain_rule(node, float(f))
            node = nxt
        node.backward(inp["dout"].copy())
        return {"dx": grad_of(x, "x")}


def _chain_judge(inp, outp):
    n = len(inp["factors"])
    expected = inp["dout"] * np.prod(inp["factors"])
    err = compare(f"x's gradient through a chain of {n} operations", outp["dx"], expected, tol=TOL,
                  oracle="the chain rule (the product of the local derivatives)",
                  hint="every node of the chain must be visited once, after the node that uses it")
    return f"a chain of {n} operations differentiates without recursion (relative error {err:.1e})"


register("autodiff.deep_chain", ("Tensor",),
         two_cases(_chain_inputs, {"thousands of nodes"}, {"thousands of nodes"}), _chain_probe, _chain_judge,
         doc="backward through thousands of nodes without RecursionError")
