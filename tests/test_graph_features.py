"""Graph features: hand-counted paths on small cells, and the dynamic programme against an
independent enumeration of every path."""
import random

import pytest

from xigsnr_naslib import get_card
from xigsnr_naslib.analysis.graph_features import (CellGraph, darts_graphs, feature_names, graph_feature_table,
                                          graph_features, nb101_graph, operation_sets, path_statistics)
from xigsnr_naslib.benchmarks.nb201.space import arch_to_str

C3, C1, SKIP, POOL, NONE = "nor_conv_3x3", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "none"


def nb201(*ops):
    """Ops in string order: 1<-0; 2<-0, 2<-1; 3<-0, 3<-1, 3<-2."""
    return arch_to_str(ops)


def test_nb201_all_conv_cell_has_the_four_paths_of_the_complete_dag():
    # 0->3, 0->1->3, 0->2->3, 0->1->2->3: lengths 1, 2, 2, 3
    f = graph_features("nb201", nb201(*[C3] * 6))
    assert (f[f"paths:{C3}"], f[f"min_len:{C3}"], f[f"max_len:{C3}"]) == (4, 1, 3)
    assert f[f"paths:{SKIP}"] == 0 and f[f"min_len:{SKIP}"] == 0
    assert (f["depth"], f["width"], f["input_degree"], f["edges"], f["vertices"]) == (3, 3, 3, 6, 4)
    assert f[f"count:{C3}"] == 6 and f[f"count:{NONE}"] == 0


def test_nb201_paths_are_split_by_operation_set():
    # skip on 0->3 only: the conv-only paths are the three others (lengths 2, 2, 3)
    f = graph_features("nb201", nb201(C3, C3, C3, SKIP, C3, C3))
    assert (f[f"paths:{SKIP}"], f[f"min_len:{SKIP}"], f[f"max_len:{SKIP}"]) == (1, 1, 1)
    assert (f[f"paths:{C3}"], f[f"min_len:{C3}"], f[f"max_len:{C3}"]) == (3, 2, 3)
    assert f[f"paths:{SKIP}+{C3}"] == 4
    assert f[f"paths:{C1}"] == 0 and f[f"count:{SKIP}"] == 1


def test_nb201_none_edges_disconnect():
    # 1<-0 conv, every other edge none except 3<-2: node 2 is unreachable, so no path at all
    f = graph_features("nb201", nb201(C3, NONE, NONE, NONE, NONE, C3))
    assert f[f"paths:{C3}"] == 0 and f["depth"] == 0
    assert f["edges"] == 0 and f["vertices"] == 0 and f["width"] == 0
    assert f[f"count:{NONE}"] == 4 and f[f"count:{C3}"] == 2


def test_nb101_chain_and_direct_edge():
    chain = graph_features("nb101", "0100/0010/0001/0000;input,conv3x3-bn-relu,maxpool3x3,output")
    # input -> conv -> pool -> output: one path of 3 edges; conv alone cannot pass the pool
    assert (chain["paths:conv3x3-bn-relu+maxpool3x3"], chain["max_len:conv3x3-bn-relu+maxpool3x3"]) == (1, 3)
    assert chain["paths:conv3x3-bn-relu"] == 0 and chain["depth"] == 3 and chain["width"] == 1
    direct = graph_features("nb101", "011/001/000;input,conv3x3-bn-relu,output")
    # the input -> output edge (a projection, no searched operation) belongs to every set
    assert (direct["paths:maxpool3x3"], direct["min_len:maxpool3x3"], direct["max_len:maxpool3x3"]) == (1, 1, 1)
    assert (direct["paths:conv3x3-bn-relu"], direct["min_len:conv3x3-bn-relu"],
            direct["max_len:conv3x3-bn-relu"]) == (2, 1, 2)
    assert direct["width"] == 2 and direct["count:conv3x3-bn-relu"] == 1 and direct["count:maxpool3x3"] == 0


def test_nb101_features_are_those_of_the_pruned_cell():
    # vertex 2 (a pool) feeds nothing: pruned, so it is neither counted nor on a path
    f = graph_features("nb101", "0101/0001/0000/0000;input,conv3x3-bn-relu,maxpool3x3,output")
    assert f["count:maxpool3x3"] == 0 and f["count:conv3x3-bn-relu"] == 1 and f["vertices"] == 3


def darts_genotype():
    from xigsnr_naslib.benchmarks.nds.space import Genotype

    normal = (("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 2), ("max_pool_3x3", 0),
              ("skip_connect", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 4), ("dil_conv_3x3", 2))
    return Genotype(normal, (2, 3, 4, 5), normal, (2, 3, 4, 5))


def test_darts_cell_paths_counted_by_hand():
    # paths into node v: n2 = 1 + 1 = 2, n3 = n2 + n0 = 3, n4 = n3 + n1 = 4, n5 = n4 + n2 = 6;
    # the output concatenates 2..5: 15 paths, longest 0-2-3-4-5-out (5 edges), shortest 2 edges
    f = graph_features("darts", darts_genotype())
    g = darts_graphs(darts_genotype())["normal"]
    assert path_statistics(g) == (15, 2, 5) and f["normal.depth"] == 5
    # sep_conv_3x3 alone: n2 = 1 (from 0), n3 = 1 (from 2), n4 = 1 (from 1; 4<-3 is a skip), n5 = 1
    # (from 4; 5<-2 is dilated): 4 paths; with max_pool_3x3 too, n3 = 2 (also from 0): 5 paths
    assert f["normal.paths:sep_conv_3x3"] == 4 and f["normal.paths:max_pool_3x3+sep_conv_3x3"] == 5
    assert f["normal.count:sep_conv_3x3"] == 4 and f["reduce.count:skip_connect"] == 2
    # edges leaving the inputs: 2<-0, 2<-1, 3<-0, 4<-1
    assert (f["normal.width"], f["normal.input_degree"]) == (4, 4)


def all_paths(graph: CellGraph, allowed) -> list[int]:
    """Every input-to-output path's length, by depth-first enumeration (independent of the DP)."""
    out = []

    def walk(v, length):
        if v == graph.output:
            out.append(length)
        for s, t, op in graph.edges:
            if s == v and (op is None or allowed(op)):
                walk(t, length + 1)

    for v in graph.inputs:
        walk(v, 0)
    return out


@pytest.mark.parametrize("space", ["nb101", "darts"])
def test_dynamic_programme_equals_enumeration(space):
    s = get_card(space).create_space()
    rng = random.Random(7)
    for _ in range(40):
        arch = s.sample(rng)
        graphs = [nb101_graph(arch)] if space == "nb101" else list(darts_graphs(arch).values())
        for g in graphs:
            ops = sorted({op for _, _, op in g.edges if op is not None})
            for allowed in [set(ops), set(ops[:1]), set(ops[1:3])]:
                lengths = all_paths(g, allowed.__contains__)
                expected = (len(lengths), min(lengths), max(lengths)) if lengths else (0, 0, 0)
                assert path_statistics(g, allowed.__contains__) == expected


def test_operation_sets_and_names():
    assert len(operation_sets(["a", "b", "c", "d"])) == 15
    assert len(operation_sets(list("abcdefg"))) == 7 + 21 + 1
    assert len(feature_names("nb201")) == 5 + 15 * 3 + 5
    assert len(feature_names("nb101")) == 3 + 7 * 3 + 5
    assert len(feature_names("darts")) == 2 * (7 + 29 * 3 + 5)
    table = graph_feature_table("nb201", [nb201(*[C3] * 6), nb201(*[SKIP] * 6)])
    assert list(table.columns) == feature_names("nb201") and table.shape == (2, 55)


def test_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="no graph features for space 'nds_amoeba'.*nb201"):
        graph_features("nds_amoeba", "x")
    with pytest.raises(ValueError, match="unknown operation 'conv9'"):
        graph_features("nb201", "|conv9~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(ValueError, match=r"edge \(2, 1\)"):
        CellGraph(3, (0,), 2, ((2, 1, "x"),))
