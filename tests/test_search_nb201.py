"""Zero-shot search on NAS-Bench-201 and DARTS: pruning, sampling, resume, refusals.

The pruning tests drive the real procedure through the real scoring path (a Study on the
supernet's card) with indicators whose value is known in closed form: the parameter count
(the cost of removing an operation is its own parameter count over the supernet's) and an
indicator that adds a chosen weight per (edge, live operation) (the least-weight operation
goes first; the survivor of each edge is the heaviest). Sampling is checked against an
independent count of the drawn networks' parameters.
"""
import json
import random

import numpy as np
import pytest

from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.cli.app import main
from xigsnr_naslib.core.complexity import count_params
from xigsnr_naslib.proxies import Proxy, get_proxy
from xigsnr_naslib.search.pruning import prune, removal_costs, study_scorer
from xigsnr_naslib.benchmarks.darts import DARTS_OPERATIONS, DartsSpace
from xigsnr_naslib.benchmarks.nb201.space import NB201Network
from xigsnr_naslib.benchmarks.supernet import DartsSupernet, NB201Supernet
from xigsnr_naslib.scoring.study import Execution, Study
from xigsnr_naslib.search.zero_shot import (check_algorithm, check_supernet_proxy, draw_architectures,
                                            sample_search, supernet_card)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class EdgeWeights:
    """Indicator: sum over the first supernet cell's edges of ``weights[edge][op]`` for each live op."""

    def __init__(self, weights):
        self.weights = weights

    def __call__(self, results):
        cell = next(m for m in results.model.modules() if type(m).__name__ == "_NB201SupernetCell")
        return float(sum(self.weights[i][op] for i, ops in enumerate(cell.edges) for op in ops))


def _supernet_study(card_name, proxy, tmp_path=None, **options):
    card = get_card(card_name)
    dataset = card.dataset()
    return Study(supernet_card(card, dataset), dataset, [proxy], execution=Execution(workers=0),
                 store=(tmp_path / "scores.jsonl") if tmp_path else None, space_options=options)


def test_pruning_with_the_parameter_count_keeps_the_largest_operation_and_costs_are_parameter_fractions():
    study = _supernet_study("nb201", get_proxy("params"))
    space = study.space
    result = prune(space, [study_scorer(study)])
    # per edge, skip and pooling (no parameters; the tie broken by operation order: skip first),
    # then pooling, then the 1x1 convolution go: the 3x3 convolution stays on every edge
    assert result.arch == ("nor_conv_3x3",) * 6
    first = result.steps[0]
    assert [op for _, op in first.pruned] == ["skip_connect"] * 6
    # closed form: removing a 1x1 ReLU-conv-BN from one edge removes C*C + 2C parameters in each
    # stage's cell (C = 3, 6, 12); the cost is that over the supernet's parameter count
    total = count_params(space.build(space.full(), num_classes=10))
    removed = sum(c * c + 2 * c for c in (3, 6, 12))
    cost = dict(((e, op), c) for e, op, c in first.costs)[("1<-0", "nor_conv_1x1")]
    assert cost == pytest.approx(removed / total, rel=1e-12)
    assert dict(((e, op), c) for e, op, c in first.costs)[("3<-2", "avg_pool_3x3")] == 0.0
    assert len(result.steps) == 3 and result.networks == 1 + 24 + 1 + 18 + 1 + 12


def test_pruning_removes_the_least_weight_operation_of_each_edge_each_round():
    rng = random.Random(5)
    ops = NB201Supernet().operations
    weights = [{op: rng.uniform(1, 2) for op in ops} for _ in range(6)]
    proxy = Proxy("edge_weights", EdgeWeights(weights), needs_data=False)
    study = _supernet_study("nb201", proxy)
    result = prune(study.space, [study_scorer(study)])
    for round_, step in enumerate(result.steps):
        for edge, (name, op) in enumerate(step.pruned):
            assert op == sorted(ops, key=lambda o: weights[edge][o])[round_]
    assert result.arch == tuple(max(ops, key=lambda o: w[o]) for w in weights)


@pytest.mark.slow  # about 130 small DARTS supernets built and counted
def test_darts_pruning_keeps_the_heaviest_operation_then_the_two_heaviest_inputs_per_node():
    rng = random.Random(7)
    ops = ("skip_connect", "sep_conv_3x3")
    space = DartsSupernet(width=2, depth=3, operations=ops)
    weights = [{op: rng.uniform(1, 2) for op in ops} for _ in space.edge_names]

    class Both(EdgeWeights):  # both cell types: the normal cell is the first, the reduction the second
        def __call__(self, results):
            cells = [m for m in results.model.modules() if type(m).__name__ == "_DartsSupernetCell"]
            n = len(weights) // 2
            return float(sum(self.weights[i][op] for i, e in enumerate(cells[0].edges) for op in e)
                         + sum(self.weights[n + i][op] for i, e in enumerate(cells[1].edges) for op in e))

    study = _supernet_study("darts", Proxy("edge_weights", Both(weights), needs_data=False),
                            width=2, depth=3, operations=list(ops))
    result = prune(study.space, [study_scorer(study)])
    genotype = result.arch
    for half, pairs in ((0, genotype.normal), (1, genotype.reduce)):
        for step in range(4):
            group = space.node_groups[4 * half + step]
            best = {e: max(ops, key=lambda o: weights[e][o]) for e in group}
            kept = sorted(sorted(group, key=lambda e: -weights[e][best[e]])[:2])
            expected = [(best[e], e - group[0]) for e in kept]
            assert list(pairs[2 * step:2 * step + 2]) == expected
    # the genotype builds through the NDS builder
    assert DartsSpace(width=4, depth=3).build(genotype, num_classes=10) is not None


def test_removal_costs_are_mean_relative_drops_over_repeats():
    space = NB201Supernet()
    state = space.full()
    values = {0: [10.0, 8.0, 11.0], 1: [20.0, 20.0, 10.0]}
    scorers = [lambda states, r=r: values[r] for r in (0, 1)]
    costs = removal_costs(space, state, [(0, "skip_connect"), (0, "nor_conv_1x1")], scorers)
    assert costs == pytest.approx([(0.2 + 0.0) / 2, (-0.1 + 0.5) / 2])
    with pytest.raises(ValueError, match="no finite score"):
        removal_costs(space, state, [(0, "skip_connect")], [lambda states: [1.0, float("nan")]])
    with pytest.raises(ValueError, match="undefined"):
        removal_costs(space, state, [(0, "skip_connect")], [lambda states: [0.0, 1.0]])


def test_supernet_states_share_the_weights_of_surviving_operations():
    import torch

    space = NB201Supernet()
    torch.manual_seed(3)
    full = dict(space.build(space.full()).named_parameters())
    torch.manual_seed(3)
    pruned = dict(space.build(space.without(space.full(), 2, "nor_conv_1x1")).named_parameters())
    assert set(pruned) < set(full) and all(torch.equal(full[k], v) for k, v in pruned.items())


def test_a_single_path_supernet_computes_the_benchmark_network():
    import torch

    arch = ("nor_conv_3x3", "skip_connect", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3", "skip_connect")
    space = NB201Supernet(channels=16, cells_per_stage=5)
    supernet = space.build(tuple((op,) for op in arch))
    network = NB201Network(arch)
    assert count_params(supernet) == count_params(network)
    # the same modules in the same order: give the supernet the network's weights
    with torch.no_grad():
        for a, b in zip(supernet.parameters(), network.parameters(), strict=True):
            a.copy_(b)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(supernet(x), network(x), rtol=0, atol=0)


def test_sample_keeps_the_drawn_architecture_of_highest_score():
    study = Study("nb201", None, ["params"], execution=Execution(workers=0))
    best, score, records = sample_search(study, 12, seed=4)
    drawn = draw_architectures(study.space, 12, 4)
    counts = [count_params(NB201Network(a)) for a in drawn]
    assert len(records) == 12 and len({r["arch"] for r in records}) == 12
    assert score == max(counts) and best == drawn[counts.index(max(counts))]


def test_algorithms_are_declared_on_the_cards_and_refused_by_name():
    assert check_algorithm(get_card("nb201"), "prune") == "prune"
    with pytest.raises(ValueError, match="does not offer search algorithm 'prune'; it offers: evolution"):
        check_algorithm(get_card("nb101"), "prune")
    with pytest.raises(ValueError, match="does not offer search algorithm 'evolution'; it offers: prune, sample"):
        check_algorithm(get_card("darts"), "evolution")
    with pytest.raises(ValueError, match="unknown search algorithm 'anneal'"):
        check_algorithm(get_card("nb201"), "anneal")
    with pytest.raises(ValueError, match="not computable on a supernet"):
        check_supernet_proxy(Proxy("table", lambda r: 0.0, needs_data=False, on_supernet=False))
    with pytest.raises(ValueError, match="unknown operation 'none'"):
        NB201Supernet(operations=["none", "skip_connect"])
    with pytest.raises(ValueError, match="reads input 1 twice"):
        DartsSpace().decode({"normal": [["skip_connect", 1], ["skip_connect", 1]] * 4, "normal_concat": [2, 3, 4, 5],
                             "reduce": [["skip_connect", 0], ["skip_connect", 1]] * 4, "reduce_concat": [2, 3, 4, 5]})


def _search(tmp_path, *extra, name="run"):
    return ["search", "--space", "nb201", "--results", str(tmp_path / "scores.jsonl"), "--checkpoint",
            str(tmp_path / f"{name}.ckpt.json"), "--output", str(tmp_path / f"{name}.json"), "--workers", "0",
            "--no-progress", *extra]


def _lines(tmp_path):
    return (tmp_path / "scores.jsonl").read_text().splitlines()


@pytest.mark.slow  # 58 supernets through the command line, twice
def test_prune_command_reports_ground_truth_and_resumes_without_scoring_again(tmp_path, data_root, capsys, monkeypatch):
    monkeypatch.setenv("XIGSNR_DATA_ROOT", str(data_root))
    args = _search(tmp_path, "--algorithm", "prune", "--proxy", "params", "--repeats", "2")
    assert main(args) == 0
    report = json.loads((tmp_path / "run.json").read_text())
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert report["arch"] == arch and report["params"] == count_params(NB201Network(arch))
    truth = get_card("nb201").load_ground_truth("cifar10", data_root)
    assert report["ground_truth"]["cifar10"]["accuracy"] == truth.loc[truth["arch"] == arch, "accuracy"].iloc[0]
    assert set(report["ground_truth"]) == {"cifar10", "cifar100", "ImageNet16-120"}
    assert 0 < report["ground_truth"]["cifar10"]["valid"]["accuracy"] < 100
    # 25 + 19 + 13 distinct supernets and the chosen cell: the parameter count reads no image and
    # no initialisation, so its two repeats are the same computations, stored once
    assert report["networks_scored"] == 57 + 1 == len(_lines(tmp_path))
    out = capsys.readouterr().out
    assert "cifar10 test" in out and "networks scored: 58" in out
    before = _lines(tmp_path)
    assert main(args) == 0  # a rerun: everything from the store
    assert _lines(tmp_path) == before
    assert json.loads((tmp_path / "run.json").read_text())["networks_scored_now"] == 0
    assert "networks scored: 58 (0 in this invocation" in capsys.readouterr().out
    assert json.loads((tmp_path / "run.json").read_text())["arch"] == arch


def test_a_changed_header_is_refused_by_name(tmp_path, data_root, capsys, monkeypatch):
    monkeypatch.setenv("XIGSNR_DATA_ROOT", str(data_root))
    assert main(_search(tmp_path, "--algorithm", "sample", "--proxy", "params", "--samples", "5")) == 0
    assert main(_search(tmp_path, "--algorithm", "sample", "--proxy", "params", "--samples", "5",
                        "--search-seed", "9")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "algorithm_settings.seed" in err and "0 then, 9 now" in err
    assert main(_search(tmp_path, "--algorithm", "sample", "--proxy", "flops", "--samples", "5")) == 2
    assert "proxies" in capsys.readouterr().err


def test_sampling_more_reuses_every_score_already_stored(tmp_path, data_root, monkeypatch, capsys):
    monkeypatch.setenv("XIGSNR_DATA_ROOT", str(data_root))
    assert main(_search(tmp_path, "--algorithm", "sample", "--proxy", "params", "--samples", "6", name="a")) == 0
    assert len(_lines(tmp_path)) == 6 + 0  # the chosen cell is one of the six
    assert main(_search(tmp_path, "--algorithm", "sample", "--proxy", "params", "--samples", "10", name="b")) == 0
    # the same seed draws the same first six: only four more are scored
    lines = _lines(tmp_path)
    assert len(lines) == 10 and len({json.loads(l)["arch"] for l in lines}) == 10
    report = json.loads((tmp_path / "b.json").read_text())
    assert (report["networks_scored"], report["networks_scored_now"]) == (10, 4)
    assert "networks scored: 10 (4 in this invocation" in capsys.readouterr().out


@pytest.mark.slow  # scores NAS-Bench-201 networks with xi-GSNR on CIFAR-100 and ImageNet16-120 stand-ins
@pytest.mark.parametrize("dataset,classes", [("cifar100", 100), ("ImageNet16-120", 120)])
def test_search_on_other_datasets_with_a_stand_in_image_set(dataset, classes, tmp_path, data_root, capsys):
    # the 20 real CIFAR-100 test images stand in for the training images (not available here)
    images = data_root / "images" / "cifar100_test20.npz"
    assert main(_search(tmp_path, "--algorithm", "sample", "--samples", "2", "--dataset", dataset,
                        "--images", str(images), "--n-batches", "2", "--batch-size", "4",
                        "--data-root", str(data_root))) == 0
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["dataset"] == dataset and np.isfinite(report["proxy_score"])
    resolution = 16 if dataset == "ImageNet16-120" else 32
    assert report["header"]["images"] and report["flops"] > 0
    assert report["ground_truth"][dataset]["accuracy"] > 0
    network = get_card("nb201").create_space().build(report["arch"], num_classes=classes)
    assert report["params"] == count_params(network)
    from xigsnr_naslib.core.complexity import count_flops

    assert report["flops"] == count_flops(network, (3, resolution, resolution))


@pytest.mark.slow  # a DARTS pruning run on real CIFAR-10 images (a few hundred small supernets)
def test_darts_prune_command_prints_a_genotype_and_its_evaluation_network_size(tmp_path, data_root, capsys):
    args = ["search", "--space", "darts", "--algorithm", "prune", "--results", str(tmp_path / "s.jsonl"),
            "--checkpoint", str(tmp_path / "c.json"), "--output", str(tmp_path / "o.json"), "--workers", "0",
            "--no-progress", "--repeats", "1", "--n-batches", "2", "--batch-size", "4", "--data-root", str(data_root),
            "--supernet-option", "width=2", "--supernet-option", "depth=3",
            "--supernet-option", 'operations=["skip_connect","sep_conv_3x3"]']
    assert main(args) == 0
    report = json.loads((tmp_path / "o.json").read_text())
    genotype = DartsSpace().decode(report["genotype"])
    assert all(op in DARTS_OPERATIONS for op, _ in genotype.normal + genotype.reduce)
    from xigsnr_naslib.benchmarks.darts import evaluation_net
    from xigsnr_naslib.benchmarks.nds.space import NDSNetwork

    assert report["params"] == count_params(NDSNetwork(evaluation_net(genotype), 10, "cifar"))
    assert "params:" in capsys.readouterr().out


class Interrupting(EdgeWeights):
    """EdgeWeights that raises KeyboardInterrupt on its ``stop_at``-th computation (0: never)."""

    calls = 0
    stop_at = 0

    def __call__(self, results):
        Interrupting.calls += 1
        if Interrupting.calls == Interrupting.stop_at:
            raise KeyboardInterrupt
        return super().__call__(results)


@pytest.mark.slow  # three pruning runs of 57 small supernets each
def test_an_interrupted_pruning_resumes_to_the_same_result_scoring_nothing_twice(tmp_path):
    from xigsnr_naslib.scoring.results import record_key

    rng = random.Random(11)
    weights = [{op: rng.uniform(1, 2) for op in NB201Supernet().operations} for _ in range(6)]
    proxy = Proxy("edge_weights", Interrupting(weights), needs_data=False)
    Interrupting.calls, Interrupting.stop_at = 0, 30  # in the second round
    with pytest.raises(KeyboardInterrupt):
        prune(_supernet_study("nb201", proxy, tmp_path).space, [study_scorer(_supernet_study("nb201", proxy, tmp_path))])
    assert len((tmp_path / "scores.jsonl").read_text().splitlines()) == 29
    Interrupting.calls, Interrupting.stop_at = 0, 0
    study = _supernet_study("nb201", proxy, tmp_path)
    resumed = prune(study.space, [study_scorer(study)])
    assert Interrupting.calls == 57 - 29  # only what the store lacked
    records = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(records) == 57 == len({record_key(r) for r in records})
    fresh = _supernet_study("nb201", proxy)
    assert resumed.arch == prune(fresh.space, [study_scorer(fresh)]).arch


def test_darts_sampling_scores_genotypes_built_by_the_nds_builder():
    from xigsnr_naslib.benchmarks.nds.space import count_nds_params

    study = Study("darts", None, ["params"], execution=Execution(workers=0))
    best, score, records = sample_search(study, 3, seed=2)
    assert len(records) == 3 and score == max(r["score"] for r in records)
    assert score == count_nds_params(study.space.net(best), 10, "cifar")


def test_an_ensemble_is_a_search_fitness_on_cells_and_supernets(tmp_path):
    from xigsnr_naslib.proxies.ensemble import Member, ensemble_proxy
    from xigsnr_naslib.registry import registered
    # two members of known value: log(params) and log(flops), each standardised with scale 1
    ensemble = ensemble_proxy("test_ensemble", [Member("params", "log", 13.0), Member("flops", "log", 18.0)])
    with registered(ensemble):
        study = Study("nb201", None, ["test_ensemble"], execution=Execution(workers=0), store=tmp_path / "s.jsonl")
        best, score, records = sample_search(study, 8, seed=4)
    drawn = draw_architectures(study.space, 8, 4)
    nets = [NB201Network(a) for a in drawn]
    from xigsnr_naslib.core.complexity import count_flops
    values = [np.log(count_params(n)) - 13.0 + np.log(count_flops(n, (3, 32, 32))) - 18.0 for n in nets]
    assert best == drawn[int(np.argmax(values))] and score == pytest.approx(max(values), rel=1e-12)
    check_supernet_proxy(ensemble)  # its members are defined on a supernet: so is it
    table_only = Proxy("table_only", lambda r: 1.0, needs_data=False, on_supernet=False)
    with registered(table_only), pytest.raises(ValueError, match="not computable on a supernet"):
        check_supernet_proxy(ensemble_proxy("mixed", [Member("params", "log", 13.0), Member("table_only", "identity")]))


def test_the_algorithm_flag_table_holds_the_parser_defaults():
    """The command line refuses a flag of another algorithm set to anything but its default: the
    table's defaults (the settings classes') must be the parser's, or a flag left alone would be
    refused (or a set one missed)."""
    import argparse

    from xigsnr_naslib.cli.search import _flag_value, add_search_parser
    from xigsnr_naslib.search.zero_shot import ALGORITHM_FLAGS

    parser = argparse.ArgumentParser()
    add_search_parser(parser.add_subparsers())
    args = parser.parse_args(["search", "--space", "nb201"])
    for flags in ALGORITHM_FLAGS.values():
        for name, default in flags.items():
            assert _flag_value(args, name) == default, name
