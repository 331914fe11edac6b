"""Assignment 12: slips students make in graph networks (the normalised adjacency, the GCN layer,
scatter aggregation, message passing, readout), and correct variants written differently."""
from grader.mutants import Mutant

_GCN = ["test_gcn_forward"]
_MP_BWD = ["test_message_passing_backward_dh", "test_message_passing_backward_de",
           "test_message_passing_backward_dparams"]
_MP_ALL = ["test_message_passing_forward_h_new", "test_message_passing_forward_e_new"] + _MP_BWD
_READOUT = ["test_graph_readout", "test_graph_readout_backward"]

WRONG = [
    # ------------------------------------------------------------------ normalised adjacency
    Mutant("normalized_adjacency", "never adds the self-loops",
           replace=[("A_tilde = A + np.eye(A.shape[0]) if self_loops else A", "A_tilde = A")],
           fails=["test_normalized_adjacency"]),
    Mutant("normalized_adjacency", "row normalisation D^-1 (A + I) instead of the symmetric one",
           replace=[("A_hat = d_inv_sqrt[:, None] * A_tilde * d_inv_sqrt[None, :]",
                     "A_hat = (d_inv_sqrt ** 2)[:, None] * A_tilde")],
           fails=["test_normalized_adjacency"]),
    Mutant("normalized_adjacency", "divides by zero for a node of degree 0 (inf and nan)",
           replace=[("d_inv_sqrt = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)",
                     "with np.errstate(divide='ignore', invalid='ignore'):\n        d_inv_sqrt = 1.0 / np.sqrt(deg)")],
           fails=["test_normalized_adjacency"]),
    Mutant("normalized_adjacency", "scales the rows only (D^-1/2 (A + I))",
           replace=[("A_hat = d_inv_sqrt[:, None] * A_tilde * d_inv_sqrt[None, :]",
                     "A_hat = d_inv_sqrt[:, None] * A_tilde")],
           fails=["test_normalized_adjacency"]),
    # ------------------------------------------------------------------ GCN
    Mutant("gcn_forward", "forgets the propagation: out = x w + b",
           replace=[("ax = A_hat @ x ", "ax = x + 0 * A_hat[0, 0] ")],
           fails=_GCN + ["test_gcn_backward_dw"]),
    Mutant("gcn_forward", "caches x instead of A_hat x (dw from the unpropagated features)",
           replace=[("cache = (A_hat, w, ax)", "cache = (A_hat, w, x)")],
           fails=["test_gcn_backward_dw"], hint="the propagated features"),
    Mutant("gcn_backward", "dx without the transpose of A_hat",
           replace=[("dx = A_hat.T @ (dout @ w.T)", "dx = A_hat @ (dout @ w.T)")],
           fails=["test_gcn_backward_dx"], hint="the transpose of A_hat"),
    Mutant("gcn_backward", "db averaged over the nodes instead of summed",
           replace=[("db = dout.sum(axis=0)", "db = dout.mean(axis=0)")],
           fails=["test_gcn_backward_db"]),
    # ------------------------------------------------------------------ scatter forward
    Mutant("scatter_forward", "out[index] += values: a repeated index is added only once",
           replace=[("        out = np.bincount(flat, weights=values.ravel(), minlength=num_nodes * F)\n"
                     "        out = out.reshape(num_nodes, F).astype(np.float64, copy=False)   # E = 0: ints\n",
                     "        out[index] += values\n")],
           fails=["test_scatter_forward_sum", "test_scatter_forward_mean"], hint="np.add.at"),
    Mutant("scatter_forward", "mean divides by the number of all rows, not the bucket's",
           replace=[("out /= np.maximum(counts, 1)[:, None]", "out /= max(E, 1)")],
           fails=["test_scatter_forward_mean"]),
    Mutant("scatter_forward", "mean of an empty bucket divides by zero (nan)",
           replace=[("out /= np.maximum(counts, 1)[:, None]",
                     "with np.errstate(invalid='ignore'):\n                out /= counts[:, None]")],
           fails=["test_scatter_forward_mean"]),
    Mutant("scatter_forward", "max leaves -inf in the buckets that receive no row",
           replace=[("out = np.zeros((num_nodes, F))", "out = np.full((num_nodes, F), -np.inf if reduce == 'max' else 0.0)")],
           fails=["test_scatter_forward_max"]),
    Mutant("scatter_forward", "max keeps the LAST of tied rows for the gradient",
           replace=[("pos = np.where(is_max, np.arange(E)[:, None], E)\n"
                     "        argmax = order[np.minimum.reduceat(pos, starts, axis=0)]",
                     "pos = np.where(is_max, np.arange(E)[:, None], -1)\n"
                     "        argmax = order[np.maximum.reduceat(pos, starts, axis=0)]")],
           fails=["test_scatter_backward_max"], hint="FIRST row at the maximum"),
    Mutant("scatter_forward", "max's argmax in sorted positions, not the rows of the input",
           replace=[("argmax = order[np.minimum.reduceat(pos, starts, axis=0)]",
                     "argmax = np.minimum.reduceat(pos, starts, axis=0)")],
           fails=["test_scatter_backward_max"]),
    # ------------------------------------------------------------------ scatter backward
    Mutant("scatter_backward", "mean backward without the division by the bucket size",
           replace=[("return dout[index] / counts[index][:, None]", "return dout[index]")],
           fails=["test_scatter_backward_mean"]),
    Mutant("scatter_backward", "sum backward divides by the bucket size (the mean's gradient)",
           replace=[("    if reduce == \"sum\":\n        return dout[index]\n",
                     "    if reduce == \"sum\":\n        return dout[index] / counts[index][:, None]\n")],
           fails=["test_scatter_backward_sum"]),
    Mutant("scatter_backward", "max backward sends the gradient to every row of the bucket",
           replace=[("    F = dout.shape[1]\n", "    return dout[index]\n    F = dout.shape[1]\n")],
           fails=["test_scatter_backward_max"]),
    # ------------------------------------------------------------------ message passing forward
    Mutant("message_passing_forward", "edge input in the order [h_j, e, h_i]",
           replace=[("z_e = np.concatenate([h[src], e, h[dst]], axis=1)",
                     "z_e = np.concatenate([h[dst], e, h[src]], axis=1)")],
           fails=_MP_ALL),
    Mutant("message_passing_forward", "aggregates each edge at its sender i instead of its receiver j",
           replace=[("m, scatter_cache = scatter_forward(e_new, dst, h.shape[0], reduce)",
                     "m, scatter_cache = scatter_forward(e_new, src, h.shape[0], reduce)")],
           fails=["test_message_passing_forward_h_new"] + _MP_BWD),
    Mutant("message_passing_forward", "no ReLU on the edge network",
           replace=[("e_new = np.maximum(z_e @ We + be, 0.0)", "e_new = z_e @ We + be")],
           fails=_MP_ALL),
    Mutant("message_passing_forward", "node update on [h, m] instead of [m, h]",
           replace=[("z_v = np.concatenate([m, h], axis=1)", "z_v = np.concatenate([h, m], axis=1)")],
           fails=["test_message_passing_forward_h_new"] + _MP_BWD),
    # ------------------------------------------------------------------ message passing backward
    Mutant("message_passing_backward", "forgets the caller's gradient de_new of the new edge embeddings",
           replace=[("        de_total = de_total + de_new ", "        de_total = de_total + 0 * de_new ")],
           fails=_MP_BWD, hint="de_new"),
    Mutant("message_passing_backward", "forgets the gradient of h as the sender h_i",
           replace=[("    dh += scatter_forward(dz_e[:, :Dv], src, V, \"sum\")[0]\n", "")],
           fails=["test_message_passing_backward_dh"]),
    Mutant("message_passing_backward", "sends the receiver's slice back to the senders",
           replace=[("dh += scatter_forward(dz_e[:, Dv + De:], dst, V, \"sum\")[0]",
                     "dh += scatter_forward(dz_e[:, Dv + De:], src, V, \"sum\")[0]")],
           fails=["test_message_passing_backward_dh"]),
    Mutant("message_passing_backward", "no ReLU mask on the edge gradient",
           replace=[("da_e = de_total * (e_new > 0)", "da_e = de_total")],
           fails=_MP_BWD),
    Mutant("message_passing_backward", "dbv averaged over the nodes",
           replace=[("dWv, dbv = z_v.T @ da_v, da_v.sum(axis=0)", "dWv, dbv = z_v.T @ da_v, da_v.mean(axis=0)")],
           fails=["test_message_passing_backward_dparams"]),
    # ------------------------------------------------------------------ readout
    Mutant("graph_readout", "always sums, whatever reduce says",
           replace=[("scatter_forward(h, graph_index, num_graphs, reduce)",
                     "scatter_forward(h, graph_index, num_graphs, \"sum\")")],
           fails=_READOUT),
    Mutant("graph_readout_backward", "copies the gradient to every node (the sum's) for any reduce",
           replace=[("dh = scatter_backward(dout, cache)", "dh = dout[cache[1]]")],
           fails=["test_graph_readout_backward"]),
]

_SCATTER_AT = '''def scatter_forward(values, index, num_nodes, reduce):
    fn = "scatter_forward"
    values = as_array(fn, "values", values)
    sizes = require_shape(fn, "values", values, ("E", "F"))
    num_nodes = require_count(fn, "num_nodes", num_nodes)
    index = require_index(fn, "index", index, (sizes["E"],), num_nodes, "bucket (node) numbers")
    require_one_of(fn, "reduce", reduce, ("sum", "mean", "max"))
    E, F = values.shape
    counts = np.bincount(index, minlength=num_nodes)
    present = argmax = None
    if reduce == "max":
        out = np.full((num_nodes, F), -np.inf)
        np.maximum.at(out, index, values)
        out[counts == 0] = 0.0
        if E:
            # the first row at its bucket's maximum: the smallest row number among the hits
            hit = values == out[index]
            rows = np.broadcast_to(np.arange(E)[:, None], (E, F))
            cols = np.broadcast_to(np.arange(F)[None, :], (E, F))
            buckets = np.broadcast_to(index[:, None], (E, F))
            first = np.full((num_nodes, F), E)
            np.minimum.at(first, (buckets[hit], cols[hit]), rows[hit])
            present = np.flatnonzero(counts)
            argmax = first[present]
    else:
        out = np.zeros((num_nodes, F))
        np.add.at(out, index, values)
        if reduce == "mean":
            nonempty = counts > 0
            out[nonempty] /= counts[nonempty, None]
    return out, (reduce, index, counts, present, argmax)
'''

RIGHT = [
    Mutant("normalized_adjacency", "np.diag matrix products, the inf of degree 0 replaced afterwards",
           replace=[("d_inv_sqrt = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)",
                     "with np.errstate(divide='ignore'):\n        d_inv_sqrt = deg ** -0.5\n"
                     "    d_inv_sqrt[np.isinf(d_inv_sqrt)] = 0.0"),
                    ("A_hat = d_inv_sqrt[:, None] * A_tilde * d_inv_sqrt[None, :]",
                     "A_hat = np.diag(d_inv_sqrt) @ A_tilde @ np.diag(d_inv_sqrt)")]),
    Mutant("gcn_backward", "dx as (A_hat^T dout) w^T, db with np.sum",
           replace=[("dx = A_hat.T @ (dout @ w.T)", "dx = (A_hat.T @ dout) @ w.T"),
                    ("db = dout.sum(axis=0)", "db = np.sum(dout, axis=0)")]),
    Mutant("scatter_forward", "np.add.at and np.maximum.at instead of bincount and reduceat",
           code=_SCATTER_AT),
    Mutant("scatter_backward", "np.take for the gathers",
           replace=[("return dout[index] / counts[index][:, None]",
                     "return np.take(dout, index, axis=0) / np.take(counts, index)[:, None]"),
                    ("    if reduce == \"sum\":\n        return dout[index]\n",
                     "    if reduce == \"sum\":\n        return np.take(dout, index, axis=0)\n")]),
    Mutant("message_passing_forward", "np.hstack and an in-place ReLU",
           replace=[("z_e = np.concatenate([h[src], e, h[dst]], axis=1)", "z_e = np.hstack([h[src], e, h[dst]])"),
                    ("e_new = np.maximum(z_e @ We + be, 0.0)", "e_new = z_e @ We + be\n    e_new[e_new < 0] = 0.0")]),
    Mutant("message_passing_backward", "np.add.at for the gradients of h_i and h_j",
           replace=[("    dh += scatter_forward(dz_e[:, :Dv], src, V, \"sum\")[0]\n"
                     "    dh += scatter_forward(dz_e[:, Dv + De:], dst, V, \"sum\")[0]\n",
                     "    np.add.at(dh, src, dz_e[:, :Dv])\n    np.add.at(dh, dst, dz_e[:, Dv + De:])\n")]),
    Mutant("graph_readout", "calls scatter_forward with keyword arguments",
           replace=[("out, cache = scatter_forward(h, graph_index, num_graphs, reduce)",
                     "out, cache = scatter_forward(values=h, index=graph_index, num_nodes=num_graphs, reduce=reduce)")]),
]
