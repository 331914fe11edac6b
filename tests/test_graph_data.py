"""dlhw.graph_data: the karate club against networkx's facts, the generated graph families and
the batching of graphs into one."""
from __future__ import annotations

import networkx as nx
import numpy as np

from dlhw.graph_data import (adjacency_from_edges, batch_graphs, edges_from_adjacency,
                             load_karate_club, make_hub_graphs)


def test_karate_club():
    data = load_karate_club()
    G = nx.karate_club_graph()
    A, club = data["A"], data["club"]
    assert A.shape == (34, 34) and np.array_equal(A, A.T) and set(np.unique(A)) == {0.0, 1.0}
    assert A.sum() == 2 * 78
    assert np.array_equal(A.sum(axis=1), [G.degree(n) for n in range(34)])
    # the instructor (0) and the administrator (33) lead the two clubs; 17 members each
    assert club[0] == 0 and club[33] == 1 and np.bincount(club).tolist() == [17, 17]
    assert all(data["names"][club[n]] == G.nodes[n]["club"] for n in range(34))


def test_hub_graphs_have_equal_sizes_and_differ_in_degrees():
    graphs, labels = make_hub_graphs(200, seed=0)
    assert labels.tolist() == [0, 1] * 100
    for (edges, n), label in zip(graphs, labels):
        G = nx.Graph()
        G.add_nodes_from(range(n))
        G.add_edges_from(edges.tolist())
        assert G.number_of_edges() * 2 == len(edges)          # both directions, no duplicate
        assert nx.number_of_selfloops(G) == 0
        assert G.number_of_edges() == 1 + (n - 3) * 2 + 2     # k = 2: 3 + 2 (n - 3) edges
        if label == 1:
            assert nx.is_connected(G) and min(d for _, d in G.degree()) >= 2
    max_deg = [np.bincount(e[:, 0], minlength=n).max() for e, n in graphs]
    assert np.mean(max_deg[1::2]) > np.mean(max_deg[0::2]) + 1   # hubs


def test_batch_graphs():
    g1 = (np.array([[0, 1], [1, 0]]), 3)
    g2 = (np.array([[0, 1], [1, 0], [1, 2], [2, 1]]), 3)
    edges, graph_index, V = batch_graphs([g1, g2])
    assert V == 6 and graph_index.tolist() == [0, 0, 0, 1, 1, 1]
    assert edges.tolist() == [[0, 1], [1, 0], [3, 4], [4, 3], [4, 5], [5, 4]]
    A = adjacency_from_edges(edges, V)
    assert np.array_equal(edges_from_adjacency(A), np.array(sorted(edges.tolist())))
