"""Graph neural networks: the normalised adjacency, a graph convolution (GCN), scatter
aggregation over an edge list, the notes' message-passing layer and a graph readout.

A graph with V nodes is stored two ways here:

* dense: the adjacency matrix A (V, V), A[i, j] = 1 when i and j are joined (symmetric, 0/1),
  used by the graph convolution;
* sparse: an edge list ``edges`` (E, 2) of directed pairs (i, j), "a message goes from i to j";
  an undirected graph lists every edge both ways. Message passing and the readout use it.

Graph convolution (Kipf and Welling, as torch_geometric's ``GCNConv``)::

    A_hat = D^-1/2 (A + I) D^-1/2      D = diag of the row sums of A + I
    out   = A_hat x w + b

Message passing in the notes' two steps, for every edge (i, j) and then every node j::

    e_new[(i, j)] = relu([h_i, e_(i,j), h_j] We + be)        node to edge
    m_j           = reduce over edges (i, j) of e_new[(i, j)] edge to node: sum, mean or max
    h_new[j]      = relu([m_j, h_j] Wv + bv)                  node update

Every step is an operation on whole arrays: gathering rows by an index (``h[edges[:, 0]]``)
and the scatter reduction below: one ``bincount`` over (target, feature) pairs for sum and
mean, and for max a sort of the edges by target, so that each node's edges are one run of rows
for numpy's ``reduceat`` (no Python loop over edges or nodes). Permuting the nodes (and renumbering the edges to match) permutes every
node-level output the same way (equivariance); a sum, mean or max readout over the nodes of a
graph does not change at all (invariance).
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import (as_array, require_count, require_index, require_keys, require_one_of,
                             require_shape, shape_str)

__all__ = ["normalized_adjacency", "gcn_forward", "gcn_backward", "scatter_forward",
           "scatter_backward", "message_passing_forward", "message_passing_backward",
           "graph_readout", "graph_readout_backward", "init_message_passing_params"]

# ------------------------------------------------------------------------ graph convolution

def normalized_adjacency(A, self_loops=True):
    """The symmetric normalised adjacency ``D^-1/2 (A + I) D^-1/2`` of Kipf and Welling.

    The self-loops keep a node's own features in its update; the normalisation by the degrees
    of both ends keeps the scale of the features from growing with the degree. As in
    torch_geometric's ``gcn_norm``, a node of degree 0 (possible only without self-loops) gets
    a zero row and column instead of a division by zero.

    Parameters
    ----------
    A : array of shape (V, V), a symmetric 0/1 adjacency matrix with a zero diagonal
    self_loops : bool, add the identity before normalising (default True)

    Returns
    -------
    A_hat : array of shape (V, V), symmetric
    """
    fn = "normalized_adjacency"
    A = as_array(fn, "A", A)
    require_shape(fn, "A", A, ("V", "V"))
    if not np.array_equal(A, A.T):
        raise ValueError(f"{fn}: A must be symmetric (an undirected graph), shape (V, V) = "
                         f"{shape_str(A.shape)} with A[i, j] == A[j, i]")
    if not np.isin(A, (0.0, 1.0)).all() or (A.size and np.diagonal(A).any()):
        raise ValueError(f"{fn}: A must hold only 0 and 1 with a zero diagonal "
                         "(self-loops are added by self_loops=True)")
    ### BEGIN SOLUTION
    A_tilde = A + np.eye(A.shape[0]) if self_loops else A
    deg = A_tilde.sum(axis=1)
    # deg 0 -> 0, not inf: an isolated node without self-loop keeps a zero row (as gcn_norm)
    d_inv_sqrt = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    A_hat = d_inv_sqrt[:, None] * A_tilde * d_inv_sqrt[None, :]
    ### END SOLUTION
    return A_hat


def gcn_forward(x, A_hat, w, b):
    """One graph convolution ``A_hat x w + b`` (no activation).

    Each node's new features are the normalised sum of its neighbours' (and its own) features,
    then one affine map shared by all nodes.

    Parameters
    ----------
    x : array of shape (V, D), node features
    A_hat : array of shape (V, V), e.g. ``normalized_adjacency(A)``
    w : array of shape (D, M)
    b : array of shape (M,)

    Returns
    -------
    out : array of shape (V, M)
    cache : what ``gcn_backward`` needs
    """
    fn = "gcn_forward"
    x, A_hat, w, b = (as_array(fn, n, a) for n, a in (("x", x), ("A_hat", A_hat), ("w", w), ("b", b)))
    sizes = require_shape(fn, "x", x, ("V", "D"))
    require_shape(fn, "A_hat", A_hat, ("V", "V"), sizes, why="(one row and column per node of x)")
    require_shape(fn, "w", w, ("D", "M"), sizes, why="(D = the features of x)")
    require_shape(fn, "b", b, ("M",), sizes)
    ### BEGIN SOLUTION
    ax = A_hat @ x                  # propagate first: (V, D) is usually narrower than (V, M)
    out = ax @ w + b
    cache = (A_hat, w, ax)
    ### END SOLUTION
    return out, cache


def gcn_backward(dout, cache):
    """Backward pass of ``gcn_forward``.

    Parameters
    ----------
    dout : array of shape (V, M), gradient of the loss with respect to out
    cache : the cache returned by ``gcn_forward``

    Returns
    -------
    dx : array of shape (V, D)
    dw : array of shape (D, M)
    db : array of shape (M,)
    """
    dout = as_array("gcn_backward", "dout", dout)
    require_shape("gcn_backward", "dout", dout, ("V", "M"))
    ### BEGIN SOLUTION
    A_hat, w, ax = cache
    dw = ax.T @ dout
    db = dout.sum(axis=0)
    dx = A_hat.T @ (dout @ w.T)     # A_hat is symmetric for an undirected graph, T for any
    ### END SOLUTION
    return dx, dw, db


# ------------------------------------------------------------------------ scatter reduction

def scatter_forward(values, index, num_nodes, reduce):
    """Reduce the rows of ``values`` into ``num_nodes`` buckets: row e goes to bucket index[e].

    ``out[n] = reduce(values[e] for e with index[e] == n)`` with reduce "sum", "mean" or "max"
    (per feature), as ``torch.Tensor.scatter_reduce`` with ``include_self=False`` on zeros.
    A bucket that receives no row (a node without incoming edge) is 0 for every reduce.

    Parameters
    ----------
    values : array of shape (E, F), one row per edge (or per node, for a readout)
    index : int array of shape (E,), entries in 0 .. num_nodes - 1, the target of each row
    num_nodes : int >= 0, the number of buckets V
    reduce : "sum", "mean" or "max"

    Returns
    -------
    out : array of shape (V, F)
    cache : what ``scatter_backward`` needs
    """
    fn = "scatter_forward"
    values = as_array(fn, "values", values)
    sizes = require_shape(fn, "values", values, ("E", "F"))
    num_nodes = require_count(fn, "num_nodes", num_nodes)
    index = require_index(fn, "index", index, (sizes["E"],), num_nodes, "bucket (node) numbers")
    require_one_of(fn, "reduce", reduce, ("sum", "mean", "max"))
    ### BEGIN SOLUTION
    E, F = values.shape
    counts = np.bincount(index, minlength=num_nodes)         # rows per bucket, (V,)
    out = np.zeros((num_nodes, F))
    present = argmax = None
    if reduce in ("sum", "mean"):
        # One bincount over the flattened (row, feature) pairs: entry (index[e], f) of out
        # collects values[e, f], in input order (as index_add does)
        flat = (index[:, None] * F + np.arange(F)).ravel()
        out = np.bincount(flat, weights=values.ravel(), minlength=num_nodes * F)
        out = out.reshape(num_nodes, F).astype(np.float64, copy=False)   # E = 0: ints
        if reduce == "mean":
            out /= np.maximum(counts, 1)[:, None]            # empty buckets: 0 / 1 = 0
    elif E:
        # Sort the rows by bucket (stable: rows of one bucket keep their order, so "first
        # maximum" means first in the input). Each non-empty bucket is then one run of rows,
        # reduced by reduceat; empty buckets are left out of starts (reduceat would return a
        # row for them, not the identity).
        order = np.argsort(index, kind="stable")
        sorted_values = values[order]
        present = np.flatnonzero(counts)                     # non-empty buckets, ascending
        starts = np.concatenate([[0], np.cumsum(counts[present])[:-1]])
        out[present] = np.maximum.reduceat(sorted_values, starts, axis=0)
        # The first row of each run at the run's maximum, per feature: positions of the rows
        # that equal the max, the others pushed to E, then the minimum over the run
        is_max = sorted_values == np.repeat(out[present], counts[present], axis=0)
        pos = np.where(is_max, np.arange(E)[:, None], E)
        argmax = order[np.minimum.reduceat(pos, starts, axis=0)]   # (len(present), F) rows
    cache = (reduce, index, counts, present, argmax)
    ### END SOLUTION
    return out, cache


def scatter_backward(dout, cache):
    """Backward pass of ``scatter_forward``.

    sum: every row gets its bucket's gradient; mean: the same divided by the bucket's size; max:
    for each feature only the first row reaching the maximum gets it (the others get 0).

    Parameters
    ----------
    dout : array of shape (V, F), gradient of the loss with respect to out
    cache : the cache returned by ``scatter_forward``

    Returns
    -------
    dvalues : array of shape (E, F)
    """
    dout = as_array("scatter_backward", "dout", dout)
    require_shape("scatter_backward", "dout", dout, ("V", "F"))
    ### BEGIN SOLUTION
    reduce, index, counts, present, argmax = cache
    if reduce == "sum":
        return dout[index]
    if reduce == "mean":
        return dout[index] / counts[index][:, None]       # every indexed bucket has a row
    F = dout.shape[1]
    dvalues = np.zeros((index.shape[0], F))
    if argmax is not None:
        # argmax rows are distinct within each feature column: plain assignment is exact
        dvalues[argmax, np.arange(F)[None, :]] = dout[present]
    ### END SOLUTION
    return dvalues


# ------------------------------------------------------------------------- message passing

def init_message_passing_params(node_dim, edge_dim, edge_hidden, node_hidden, rng=None):
    """Kaiming-scaled weights for ``message_passing_forward`` (a helper, not graded).

    Returns
    -------
    params : dict with We (2 node_dim + edge_dim, edge_hidden), be (edge_hidden,),
        Wv (edge_hidden + node_dim, node_hidden), bv (node_hidden,)
    """
    rng = np.random.default_rng(rng)
    fan_e, fan_v = 2 * node_dim + edge_dim, edge_hidden + node_dim
    return {"We": rng.standard_normal((fan_e, edge_hidden)) * np.sqrt(2.0 / max(fan_e, 1)),
            "be": np.zeros(edge_hidden),
            "Wv": rng.standard_normal((fan_v, node_hidden)) * np.sqrt(2.0 / max(fan_v, 1)),
            "bv": np.zeros(node_hidden)}


def message_passing_forward(h, e, edges, params, reduce="sum"):
    """One message-passing step in the notes' two steps (node to edge, edge to node).

    For every edge (i, j) of ``edges``::

        e_new[(i, j)] = relu([h_i, e_(i,j), h_j] We + be)

    then for every node j, over the edges that end at j (messages go from i to j)::

        m_j      = reduce(e_new[(i, j)])             sum, mean or max; 0 if j has no edge in
        h_new[j] = relu([m_j, h_j] Wv + bv)

    ``[a, b, c]`` is concatenation along the feature axis, in that order.

    Parameters
    ----------
    h : array of shape (V, Dv), node embeddings
    e : array of shape (E, De), edge embeddings, row k belongs to edges[k]
    edges : int array of shape (E, 2), directed (i, j) pairs in 0 .. V - 1
    params : dict with We (2 Dv + De, He), be (He,), Wv (He + Dv, Hv), bv (Hv,)
    reduce : "sum" (default), "mean" or "max", the order-invariant aggregation

    Returns
    -------
    h_new : array of shape (V, Hv)
    e_new : array of shape (E, He)
    cache : what ``message_passing_backward`` needs
    """
    fn = "message_passing_forward"
    h, e = as_array(fn, "h", h), as_array(fn, "e", e)
    sizes = require_shape(fn, "h", h, ("V", "Dv"))
    edges = require_index(fn, "edges", edges, ("E", 2), sizes["V"], "node numbers (h has V rows)", sizes)
    require_shape(fn, "e", e, ("E", "De"), sizes, why="(one row per edge)")
    require_keys(fn, "params", params, ("We", "be", "Wv", "bv"))
    We, be, Wv, bv = (as_array(fn, f"params['{k}']", params[k]) for k in ("We", "be", "Wv", "bv"))
    Dv, De = sizes["Dv"], sizes["De"]
    require_shape(fn, "params['We']", We, (2 * Dv + De, "He"), sizes, why="(2 Dv + De rows)")
    require_shape(fn, "params['be']", be, ("He",), sizes)
    require_shape(fn, "params['Wv']", Wv, (sizes["He"] + Dv, "Hv"), sizes, why="(He + Dv rows)")
    require_shape(fn, "params['bv']", bv, ("Hv",), sizes)
    require_one_of(fn, "reduce", reduce, ("sum", "mean", "max"))
    ### BEGIN SOLUTION
    src, dst = edges[:, 0], edges[:, 1]
    z_e = np.concatenate([h[src], e, h[dst]], axis=1)         # (E, 2 Dv + De)
    e_new = np.maximum(z_e @ We + be, 0.0)                    # (E, He)
    m, scatter_cache = scatter_forward(e_new, dst, h.shape[0], reduce)
    z_v = np.concatenate([m, h], axis=1)                      # (V, He + Dv)
    h_new = np.maximum(z_v @ Wv + bv, 0.0)                    # (V, Hv)
    cache = (edges, Dv, De, We, Wv, z_e, e_new, scatter_cache, z_v, h_new)
    ### END SOLUTION
    return h_new, e_new, cache


def message_passing_backward(dh_new, de_new, cache):
    """Backward pass of ``message_passing_forward``.

    Parameters
    ----------
    dh_new : array of shape (V, Hv), gradient of the loss with respect to h_new
    de_new : array of shape (E, He), gradient with respect to e_new (None when e_new is not used
        further: zeros)
    cache : the cache returned by ``message_passing_forward``

    Returns
    -------
    dh : array of shape (V, Dv)
    de : array of shape (E, De)
    dparams : dict with the gradients dWe, dbe, dWv, dbv under the keys We, be, Wv, bv
    """
    fn = "message_passing_backward"
    dh_new = as_array(fn, "dh_new", dh_new)
    require_shape(fn, "dh_new", dh_new, ("V", "Hv"))
    de_new = as_array(fn, "de_new", de_new, allow_none=True)
    if de_new is not None:
        require_shape(fn, "de_new", de_new, ("E", "He"))
    ### BEGIN SOLUTION
    edges, Dv, De, We, Wv, z_e, e_new, scatter_cache, z_v, h_new = cache
    src, dst = edges[:, 0], edges[:, 1]
    V, He = z_v.shape[0], e_new.shape[1]

    da_v = dh_new * (h_new > 0)                               # through the node ReLU
    dWv, dbv = z_v.T @ da_v, da_v.sum(axis=0)
    dz_v = da_v @ Wv.T
    dm, dh = dz_v[:, :He], dz_v[:, He:].copy()                # [m_j, h_j]

    de_total = scatter_backward(dm, scatter_cache)            # e_new feeds the aggregation ...
    if de_new is not None:
        de_total = de_total + de_new                          # ... and the caller's next step
    da_e = de_total * (e_new > 0)
    dWe, dbe = z_e.T @ da_e, da_e.sum(axis=0)
    dz_e = da_e @ We.T                                        # [h_i, e_(i,j), h_j]
    # A node appears as i in some edges and as j in others: sum its gradients over all of them
    dh += scatter_forward(dz_e[:, :Dv], src, V, "sum")[0]
    dh += scatter_forward(dz_e[:, Dv + De:], dst, V, "sum")[0]
    de = dz_e[:, Dv:Dv + De]
    ### END SOLUTION
    return dh, de, {"We": dWe, "be": dbe, "Wv": dWv, "bv": dbv}


# ----------------------------------------------------------------------------------- readout

def graph_readout(h, graph_index, num_graphs, reduce):
    """Graph-level features: reduce the node rows of each graph of a batch into one row.

    Several graphs are batched as one big graph whose node n belongs to graph graph_index[n];
    the readout is ``scatter_forward(h, graph_index, num_graphs, reduce)``, invariant to the
    order of the nodes.

    Parameters
    ----------
    h : array of shape (V, F), node embeddings of all graphs of the batch
    graph_index : int array of shape (V,), entries in 0 .. num_graphs - 1
    num_graphs : int >= 0, G
    reduce : "sum", "mean" or "max"

    Returns
    -------
    out : array of shape (G, F)
    cache : what ``graph_readout_backward`` needs
    """
    fn = "graph_readout"
    h = as_array(fn, "h", h)
    sizes = require_shape(fn, "h", h, ("V", "F"))
    num_graphs = require_count(fn, "num_graphs", num_graphs)
    graph_index = require_index(fn, "graph_index", graph_index, ("V",), num_graphs, "graph numbers", sizes)
    require_one_of(fn, "reduce", reduce, ("sum", "mean", "max"))
    ### BEGIN SOLUTION
    out, cache = scatter_forward(h, graph_index, num_graphs, reduce)
    ### END SOLUTION
    return out, cache


def graph_readout_backward(dout, cache):
    """Backward pass of ``graph_readout``: dout (G, F) -> dh (V, F)."""
    dout = as_array("graph_readout_backward", "dout", dout)
    require_shape("graph_readout_backward", "dout", dout, ("G", "F"))
    ### BEGIN SOLUTION
    dh = scatter_backward(dout, cache)
    ### END SOLUTION
    return dh
