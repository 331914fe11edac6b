"""Graphs for assignment 12: Zachary's karate club, generated graph families, batching.

Nothing is downloaded: the karate club is the copy networkx ships (networkx comes with torch);
the graph-classification graphs are generated from a seed in numpy.

A graph is an edge list ``edges`` (E, 2) of directed (i, j) pairs with both directions of
every undirected edge, and a node count. A batch of graphs is one big graph with disjoint
parts: the node numbers of graph g are shifted by the node counts of graphs 0 .. g - 1, and
``graph_index`` (V,) says which graph each node belongs to (what ``graph_readout`` needs).
"""
from __future__ import annotations

import numpy as np

__all__ = ["load_karate_club", "edges_from_adjacency", "adjacency_from_edges",
           "erdos_renyi_edges", "preferential_attachment_edges", "make_hub_graphs", "batch_graphs"]

CLUBS = ("Mr. Hi", "Officer")


def load_karate_club():
    """Zachary's karate club: 34 members, 78 friendships, and the club each member joined.

    Returns
    -------
    dict with
        A : array of shape (34, 34), symmetric 0/1 adjacency (friendship ties, unweighted)
        club : int array of shape (34,), 0 for "Mr. Hi" (the instructor, member 0) and 1 for
            "Officer" (the administrator, member 33)
        names : the two club names, in the order of their numbers
    """
    import networkx as nx
    G = nx.karate_club_graph()
    nodes = sorted(G.nodes())
    A = nx.to_numpy_array(G, nodelist=nodes, weight=None)   # 0/1: the ties, not their counts
    club = np.array([CLUBS.index(G.nodes[n]["club"]) for n in nodes])
    return {"A": A, "club": club, "names": CLUBS}


def edges_from_adjacency(A) -> np.ndarray:
    """The (E, 2) directed edge list of a 0/1 adjacency (V, V): every (i, j) with A[i, j] = 1."""
    return np.argwhere(np.asarray(A) > 0).astype(np.intp)


def adjacency_from_edges(edges, num_nodes: int) -> np.ndarray:
    """The (V, V) 0/1 adjacency of an (E, 2) edge list."""
    A = np.zeros((num_nodes, num_nodes))
    edges = np.asarray(edges, dtype=np.intp).reshape(-1, 2)
    A[edges[:, 0], edges[:, 1]] = 1.0
    return A


def _both_ways(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=np.intp).reshape(-1, 2)
    return np.concatenate([pairs, pairs[:, ::-1]])


def erdos_renyi_edges(num_nodes: int, num_edges: int, rng) -> np.ndarray:
    """``num_edges`` distinct undirected edges drawn uniformly (G(n, m)), both directions listed."""
    iu, ju = np.triu_indices(num_nodes, k=1)
    pick = rng.choice(iu.size, size=num_edges, replace=False)
    return _both_ways(np.stack([iu[pick], ju[pick]], axis=1))


def preferential_attachment_edges(num_nodes: int, k: int, rng) -> np.ndarray:
    """Barabasi-Albert growth: start from k + 1 fully joined nodes; every new node joins k
    distinct earlier nodes, each chosen with probability proportional to its degree (the rich
    get richer: a few hubs). k (k + 1) / 2 + (num_nodes - k - 1) k undirected edges."""
    iu, ju = np.triu_indices(k + 1, k=1)
    pairs = [np.stack([iu, ju], axis=1)]
    degree = np.zeros(num_nodes)
    degree[:k + 1] = k
    for new in range(k + 1, num_nodes):            # growth is sequential by definition
        targets = rng.choice(new, size=k, replace=False, p=degree[:new] / degree[:new].sum())
        pairs.append(np.stack([np.full(k, new), targets], axis=1))
        degree[targets] += 1
        degree[new] = k
    return _both_ways(np.concatenate(pairs))


def make_hub_graphs(num_graphs: int, min_nodes: int = 12, max_nodes: int = 20, k: int = 2, seed=None):
    """A graph-classification task: preferential-attachment graphs (label 1, with hubs) against
    uniformly random graphs (label 0) of the same node and edge counts.

    Both classes have the same sizes and the same mean degree, so only the shape of the degree
    distribution tells them apart (hubs and no node below degree k against a binomial spread).
    The labels alternate 0, 1, 0, 1, ...; node counts are drawn uniformly in [min_nodes, max_nodes].

    Returns
    -------
    graphs : list of (edges (E_g, 2), num_nodes) pairs
    labels : int array of shape (num_graphs,)
    """
    rng = np.random.default_rng(seed)
    graphs, labels = [], np.arange(num_graphs) % 2
    for label in labels:
        n = int(rng.integers(min_nodes, max_nodes + 1))
        ba = preferential_attachment_edges(n, k, rng)
        edges = ba if label == 1 else erdos_renyi_edges(n, len(ba) // 2, rng)
        graphs.append((edges, n))
    return graphs, labels


def batch_graphs(graphs):
    """Several graphs as one graph with disjoint parts.

    Parameters
    ----------
    graphs : list of (edges (E_g, 2), num_nodes) pairs

    Returns
    -------
    edges : int array of shape (sum E_g, 2), node numbers shifted per graph
    graph_index : int array of shape (V,), V = sum of num_nodes, the graph of every node
    num_nodes : int, V
    """
    sizes = np.array([n for _, n in graphs], dtype=np.intp)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    edges = np.concatenate([np.asarray(e, dtype=np.intp).reshape(-1, 2) + off
                            for (e, _), off in zip(graphs, offsets)]) if graphs else np.zeros((0, 2), np.intp)
    graph_index = np.repeat(np.arange(len(graphs)), sizes)
    return edges, graph_index, int(sizes.sum())
