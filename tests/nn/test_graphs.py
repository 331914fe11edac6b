"""dlhw.nn.graphs against independent oracles: PyTorch float64 (index_add / scatter_reduce and
autograd), centred differences, torch_geometric's GCNConv and gcn_norm, networkx's graph facts.

Gradients of the max aggregation are compared with a naive loop (first maximum) where rows tie,
since PyTorch spreads a tied maximum's gradient evenly over the ties; with distinct values
(random floats) PyTorch's amax is the oracle.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from dlhw.gradcheck import numerical_gradient_array, rel_error
from dlhw.nn.graphs import (gcn_backward, gcn_forward, graph_readout, graph_readout_backward,
                            init_message_passing_params, message_passing_backward,
                            message_passing_forward, normalized_adjacency, scatter_backward,
                            scatter_forward)

REDUCES = ["sum", "mean", "max"]


def err(a, b):
    """Normwise error max |a - b| / max |b| (floored at 1e-2): centred differences carry an
    absolute error of about 1e-9 here, which an elementwise relative error would blow up on
    entries near 0."""
    assert a.shape == b.shape
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-2)) if b.size else 0.0


def random_graph(rng, V, p=0.4):
    """A symmetric 0/1 adjacency without self-loops."""
    upper = np.triu(rng.random((V, V)) < p, k=1)
    return (upper | upper.T).astype(float)


def edge_list(A):
    """Both directions of every edge of A, (E, 2)."""
    return np.argwhere(A > 0)


def torch_scatter(values, index, V, reduce):
    """torch's scatter_reduce on zeros with include_self=False (empty buckets stay 0)."""
    src = values if isinstance(values, torch.Tensor) else torch.tensor(values)
    idx = torch.as_tensor(index, dtype=torch.int64)[:, None].expand_as(src)
    if reduce == "sum":
        return torch.zeros(V, src.shape[1], dtype=src.dtype).index_add(0, idx[:, 0], src)
    return torch.zeros(V, src.shape[1], dtype=src.dtype).scatter_reduce(
        0, idx, src, {"mean": "mean", "max": "amax"}[reduce], include_self=False)


# ------------------------------------------------------------------ normalised adjacency, GCN

@pytest.mark.parametrize("self_loops", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_normalized_adjacency_matches_gcn_norm(seed, self_loops):
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    from torch_geometric.utils import to_dense_adj
    rng = np.random.default_rng(seed)
    V = 7
    A = random_graph(rng, V)
    A[0, :] = A[:, 0] = 0                        # an isolated node: degree 0 without self-loops
    edge_index = torch.tensor(edge_list(A).T, dtype=torch.int64)
    ei, ew = gcn_norm(edge_index, None, num_nodes=V, add_self_loops=self_loops, dtype=torch.float64)
    # gcn_norm's weight on edge (i -> j) is the entry A_hat[j, i] of out = A_hat x (symmetric)
    expected = to_dense_adj(ei, edge_attr=ew, max_num_nodes=V)[0].numpy().T
    assert np.abs(normalized_adjacency(A, self_loops=self_loops) - expected).max() < 1e-14


def test_normalized_adjacency_by_hand():
    # path 0 - 1 - 2: degrees with self-loops 2, 3, 2
    A = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], float)
    c = 1 / np.sqrt(6)
    expected = np.array([[1 / 2, c, 0], [c, 1 / 3, c], [0, c, 1 / 2]])
    assert np.allclose(normalized_adjacency(A), expected, atol=1e-15)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((3, 4)), "A must have shape (V=3, V=3)"),
    (np.array([[0, 1], [0, 0]]), "symmetric"),
    (np.array([[1, 0], [0, 0]]), "zero diagonal"),
    (np.array([[0, 2], [2, 0]]), "only 0 and 1"),
])
def test_normalized_adjacency_errors(bad, words):
    with pytest.raises(ValueError, match=r"normalized_adjacency: .*" + words.replace("(", r"\(")
                       .replace(")", r"\)")):
        normalized_adjacency(bad)


@pytest.mark.parametrize("seed", range(4))
def test_gcn_matches_gcnconv(seed):
    from torch_geometric.nn import GCNConv
    rng = np.random.default_rng(seed)
    V, D, M = 9, 4, 3
    A = random_graph(rng, V)
    x = rng.standard_normal((V, D))
    conv = GCNConv(D, M).double()
    xt = torch.tensor(x, requires_grad=True)
    out_t = conv(xt, torch.tensor(edge_list(A).T, dtype=torch.int64))
    dout = rng.standard_normal((V, M))
    out_t.backward(torch.tensor(dout))
    # GCNConv's lin.weight is (M, D): out = A_hat x W^T + bias
    w = conv.lin.weight.detach().numpy().T.copy()
    b = conv.bias.detach().numpy().copy()
    out, cache = gcn_forward(x, normalized_adjacency(A), w, b)
    dx, dw, db = gcn_backward(dout, cache)
    assert rel_error(out, out_t.detach().numpy()) < 1e-12
    assert rel_error(dx, xt.grad.numpy()) < 1e-12
    assert rel_error(dw, conv.lin.weight.grad.numpy().T) < 1e-12
    assert rel_error(db, conv.bias.grad.numpy()) < 1e-12


def test_gcn_centred_differences():
    rng = np.random.default_rng(5)
    V, D, M = 6, 3, 2
    A_hat = normalized_adjacency(random_graph(rng, V))
    x, w, b = rng.standard_normal((V, D)), rng.standard_normal((D, M)), rng.standard_normal(M)
    dout = rng.standard_normal((V, M))
    dx, dw, db = gcn_backward(dout, gcn_forward(x, A_hat, w, b)[1])
    f = lambda: gcn_forward(x, A_hat, w, b)[0]  # noqa: E731 (reads x, w, b as they are perturbed)
    assert rel_error(dx, numerical_gradient_array(lambda _: f(), x, dout)) < 1e-8
    assert rel_error(dw, numerical_gradient_array(lambda _: f(), w, dout)) < 1e-8
    assert rel_error(db, numerical_gradient_array(lambda _: f(), b, dout)) < 1e-8


def test_gcn_errors():
    x, A_hat, w, b = np.zeros((4, 3)), np.eye(4), np.zeros((3, 2)), np.zeros(2)
    with pytest.raises(ValueError, match=r"gcn_forward: A_hat must have shape \(V=4, V=4\)"):
        gcn_forward(x, np.eye(5), w, b)
    with pytest.raises(ValueError, match=r"gcn_forward: w must have shape \(D=3, M\)"):
        gcn_forward(x, A_hat, np.zeros((2, 2)), b)
    with pytest.raises(ValueError, match=r"gcn_forward: b must have shape \(M=2,\)"):
        gcn_forward(x, A_hat, w, np.zeros(3))


# ------------------------------------------------------------------------------ scatter

@settings(max_examples=40, deadline=None)
@given(E=st.integers(0, 30), V=st.integers(1, 8), F=st.integers(1, 4),
       reduce=st.sampled_from(REDUCES), seed=st.integers(0, 2**31))
def test_scatter_matches_torch(E, V, F, reduce, seed):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((E, F))                   # distinct: no ties for max
    index = rng.integers(0, V, size=E)
    out, cache = scatter_forward(values, index, V, reduce)
    vt = torch.tensor(values, requires_grad=True)
    out_t = torch_scatter(vt, index, V, reduce)
    dout = rng.standard_normal((V, F))
    out_t.backward(torch.tensor(dout))
    assert out.shape == (V, F)
    assert np.abs(out - out_t.detach().numpy()).max(initial=0) < 1e-13
    assert np.abs(scatter_backward(dout, cache) - vt.grad.numpy()).max(initial=0) < 1e-13


def naive_scatter_max_backward(values, index, V, dout):
    """A loop over buckets and features: the first row (in input order) at the maximum."""
    d = np.zeros_like(values)
    for n in range(V):
        rows = np.flatnonzero(index == n)
        for f in range(values.shape[1]):
            if rows.size:
                d[rows[np.argmax(values[rows, f])], f] = dout[n, f]   # argmax: first maximum
    return d


@pytest.mark.parametrize("seed", range(5))
def test_scatter_max_ties_route_to_first_maximum(seed):
    rng = np.random.default_rng(seed)
    V, E, F = 5, 40, 3
    values = rng.integers(-2, 3, size=(E, F)).astype(float)     # many ties
    index = rng.integers(0, V, size=E)
    out, cache = scatter_forward(values, index, V, "max")
    dout = rng.standard_normal((V, F))
    assert np.array_equal(out, torch_scatter(values, index, V, "max").numpy())
    assert np.array_equal(scatter_backward(dout, cache), naive_scatter_max_backward(values, index, V, dout))


@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_centred_differences_and_empty_buckets(reduce):
    rng = np.random.default_rng(1)
    values = rng.standard_normal((12, 3))
    index = np.array([0, 0, 2, 2, 2, 3, 0, 5, 5, 3, 2, 0])      # buckets 1 and 4 empty
    out, cache = scatter_forward(values, index, 6, reduce)
    assert not out[[1, 4]].any()
    dout = rng.standard_normal(out.shape)
    num = numerical_gradient_array(lambda v: scatter_forward(v, index, 6, reduce)[0], values, dout)
    assert rel_error(scatter_backward(dout, cache), num) < 1e-8


def test_scatter_errors():
    with pytest.raises(ValueError, match=r"scatter_forward: values must have shape \(E, F\)"):
        scatter_forward(np.zeros(3), np.zeros(3, int), 2, "sum")
    with pytest.raises(ValueError, match=r"scatter_forward: index must have shape \(3,\)"):
        scatter_forward(np.zeros((3, 1)), np.zeros(4, int), 2, "sum")
    with pytest.raises(ValueError, match=r"scatter_forward: index must hold bucket .* in 0 \.\. 1"):
        scatter_forward(np.zeros((3, 1)), np.array([0, 1, 2]), 2, "sum")
    with pytest.raises(ValueError, match=r"scatter_forward: index must be an integer array"):
        scatter_forward(np.zeros((3, 1)), np.zeros(3), 2, "sum")
    with pytest.raises(ValueError, match=r"scatter_forward: reduce must be one of"):
        scatter_forward(np.zeros((3, 1)), np.zeros(3, int), 2, "min")


# ---------------------------------------------------------------------- message passing

def torch_message_passing(h, e, edges, params, reduce, dh_new, de_new):
    """The notes' layer in torch float64 with autograd (index_add / scatter_reduce)."""
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in
          {"h": h, "e": e, **params}.items()}
    src, dst = torch.tensor(edges[:, 0]), torch.tensor(edges[:, 1])
    z_e = torch.cat([ts["h"][src], ts["e"], ts["h"][dst]], dim=1)
    e_new = torch.relu(z_e @ ts["We"] + ts["be"])
    m = torch_scatter(e_new, edges[:, 1], h.shape[0], reduce)
    h_new = torch.relu(torch.cat([m, ts["h"]], dim=1) @ ts["Wv"] + ts["bv"])
    (h_new * torch.tensor(dh_new)).sum().add((e_new * torch.tensor(de_new)).sum()).backward()
    return h_new.detach().numpy(), e_new.detach().numpy(), {k: t.grad.numpy() for k, t in ts.items()}


def mp_setup(seed, V=8, Dv=3, De=2, He=5, Hv=4):
    rng = np.random.default_rng(seed)
    A = random_graph(rng, V)
    A[V - 1, :] = A[:, V - 1] = 0                  # an isolated node: no incoming edge
    edges = edge_list(A)
    h, e = rng.standard_normal((V, Dv)), rng.standard_normal((len(edges), De))
    params = init_message_passing_params(Dv, De, He, Hv, rng)
    params["be"] = 0.1 * rng.standard_normal(He)
    params["bv"] = 0.1 * rng.standard_normal(Hv)
    return rng, h, e, edges, params


@pytest.mark.parametrize("reduce", REDUCES)
@pytest.mark.parametrize("seed", range(3))
def test_message_passing_matches_torch(seed, reduce):
    rng, h, e, edges, params = mp_setup(seed)
    h_new, e_new, cache = message_passing_forward(h, e, edges, params, reduce)
    dh_new, de_new = rng.standard_normal(h_new.shape), rng.standard_normal(e_new.shape)
    dh, de, dparams = message_passing_backward(dh_new, de_new, cache)
    th, te, tg = torch_message_passing(h, e, edges, params, reduce, dh_new, de_new)
    assert rel_error(h_new, th) < 1e-12 and rel_error(e_new, te) < 1e-12
    assert rel_error(dh, tg["h"]) < 1e-10 and rel_error(de, tg["e"]) < 1e-10
    for k in ("We", "be", "Wv", "bv"):
        assert rel_error(dparams[k], tg[k]) < 1e-10, k


@pytest.mark.parametrize("reduce", REDUCES)
def test_message_passing_centred_differences(reduce):
    rng, h, e, edges, params = mp_setup(7, V=6)
    h_new, e_new, cache = message_passing_forward(h, e, edges, params, reduce)
    dh_new = rng.standard_normal(h_new.shape)
    dh, de, dparams = message_passing_backward(dh_new, None, cache)   # None: e_new unused
    f = lambda _: message_passing_forward(h, e, edges, params, reduce)[0]  # noqa: E731
    assert err(dh, numerical_gradient_array(f, h, dh_new)) < 1e-8
    assert err(de, numerical_gradient_array(f, e, dh_new)) < 1e-8
    for k in ("We", "be", "Wv", "bv"):
        assert err(dparams[k], numerical_gradient_array(f, params[k], dh_new)) < 1e-8, k


@pytest.mark.parametrize("reduce", REDUCES)
def test_permutation_equivariance_and_readout_invariance(reduce):
    rng, h, e, edges, params = mp_setup(3)
    V = h.shape[0]
    perm = rng.permutation(V)                      # new node k is old node perm[k]
    inv = np.argsort(perm)
    h_new, e_new, _ = message_passing_forward(h, e, edges, params, reduce)
    edge_order = rng.permutation(len(edges))       # the edge list's order is arbitrary too
    hp, ep, _ = message_passing_forward(h[perm], e[edge_order], inv[edges[edge_order]], params, reduce)
    assert np.allclose(hp, h_new[perm], atol=1e-12)
    assert np.allclose(ep, e_new[edge_order], atol=1e-12)
    r = graph_readout(h_new, np.zeros(V, int), 1, reduce)[0]
    rp = graph_readout(hp, np.zeros(V, int), 1, reduce)[0]
    assert np.allclose(r, rp, atol=1e-12)


def test_message_passing_errors():
    _, h, e, edges, params = mp_setup(0)
    with pytest.raises(ValueError, match=r"message_passing_forward: e must have shape \(E=\d+, De\)"):
        message_passing_forward(h, e[:-1], edges, params)
    with pytest.raises(ValueError, match=r"message_passing_forward: edges must hold node numbers"):
        message_passing_forward(h, e, edges + 100, params)
    with pytest.raises(ValueError, match=r"message_passing_forward: params is missing the key\(s\) \['bv'\]"):
        message_passing_forward(h, e, edges, {k: v for k, v in params.items() if k != "bv"})
    with pytest.raises(ValueError, match=r"message_passing_forward: params\['We'\] must have shape \(8, He\)"):
        message_passing_forward(h, e, edges, {**params, "We": np.zeros((7, 5))})


# ----------------------------------------------------------------------------- readout

@pytest.mark.parametrize("reduce", REDUCES)
def test_graph_readout_matches_torch(reduce):
    rng = np.random.default_rng(2)
    h = rng.standard_normal((11, 3))
    graph_index = np.array([0, 0, 0, 2, 2, 2, 2, 3, 3, 0, 2])   # graph 1 has no node
    out, cache = graph_readout(h, graph_index, 4, reduce)
    ht = torch.tensor(h, requires_grad=True)
    out_t = torch_scatter(ht, graph_index, 4, reduce)
    dout = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(dout))
    assert np.abs(out - out_t.detach().numpy()).max() < 1e-13
    assert np.abs(graph_readout_backward(dout, cache) - ht.grad.numpy()).max() < 1e-13


def test_graph_readout_errors():
    with pytest.raises(ValueError, match=r"graph_readout: graph_index must have shape \(V=3,\)"):
        graph_readout(np.zeros((3, 2)), np.zeros(2, int), 1, "sum")
    with pytest.raises(ValueError, match=r"graph_readout: num_graphs must be an int >= 0"):
        graph_readout(np.zeros((3, 2)), np.zeros(3, int), -1, "sum")


# ------------------------------------------------------------------------- networkx facts

def test_degrees_match_networkx():
    nx = pytest.importorskip("networkx")
    G = nx.gnp_random_graph(12, 0.3, seed=4)
    A = nx.to_numpy_array(G, nodelist=range(12))
    deg = np.array([d for _, d in sorted(G.degree())])
    # the diagonal of D^-1/2 (A + I) D^-1/2 is 1 / (deg + 1)
    assert np.allclose(np.diagonal(normalized_adjacency(A)), 1 / (deg + 1))
    ones = np.ones((len(edge_list(A)), 1))
    assert np.array_equal(scatter_forward(ones, edge_list(A)[:, 1], 12, "sum")[0][:, 0], deg)
