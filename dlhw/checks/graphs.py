"""Checks of graph neural networks (assignment 12): the normalised adjacency, the graph
convolution, scatter aggregation (sum, mean, max), the notes' message-passing layer and the
graph readout.

Oracles, all in float64 and independent of dlhw's reference:

* the normalised adjacency: D^-1/2 (A + I) D^-1/2 in torch ops, a degree-0 node's row set to 0
  as torch_geometric's gcn_norm does (the tests of dlhw compare the reference with gcn_norm and
  GCNConv themselves; the student install has no torch_geometric);
* the graph convolution and the message-passing layer: their formulas in torch ops (index
  gathers, ``index_add`` for sums, ``scatter_reduce`` for mean and max) and torch's autograd;
* scatter and readout: ``index_add`` / ``scatter_reduce(include_self=False)`` and their
  autograd, except the gradient of max where rows tie: PyTorch spreads it evenly over the tied
  rows, the graded API routes it to the first maximum, so a loop over buckets and features
  (numpy's argmax: the first maximum) is the oracle there.

Tolerance: 1e-9 of the largest entry of each array (``compare`` is normwise). Each quantity is a
short chain of float64 sums and products; a correct implementation that sums in another order
stays below 1e-13.

Every check runs a fixed list of cases, visible and hidden alike (hidden ones draw other sizes
and values): nodes without incoming edges (empty buckets: zeros for every reduce), a graph of
one node, directed edges, ties for max, no edges at all.
"""
from __future__ import annotations

import numpy as np

from dlhw.checks.core import Case, Cases, call, compare, register
from dlhw.checks.helpers import deep_copy as _copy, ri as _ri, torch as _torch

TOL = 1e-9


def _random_adjacency(rng, V, p=0.4, isolated=False):
    upper = np.triu(rng.random((V, V)) < p, k=1)
    A = (upper | upper.T).astype(float)
    if isolated and V > 1:
        A[V - 1, :] = A[:, V - 1] = 0.0
    return A


def _declare(name, functions, cases, probe, oracle, keys, hints, oracle_name="PyTorch", doc=""):
    """Register ``name``: ``probe`` runs the student's functions, each of ``keys`` is compared
    with ``oracle(case)`` (normwise, TOL)."""
    fn = functions[-1]

    def judge(inp, out):
        expected = oracle(inp)
        worst = 0.0
        for key in keys:
            worst = max(worst, compare(f"{key} from {fn} [{inp['what']}]", out[key], expected[key],
                                       tol=TOL, hint=hints.get(key, ""), oracle=oracle_name))
        return (f"{', '.join(keys)} match{'es' if len(keys) == 1 else ''} {oracle_name} "
                f"(relative error {worst:.1e} <= {TOL:.0e})")
    register(name, tuple(functions), cases, probe, judge, doc=doc or f"{name}: {', '.join(keys)} against {oracle_name}")


# =========================================================================== normalised adjacency
def _adj_case(kind):
    def make(rng):
        V = {"path": 3, "one node": 1}.get(kind, _ri(rng, 5, 9))
        if kind == "path":
            A = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float)
        elif kind == "one node":
            A = np.zeros((1, 1))
        else:
            A = _random_adjacency(rng, V, isolated=kind.startswith("isolated"))
        self_loops = not kind.endswith("no self-loops")
        return {"what": f"A of shape {A.shape}, {kind}", "A": A, "self_loops": self_loops}
    return make


_ADJ_CASES = Cases([
    Case("path 0 - 1 - 2", {"self-loops"}, _adj_case("path")),
    Case("random graph", {"self-loops"}, _adj_case("random")),
    Case("isolated node", {"self-loops", "isolated node"}, _adj_case("isolated")),
    Case("random graph, no self-loops", {"no self-loops"}, _adj_case("random, no self-loops")),
    Case("isolated node, no self-loops", {"no self-loops", "isolated node", "degree 0"},
         _adj_case("isolated, no self-loops")),
    Case("one node", {"self-loops", "V = 1"}, _adj_case("one node")),
])


def _adj_oracle(case):
    torch = _torch()
    A = torch.tensor(case["A"])
    if case["self_loops"]:
        A = A + torch.eye(A.shape[0], dtype=A.dtype)
    d = A.sum(dim=1).pow(-0.5)
    d = torch.where(torch.isinf(d), torch.zeros_like(d), d)      # degree 0 -> 0 (gcn_norm)
    return {"A_hat": (d[:, None] * A * d[None, :]).numpy()}


def _adj_probe(fns, case):
    return {"A_hat": call(fns[0], "normalized_adjacency", _copy(case["A"]), case["self_loops"])}


_declare("normalized_adjacency", ("normalized_adjacency",), _ADJ_CASES, _adj_probe, _adj_oracle, ("A_hat",),
         {"A_hat": "A_hat = D^-1/2 (A + I) D^-1/2 with D the row sums of A + I (the identity added only when "
                   "self_loops is True); scale row i by d_i^-1/2 and column j by d_j^-1/2 (broadcasting, not a "
                   "matrix product with the degrees); a node of degree 0 gets 0, not inf or nan"},
         oracle_name="D^-1/2 (A + I) D^-1/2 in PyTorch")


# =========================================================================== graph convolution
def _gcn_case(kind):
    def make(rng):
        V = 1 if kind == "one node" else _ri(rng, 4, 9)
        D, M = (1, 1) if kind == "D = M = 1" else (_ri(rng, 2, 5), _ri(rng, 2, 5))
        A = _random_adjacency(rng, V, isolated=True)
        if V > 1:
            # whatever the draw: a path 0 - 1 - 2 with node 0 a leaf, so that the propagation
            # does something and the row-normalised A_hat is not symmetric (degrees 2 and >= 3)
            A[0, :] = A[:, 0] = 0.0
            A[0, 1] = A[1, 0] = A[1, 2] = A[2, 1] = 1.0
        A = A + np.eye(V)
        deg = A.sum(axis=1)
        if kind == "not symmetric":
            A_hat = A / deg[:, None]                   # the random-walk normalisation D^-1 (A + I)
        else:
            A_hat = A / np.sqrt(deg[:, None] * deg[None, :])
        return {"what": f"x ({V}, {D}), w ({D}, {M}), {kind}", "x": rng.standard_normal((V, D)),
                "A_hat": A_hat, "w": rng.standard_normal((D, M)), "b": rng.standard_normal(M),
                "dout": rng.standard_normal((V, M))}
    return make


_GCN_CASES = Cases([
    Case("random graph", {"symmetric A_hat"}, _gcn_case("random graph")),
    Case("row-normalised A_hat (not symmetric)", {"non-symmetric A_hat"}, _gcn_case("not symmetric")),
    Case("one node", {"symmetric A_hat", "V = 1"}, _gcn_case("one node")),
    Case("one feature in and out", {"symmetric A_hat", "D = M = 1"}, _gcn_case("D = M = 1")),
])


def _gcn_oracle(case):
    torch = _torch()
    x, w, b = (torch.tensor(case[k], requires_grad=True) for k in ("x", "w", "b"))
    out = torch.tensor(case["A_hat"]) @ x @ w + b
    out.backward(torch.tensor(case["dout"]))
    return {"out": out.detach().numpy(), "dx": x.grad.numpy(), "dw": w.grad.numpy(), "db": b.grad.numpy()}


def _gcn_forward_probe(fns, case):
    out, _ = call(fns[0], "gcn_forward", *(_copy(case[k]) for k in ("x", "A_hat", "w", "b")), returns=2)
    return {"out": out}


def _gcn_backward_probe(fns, case):
    _, cache = call(fns[0], "gcn_forward", *(_copy(case[k]) for k in ("x", "A_hat", "w", "b")), returns=2)
    dx, dw, db = call(fns[1], "gcn_backward", _copy(case["dout"]), cache, returns=3)
    return {"dx": dx, "dw": dw, "db": db}


GCN_HINTS = {
    "out": "out = A_hat @ x @ w + b: every node's features mixed with its neighbours' by A_hat, then one "
           "affine map shared by all nodes",
    "dx": "dx is A_hat^T dout w^T: the transpose of A_hat (it equals A_hat only when A_hat is symmetric)",
    "dw": "dw = (A_hat @ x).T @ dout: the propagated features, not x itself",
    "db": "db sums dout over the nodes (axis 0)",
}
_declare("gcn_forward", ("gcn_forward",), _GCN_CASES, _gcn_forward_probe, _gcn_oracle, ("out",), GCN_HINTS)
for _g in ("dx", "dw", "db"):
    _declare(f"gcn_backward.{_g}", ("gcn_forward", "gcn_backward"), _GCN_CASES, _gcn_backward_probe, _gcn_oracle,
             (_g,), GCN_HINTS, oracle_name="PyTorch autograd")


# =========================================================================== scatter
def _scatter_case(kind, reduce):
    def make(rng):
        V, F = _ri(rng, 4, 8), _ri(rng, 1, 4)
        E = 0 if kind == "no rows" else _ri(rng, 2 * V, 4 * V)
        index = rng.integers(0, V, size=E)
        if kind == "empty buckets":
            index[index == 1] = 0                    # bucket 1 (and V - 1) get no row
            index[index == V - 1] = 2
        if kind == "ties":
            values = rng.integers(-2, 3, size=(E, F)).astype(float)   # small integers: many ties
            index[:2] = 0
            values[:2] = 3.0             # whatever the draw: rows 0 and 1 tie at bucket 0's maximum
        else:
            values = rng.standard_normal((E, F))
        return {"what": f"values ({E}, {F}), {V} buckets, reduce={reduce!r}, {kind}", "values": values,
                "index": index, "num_nodes": V, "reduce": reduce, "dout": rng.standard_normal((V, F))}
    return make


def _scatter_cases(reduce):
    cases = [Case("random index", {"random index"}, _scatter_case("random index", reduce)),
             Case("empty buckets", {"empty buckets"}, _scatter_case("empty buckets", reduce)),
             Case("no rows (E = 0)", {"empty buckets", "E = 0"}, _scatter_case("no rows", reduce))]
    if reduce == "max":
        cases.append(Case("tied values", {"ties"}, _scatter_case("ties", reduce)))
    return Cases(cases)


def _torch_scatter(src, index, V, reduce):
    torch = _torch()
    idx = torch.as_tensor(index, dtype=torch.int64)
    if reduce == "sum":
        return torch.zeros(V, src.shape[1], dtype=src.dtype).index_add(0, idx, src)
    return torch.zeros(V, src.shape[1], dtype=src.dtype).scatter_reduce(
        0, idx[:, None].expand_as(src), src, {"mean": "mean", "max": "amax"}[reduce], include_self=False)


def _first_max_grad(values, index, V, dout):
    """The gradient of max: each (bucket, feature) to the first row at the maximum (a loop)."""
    d = np.zeros_like(values)
    for n in range(V):
        rows = np.flatnonzero(index == n)
        if rows.size:
            for f in range(values.shape[1]):
                d[rows[np.argmax(values[rows, f])], f] = dout[n, f]
    return d


def _scatter_oracle(case):
    torch = _torch()
    v = torch.tensor(case["values"], requires_grad=True)
    out = _torch_scatter(v, case["index"], case["num_nodes"], case["reduce"])
    out.backward(torch.tensor(case["dout"]))
    grad = v.grad.numpy()
    if case["reduce"] == "max":
        grad = _first_max_grad(case["values"], case["index"], case["num_nodes"], case["dout"])
    return {"out": out.detach().numpy(), "dvalues": grad}


def _scatter_args(case):
    return _copy(case["values"]), case["index"].copy(), case["num_nodes"], case["reduce"]


def _scatter_forward_probe(fns, case):
    out, _ = call(fns[0], "scatter_forward", *_scatter_args(case), returns=2)
    return {"out": out}


def _scatter_backward_probe(fns, case):
    _, cache = call(fns[0], "scatter_forward", *_scatter_args(case), returns=2)
    return {"dvalues": call(fns[1], "scatter_backward", _copy(case["dout"]), cache)}


SCATTER_HINTS = {
    "sum": {"out": "out[n] = sum of values[e] over the rows e with index[e] == n; without a Python loop: "
                   "np.add.at(out, index, values) (a plain out[index] += values adds a repeated index only once)",
            "dvalues": "each row gets the gradient of its bucket: dvalues = dout[index]"},
    "mean": {"out": "the sum (np.add.at(out, index, values): a plain out[index] += values adds a repeated index "
                    "only once) divided by the number of rows in the bucket (np.bincount(index, minlength=V)); "
                    "a bucket with no row stays 0 (divide by max(count, 1))",
             "dvalues": "dvalues = dout[index] / count[index][:, None]: each row had weight 1 / count of its bucket"},
    "max": {"out": "per bucket and feature the largest value of its rows; np.maximum.at on an array filled "
                   "with -inf, then the buckets with no row set to 0 (not -inf)",
            "dvalues": "only the FIRST row at the maximum (per bucket and feature) gets dout, every other row "
                       "0: with tied rows, giving it to each tied row counts it several times"},
}
for _r in ("sum", "mean", "max"):
    _declare(f"scatter_forward.{_r}", ("scatter_forward",), _scatter_cases(_r), _scatter_forward_probe,
             _scatter_oracle, ("out",), SCATTER_HINTS[_r], oracle_name="PyTorch's index_add / scatter_reduce")
    _declare(f"scatter_backward.{_r}", ("scatter_forward", "scatter_backward"), _scatter_cases(_r),
             _scatter_backward_probe, _scatter_oracle, ("dvalues",), SCATTER_HINTS[_r],
             oracle_name="PyTorch autograd" if _r != "max" else "the first-maximum rule (a loop)")


# =========================================================================== message passing
PARAMS = ("We", "be", "Wv", "bv")


def _mp_case(kind):
    def make(rng):
        reduce = kind.split()[0] if kind.split()[0] in ("sum", "mean", "max") else "sum"
        V = _ri(rng, 5, 8)
        Dv, De, He, Hv = _ri(rng, 2, 4), _ri(rng, 1, 3), _ri(rng, 3, 6), _ri(rng, 2, 5)
        if kind == "directed":
            upper = np.triu(rng.random((V, V)) < 0.5, k=1)
            edges = np.argwhere(upper)               # one direction only: i < j
        else:
            edges = np.argwhere(_random_adjacency(rng, V, isolated=True) > 0)
        edges = edges[rng.permutation(len(edges))]
        s_e, s_v = np.sqrt(2.0 / (2 * Dv + De)), np.sqrt(2.0 / (He + Dv))
        params = {"We": rng.standard_normal((2 * Dv + De, He)) * s_e, "be": 0.3 * rng.standard_normal(He),
                  "Wv": rng.standard_normal((He + Dv, Hv)) * s_v, "bv": 0.3 * rng.standard_normal(Hv)}
        E = len(edges)
        return {"what": f"V={V}, E={E}, Dv={Dv}, De={De}, He={He}, Hv={Hv}, reduce={reduce!r}, {kind}",
                "h": rng.standard_normal((V, Dv)), "e": rng.standard_normal((E, De)), "edges": edges,
                "params": params, "reduce": reduce, "dh_new": rng.standard_normal((V, Hv)),
                "de_new": rng.standard_normal((E, He))}
    return make


_MP_CASES = Cases([
    Case("sum aggregation", {"sum", "isolated node"}, _mp_case("sum")),
    Case("mean aggregation", {"mean", "isolated node"}, _mp_case("mean")),
    Case("max aggregation", {"max", "isolated node"}, _mp_case("max")),
    Case("directed edges", {"sum", "directed"}, _mp_case("directed")),
])


def _mp_oracle(case):
    torch = _torch()
    t = {k: torch.tensor(case[k], requires_grad=True) for k in ("h", "e")}
    p = {k: torch.tensor(case["params"][k], requires_grad=True) for k in PARAMS}
    src, dst = (torch.as_tensor(case["edges"][:, i], dtype=torch.int64) for i in (0, 1))
    z_e = torch.cat([t["h"][src], t["e"], t["h"][dst]], dim=1)
    e_new = torch.relu(z_e @ p["We"] + p["be"])
    m = _torch_scatter(e_new, case["edges"][:, 1], case["h"].shape[0], case["reduce"])
    h_new = torch.relu(torch.cat([m, t["h"]], dim=1) @ p["Wv"] + p["bv"])
    loss = (h_new * torch.tensor(case["dh_new"])).sum() + (e_new * torch.tensor(case["de_new"])).sum()
    loss.backward()
    res = {"h_new": h_new.detach().numpy(), "e_new": e_new.detach().numpy(), "dh": t["h"].grad.numpy(),
           "de": t["e"].grad.numpy()}
    res.update({f"d{k}": p[k].grad.numpy() for k in PARAMS})
    return res


def _mp_args(case):
    return _copy(case["h"]), _copy(case["e"]), case["edges"].copy(), _copy(case["params"])


def _mp_forward_probe(fns, case):
    h_new, e_new, _ = call(fns[0], "message_passing_forward", *_mp_args(case), case["reduce"], returns=3)
    return {"h_new": h_new, "e_new": e_new}


def _mp_backward_probe(fns, case):
    _, _, cache = call(fns[0], "message_passing_forward", *_mp_args(case), case["reduce"], returns=3)
    dh, de, dparams = call(fns[1], "message_passing_backward", _copy(case["dh_new"]), _copy(case["de_new"]),
                           cache, returns=3)
    out = {"dh": dh, "de": de}
    if not isinstance(dparams, dict):
        out.update({f"d{k}": None for k in PARAMS})
    else:
        out.update({f"d{k}": dparams.get(k) for k in PARAMS})
    return out


MP_HINTS = {
    "e_new": "for edge k = (i, j): e_new[k] = relu(concat([h[i], e[k], h[j]]) @ We + be), in that order, with "
             "i = edges[:, 0] (the sender) and j = edges[:, 1] (the receiver)",
    "h_new": "m = scatter_forward(e_new, edges[:, 1], V, reduce) (messages go to the receiver j), then "
             "h_new = relu(concat([m, h]) @ Wv + bv), m first",
    "dh": "h enters three times: as h_i and h_j in every edge's input (scatter-add those slices of dz_e to "
          "edges[:, 0] and edges[:, 1]) and in the node update's [m, h]; sum all three. The edges' gradient is de_new "
          "(from the caller) plus what the aggregation sends back",
    "de": "de = the middle De columns of dz_e = (de_new + scatter_backward(dm)) * (e_new > 0) @ We.T: "
          "e_new's gradient comes from the caller (de_new) AND from the aggregation",
    "dWe": "dWe = z_e.T @ da_e with z_e = [h_i, e, h_j] and da_e = (de_new + scatter_backward(dm)) * (e_new > 0)",
    "dbe": "dbe = da_e summed over the edges, da_e = (de_new + scatter_backward(dm)) * (e_new > 0)",
    "dWv": "dWv = z_v^T da_v with z_v = [m, h] and da_v the gradient through the node ReLU (dh_new where "
           "h_new > 0, else 0)",
    "dbv": "dbv = (dh_new * (h_new > 0)) summed over the nodes",
}
_declare("message_passing_forward.h_new", ("message_passing_forward",), _MP_CASES, _mp_forward_probe, _mp_oracle,
         ("h_new",), MP_HINTS, oracle_name="the layer in PyTorch")
_declare("message_passing_forward.e_new", ("message_passing_forward",), _MP_CASES, _mp_forward_probe, _mp_oracle,
         ("e_new",), MP_HINTS, oracle_name="the layer in PyTorch")
for _suffix, _keys in (("dh", ("dh",)), ("de", ("de",)), ("dparams", tuple(f"d{k}" for k in PARAMS))):
    _declare(f"message_passing_backward.{_suffix}", ("message_passing_forward", "message_passing_backward"),
             _MP_CASES, _mp_backward_probe, _mp_oracle, _keys, MP_HINTS, oracle_name="PyTorch autograd")


# =========================================================================== readout
def _readout_case(reduce, kind):
    def make(rng):
        G, F = _ri(rng, 2, 5), _ri(rng, 1, 4)
        sizes = rng.integers(1, 6, size=G)
        if kind == "empty graph":
            sizes[G - 1] = 0
        graph_index = np.repeat(np.arange(G), sizes)
        graph_index = graph_index[rng.permutation(len(graph_index))]   # nodes in any order
        V = len(graph_index)
        return {"what": f"h ({V}, {F}), {G} graphs, reduce={reduce!r}, {kind}", "h": rng.standard_normal((V, F)),
                "graph_index": graph_index, "num_graphs": G, "reduce": reduce, "dout": rng.standard_normal((G, F))}
    return make


_READOUT_CASES = Cases([Case(f"{r}, {k}", {r, k}, _readout_case(r, k))
                        for r in ("sum", "mean", "max") for k in ("graphs", "empty graph")])


def _readout_oracle(case):
    torch = _torch()
    h = torch.tensor(case["h"], requires_grad=True)
    out = _torch_scatter(h, case["graph_index"], case["num_graphs"], case["reduce"])
    out.backward(torch.tensor(case["dout"]))
    return {"out": out.detach().numpy(), "dh": h.grad.numpy()}


def _readout_args(case):
    return _copy(case["h"]), case["graph_index"].copy(), case["num_graphs"], case["reduce"]


def _readout_probe(fns, case):
    out, _ = call(fns[0], "graph_readout", *_readout_args(case), returns=2)
    return {"out": out}


def _readout_backward_probe(fns, case):
    _, cache = call(fns[0], "graph_readout", *_readout_args(case), returns=2)
    return {"dh": call(fns[1], "graph_readout_backward", _copy(case["dout"]), cache)}


READOUT_HINTS = {"out": "the readout is the scatter of the node rows into their graphs: "
                        "scatter_forward(h, graph_index, num_graphs, reduce)",
                 "dh": "the readout's backward is the scatter's: scatter_backward(dout, cache)"}
_declare("graph_readout", ("graph_readout",), _READOUT_CASES, _readout_probe, _readout_oracle, ("out",),
         READOUT_HINTS, oracle_name="PyTorch's index_add / scatter_reduce")
_declare("graph_readout_backward", ("graph_readout", "graph_readout_backward"), _READOUT_CASES,
         _readout_backward_probe, _readout_oracle, ("dh",), READOUT_HINTS, oracle_name="PyTorch autograd")
