"""One architecture, one identity: every space's encoding is canonical, and the store, the
searches and the leaderboard count an architecture once, whatever its spelling.

NAS-Bench-101's identity is its graph hash: the canonical string must agree with it on real
cells (same hash <=> same string) and be unchanged by relabelling the interior vertices; the
network built from any spelling must be the canonical one, so that scores agree bit for bit.
"""
import dataclasses
import json
import random

import numpy as np
import pandas as pd
import pytest
import torch

from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.search.evolution import EvolutionSettings, RegularizedEvolution
from xigsnr_naslib.analysis.leaderboard import LeaderboardSettings, build_leaderboard
from xigsnr_naslib.data.protocol import Protocol
from xigsnr_naslib.search.pruning import prune
from xigsnr_naslib.scoring.results import ResultsStore
from xigsnr_naslib.benchmarks import create_space
from xigsnr_naslib.benchmarks.space import canonical_record
from xigsnr_naslib.benchmarks.nb101.space import Cell, canonical_cell, graph_hash, make_cell, parse_cell
from xigsnr_naslib.benchmarks.nds.space import Genotype, NDSNet, canonical_net, parse_net
from xigsnr_naslib.benchmarks.supernet import NB201Supernet
from xigsnr_naslib.scoring.study import Study, build_model

CONV3, CONV1, POOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
TINY = Protocol(n_batches=1, batch_size=4, data_seed=1, init_seed=3)
#: an 8-channel stem (enough for 5 vertices feeding the output), one stack of one module:
#: a network of a few thousand parameters
SMALL_NB101 = {"stem_channels": 8, "num_stacks": 1, "modules_per_stack": 1}


def relabel(cell: Cell, rng: random.Random) -> Cell:
    """``cell`` with its interior vertices renumbered at random (a random topological order:
    every vertex is placed after its predecessors, ties broken by a random priority)."""
    n = cell.n_vertices
    array = cell.array()
    priority = {v: rng.random() for v in range(1, n - 1)}
    order, placed = [0], {0}
    while len(order) < n - 1:
        ready = [v for v in range(1, n - 1)
                 if v not in placed and all(u in placed for u in np.flatnonzero(array[:, v]))]
        v = min(ready, key=priority.__getitem__)
        order.append(v)
        placed.add(v)
    order.append(n - 1)
    return make_cell(array[np.ix_(order, order)], [cell.ops[v] for v in order])


def can_dangle(cell: Cell) -> bool:
    """Whether ``cell`` has room for one more vertex and edge (7 vertices, 9 edges at most)."""
    return cell.n_vertices < 7 and cell.n_edges < 9


def with_dangling_vertex(cell: Cell, rng: random.Random) -> Cell:
    """``cell`` (:func:`can_dangle`) with one more interior vertex that no input-output path
    crosses: fed by the input, feeding nothing. The benchmark prunes it away."""
    n = cell.n_vertices
    matrix = np.zeros((n + 1, n + 1), dtype=int)
    keep = list(range(n - 1)) + [n]
    matrix[np.ix_(keep, keep)] = cell.array()
    matrix[0, n - 1] = 1
    return make_cell(matrix, list(cell.ops[:-1]) + [rng.choice((CONV3, CONV1, POOL)), "output"])


def _reference_cells(data_root, rows: int | None = None) -> pd.DataFrame:
    table = pd.read_csv(data_root / "nb101" / "nb101_sample2500.csv", nrows=rows)
    table["cell"] = [make_cell(json.loads(m), json.loads(o)) for m, o in zip(table.matrix, table.ops)]
    return table


@pytest.fixture(scope="module")
def sample300(data_root):
    """The first 300 cells of the NAS-Bench-101 reference sample (the fast loop's share)."""
    return _reference_cells(data_root, 300)


# --- NAS-Bench-101: canonical string <=> benchmark hash -------------------------------------------

def _check_relabellings(table: pd.DataFrame, per_cell: int, seed: int) -> int:
    rng = random.Random(seed)
    space = create_space("nb101")
    changed = 0
    for cell in table.cell:
        code = space.encode(cell)
        for _ in range(per_cell):
            other = relabel(cell, rng)
            changed += other != cell
            assert space.encode(other) == code, (cell.to_string(), other.to_string())
        if can_dangle(cell):
            assert space.encode(with_dangling_vertex(cell, rng)) == code
    return changed


def test_canonical_strings_agree_with_the_benchmark_hash_on_a_real_sample(sample300):
    """The first 300 reference cells: distinct hashes give distinct strings, the canonical cell
    keeps the hash, and random relabellings (and a dangling vertex) keep the string."""
    table = sample300
    codes = [create_space("nb101").encode(c) for c in table.cell]
    assert len(set(codes)) == len(set(table.nb101_hash)) == 300
    for cell, h in zip(table.cell[:60], table.nb101_hash[:60]):
        assert graph_hash(canonical_cell(cell)) == h
    # the relabellings must really move vertices, or the check proves nothing
    assert _check_relabellings(table, per_cell=3, seed=0) > 300


@pytest.mark.slow  # all 2,500 cells: hashes of the canonical cells and 5 relabellings each (about 20 s)
def test_canonical_strings_agree_with_the_benchmark_hash_on_all_2500(data_root):
    sample2500 = _reference_cells(data_root)
    space = create_space("nb101")
    codes = [space.encode(c) for c in sample2500.cell]
    # same hash <=> same string: the 2,500 hashes are distinct, so must the strings be
    assert len(set(codes)) == sample2500.nb101_hash.nunique() == 2500
    assert [graph_hash(parse_cell(c)) for c in codes] == list(sample2500.nb101_hash)
    assert _check_relabellings(sample2500, per_cell=5, seed=1) > 2500


def test_isomorphic_cells_give_one_string_and_non_isomorphic_ones_two():
    m = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    a = make_cell(m, ["input", CONV3, CONV1, "output"])
    b = make_cell(m, ["input", CONV1, CONV3, "output"])  # the two branches listed the other way
    c = make_cell(m, ["input", CONV1, CONV1, "output"])
    space = create_space("nb101")
    assert a != b and space.encode(a) == space.encode(b) != space.encode(c)
    # a chain is not a fork: same operations, same edge count, another graph (and hash)
    chain = make_cell([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", CONV3, CONV1, "output"])
    assert space.encode(chain) != space.encode(a) and graph_hash(chain) != graph_hash(a)
    # the canonical string decodes to a cell whose string it is (a fixed point)
    code = space.encode(b)
    assert space.encode(space.decode(code)) == code and space.is_valid(b)


def test_isomorphic_cells_build_the_same_network_bit_for_bit(sample300):
    """The network is built from the canonical cell: every spelling gets the same weights and
    the same outputs and gradients (hence the same score), not just the same shapes."""
    space = create_space("nb101", **SMALL_NB101)
    rng = random.Random(4)
    cell = next(c for c in sample300.cell if relabel(c, random.Random(0)) != c)
    other = relabel(cell, random.Random(0))
    assert other != cell and space.encode(other) == space.encode(cell)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    outs = []
    for spelling in (cell, other, with_dangling_vertex(cell, rng) if can_dangle(cell) else cell):
        model = build_model(space, spelling, 10, 7, "cpu")
        out = model(x)
        out.square().sum().backward()
        outs.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    for out, grads in outs[1:]:
        assert torch.equal(out, outs[0][0])
        assert len(grads) == len(outs[0][1]) and all(torch.equal(g, h) for g, h in zip(grads, outs[0][1]))


def test_two_spellings_get_one_record_and_one_score(data_root, sample300, tmp_path):
    """Through the one scoring path: two isomorphic spellings in one call are scored once,
    written once, and a later call with a third spelling reads that record."""
    cell = next(c for c in sample300.cell if relabel(c, random.Random(0)) != c)
    other = relabel(cell, random.Random(0))
    store = tmp_path / "scores.jsonl"
    study = Study("nb101", "cifar10", ["grad_norm"], TINY, data_root=data_root, store=store,
                  space_options=SMALL_NB101)
    first, second = study.score([(None, cell), (None, other)])
    assert first["arch"] == second["arch"] == study.space.encode(cell)
    assert first["score"] == second["score"] and first["status"] == "ok"
    assert len(ResultsStore(store).records()) == 1
    again = Study("nb101", "cifar10", ["grad_norm"], TINY, data_root=data_root, store=store,
                  space_options=SMALL_NB101).score([(None, relabel(cell, random.Random(9)))])
    assert again[0]["score"] == first["score"] and len(ResultsStore(store).records()) == 1


def test_a_store_of_earlier_encodings_resumes_under_canonical_keys(data_root, sample300, tmp_path):
    """A record written under a non-canonical spelling (an earlier release's encoding) is read
    under the canonical key, says what it was stored as, and is not scored again."""
    cell = next(c for c in sample300.cell if c.to_string() != create_space("nb101").encode(c))
    store = tmp_path / "scores.jsonl"
    study = Study("nb101", "cifar10", ["params"], TINY, data_root=data_root, store=store, space_options=SMALL_NB101)
    record = study.score([(None, cell)])[0]
    old = dict(record, arch=cell.to_string())  # as the earlier encoding wrote it
    store.write_text(json.dumps(old) + "\n")
    resumed = Study("nb101", "cifar10", ["params"], TINY, data_root=data_root, store=store,
                    space_options=SMALL_NB101).score([(None, cell)])
    assert resumed[0]["arch"] == record["arch"] and resumed[0]["encoded_as"] == cell.to_string()
    assert len(ResultsStore(store).records()) == 1  # nothing scored again
    # and a search's report does not count it as scored now (it counts what the store held before)
    from xigsnr_naslib.scoring.results import record_key
    from xigsnr_naslib.search.door import _stored_keys

    reader = Study("nb101", "cifar10", ["params"], TINY, data_root=data_root, store=store, space_options=SMALL_NB101)
    assert record_key(resumed[0]) in _stored_keys(reader)
    # the mapping itself: canonical records pass unchanged, unreadable arch strings too
    space = create_space("nb101")
    assert canonical_record(space, record) is record
    junk = {"arch": "not a cell"}
    assert canonical_record(space, junk) is junk


def test_mutation_changes_the_architecture_and_can_grow_a_pruned_cell():
    space = create_space("nb101")
    rng = random.Random(0)
    small = make_cell([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", CONV3, "output"])
    sizes = set()
    for _ in range(200):
        child = space.mutate(small, rng)
        assert space.encode(child) != space.encode(small)
        sizes.add(canonical_cell(child).n_vertices)
    assert max(sizes) > 3  # a canonical (pruned) parent is padded to 7 vertices, so it can grow


# --- NAS-Bench-201: the benchmark's own string, from every accepted spelling ------------------------

def test_nb201_spellings_give_the_benchmark_string_and_all_15625_stay_distinct():
    space = create_space("nb201")
    arch = ("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "none")
    code = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
    assert space.encode(arch) == space.encode(list(arch)) == space.encode(code) == code
    spaced = "  |nor_conv_3x3~0| + |none~0|skip_connect~1| + |avg_pool_3x3~0|nor_conv_1x1~1|none~2|  "
    assert space.encode(spaced) == code
    codes = {space.encode(a) for a in space.all_archs()}
    assert len(codes) == 15625  # the benchmark counts every cell, "none" edges and all, as its own


# --- DARTS and NDS: a node's two inputs in either order, nodes renumbered -----------------------------

from test_nds_space import DARTS_V2  # noqa: E402  (DARTS-V2, the genotype the NDS tests use)


def shuffle_cell(pairs, concat, rng: random.Random):
    """A random spelling of one cell: nodes renumbered in a random topological order, each
    node's two pairs in random order, the concatenation shuffled."""
    nodes = list(range(2, 2 + len(pairs) // 2))
    inputs = {v: [tuple(p) for p in pairs[2 * (v - 2):2 * (v - 1)]] for v in nodes}
    numbers, order = {0: 0, 1: 1}, []
    while len(order) < len(nodes):
        ready = [v for v in nodes if v not in numbers and all(s in numbers for _, s in inputs[v])]
        v = rng.choice(ready)
        numbers[v] = 2 + len(order)
        order.append(v)
    out = []
    for v in order:
        two = [[op, numbers[s]] for op, s in inputs[v]]
        rng.shuffle(two)
        out += two
    new_concat = [numbers[c] for c in concat]
    rng.shuffle(new_concat)
    return out, new_concat


def test_darts_spellings_give_one_string_and_one_network():
    space = create_space("darts", width=4, depth=2)
    rng = random.Random(0)
    code = space.encode(DARTS_V2)
    assert json.loads(code)["normal"][4:6] == [["skip_connect", 0], ["sep_conv_3x3", 1]]  # listed by input
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    reference = space.build(DARTS_V2)(x)
    for _ in range(5):
        normal, normal_concat = shuffle_cell(DARTS_V2["normal"], DARTS_V2["normal_concat"], rng)
        reduce, reduce_concat = shuffle_cell(DARTS_V2["reduce"], DARTS_V2["reduce_concat"], rng)
        spelling = {"normal": normal, "normal_concat": sorted(normal_concat), "reduce": reduce,
                    "reduce_concat": sorted(reduce_concat)}
        assert space.encode(spelling) == code
        torch.manual_seed(5)
        assert torch.equal(space.build(spelling)(x), reference)
    # another operation on one edge is another architecture
    other = json.loads(code)
    other["normal"][0][0] = "avg_pool_3x3"
    assert space.encode(other) != code


def test_nds_records_keep_distinct_canonical_strings_under_random_spellings(data_root):
    rng = random.Random(2)
    for name in ("Amoeba", "DARTS", "ENAS", "NASNet", "PNAS"):
        records = json.loads((data_root / "nds" / f"{name}_in.json").read_text())
        codes = [canonical_net(parse_net(r["net"])).to_string() for r in records]
        assert len(set(codes)) == len(records), name  # no two records are one architecture
        for record, code in list(zip(records, codes))[:20]:
            g = record["net"]["genotype"]
            normal, normal_concat = shuffle_cell(g["normal"], g["normal_concat"], rng)
            reduce, reduce_concat = shuffle_cell(g["reduce"], g["reduce_concat"], rng)
            net = dict(record["net"], genotype={"normal": normal, "normal_concat": normal_concat, "reduce": reduce,
                                                "reduce_concat": reduce_concat})
            assert canonical_net(parse_net(net)).to_string() == code, name
            assert create_space(f"nds_{name.lower()}_in").encode(net) == code


def test_nds_cell_inputs_are_not_interchangeable():
    """Input 0 (the cell before the previous one) and input 1 (the previous one) differ:
    exchanging them is another architecture."""
    a = Genotype((("conv_1x1", 0), ("sep_conv_3x3", 1)), (2,), (("conv_1x1", 0), ("conv_1x1", 1)), (2,))
    b = Genotype((("conv_1x1", 1), ("sep_conv_3x3", 0)), (2,), (("conv_1x1", 0), ("conv_1x1", 1)), (2,))
    assert canonical_net(NDSNet(a, 8, 3)) != canonical_net(NDSNet(b, 8, 3))


# --- searches: each architecture scored once, listed once ----------------------------------------------

class CountingFitness:
    """A fitness that remembers every architecture it is asked about (as the space encodes
    it) and gives a value that is a function of the canonical string."""

    def __init__(self, space):
        self.space, self.calls = space, []

    def __call__(self, arch) -> float:
        code = self.space.encode(arch)
        self.calls.append(code)
        return (int.from_bytes(code.encode()[-8:], "little") % 1000) / 1000.0


def test_nb101_evolution_scores_each_architecture_once_and_lists_it_once(tmp_path):
    space = create_space("nb101", **SMALL_NB101)  # the evolution builds each child to count its FLOPs
    fitness = CountingFitness(space)
    settings = EvolutionSettings(population_size=4, steps=16, sample_size=3, seed=0, checkpoint_every=10)
    result = RegularizedEvolution(space, fitness, settings, checkpoint=tmp_path / "run.json", progress=False).run()
    assert len(fitness.calls) == len(set(fitness.calls)) == result.distinct()
    assert all(c.arch == space.encode(space.decode(c.arch)) for c in result.history)  # canonical strings only
    best = [c.arch for c in result.best(20)]
    assert len(best) == len(set(best)) == min(20, result.distinct())
    assert result.to_dict()["distinct"] == result.distinct() <= result.to_dict()["evaluated"] == 20


@pytest.mark.slow  # two short evolutions (about 3 s)
def test_an_evolution_checkpoint_of_earlier_encodings_resumes_without_rescoring(tmp_path):
    space = create_space("nb101", **SMALL_NB101)
    settings = EvolutionSettings(population_size=6, steps=10, sample_size=3, seed=1, checkpoint_every=4)
    checkpoint = tmp_path / "run.json"
    RegularizedEvolution(space, CountingFitness(space), settings, checkpoint=checkpoint, progress=False).run()
    data = json.loads(checkpoint.read_text())
    rng = random.Random(0)
    for c in data["history"]:  # as an earlier release wrote them: some other spelling of each cell
        cell = space.decode(c["arch"])
        c["arch"] = (with_dangling_vertex(cell, rng) if can_dangle(cell) else relabel(cell, rng)).to_string()
    checkpoint.write_text(json.dumps(data))
    fitness = CountingFitness(space)
    longer = dataclasses.replace(settings, steps=20)
    result = RegularizedEvolution(space, fitness, longer, checkpoint=checkpoint, progress=False).run()
    earlier = {c.arch for c in result.history[:16]}
    assert all(c.arch == space.encode(space.decode(c.arch)) for c in result.history)
    assert not earlier & set(fitness.calls) and len(fitness.calls) == len(set(fitness.calls))


def test_sampling_draws_distinct_architectures():
    from xigsnr_naslib.search.zero_shot import draw_architectures

    space = create_space("nb101")
    archs = draw_architectures(space, 40, seed=0)
    assert len({space.encode(a) for a in archs}) == 40


def test_pruning_never_scores_a_state_twice():
    supernet = NB201Supernet()
    seen = []

    def scorer(states):
        codes = [supernet.encode(s) for s in states]
        seen.extend(codes)
        return [1.0 + (sum(map(ord, c)) % 97) / 97.0 for c in codes]

    result = prune(supernet, [scorer])
    assert len(seen) == len(set(seen)) == result.networks
    assert supernet.is_single_path(result.state)


# --- the leaderboard: each architecture once -------------------------------------------------------------

def _nb101_card_with(truth: pd.DataFrame):
    card = get_card("nb101")

    def ground_truth(dataset, data_root, accuracy):
        out = truth.copy()
        out.attrs.update(definition="test", source="a test table")
        return out

    return dataclasses.replace(card, ground_truth=ground_truth)


def test_the_leaderboard_refuses_a_ground_truth_that_lists_one_architecture_twice(data_root, sample300):
    cells = list(sample300.cell[:4])
    twin = next(c for c in sample300.cell[4:] if relabel(c, random.Random(0)) != c)
    spellings = [c.to_string() for c in cells] + [twin.to_string(), relabel(twin, random.Random(0)).to_string()]
    truth = pd.DataFrame({"arch": spellings, "accuracy": np.linspace(80, 90, len(spellings))})
    truth.index.name = "index"
    study = Study(_nb101_card_with(truth), "cifar10", [], TINY, data_root=data_root)
    with pytest.raises(ValueError, match=r"one architecture at indices \[4, 5\]"):
        build_leaderboard(study, LeaderboardSettings(tables=[], sample=None), log=lambda m: None)
    # one spelling of each: every architecture counted once, under its canonical string
    board = build_leaderboard(Study(_nb101_card_with(truth.iloc[:5]), "cifar10", ["params"], TINY,
                                    data_root=data_root, space_options=SMALL_NB101),
                              LeaderboardSettings(tables=[], sample=None, bootstrap=_no_bootstrap()),
                              log=lambda m: None)
    space = create_space("nb101")
    assert list(board.scores["arch"]) == [space.encode(s) for s in spellings[:5]]
    assert board.n_archs == 5


def _no_bootstrap():
    from xigsnr_naslib.analysis.leaderboard import Bootstrap

    return Bootstrap(n_boot=0)
