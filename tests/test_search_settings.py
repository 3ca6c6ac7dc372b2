"""The search door: settings dataclasses, the algorithm registry, the card's search fields.

Bad settings are refused when made, in one line naming the field, the value and what is
allowed; the command line's defaults are the dataclasses'; an unknown algorithm names the
registered ones; the library door gives the command line's result without an argparse
namespace; the card fields that replaced name checks carry what the checks knew.
"""
import argparse
import dataclasses
import json

import pandas as pd
import pytest

from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.cli.app import main
from xigsnr_naslib.scoring.study import Execution
from xigsnr_naslib.search import (ALGORITHMS, ConstraintSettings, EvolutionSettings, ImageSettings, OutputSettings,
                                  PruneSettings, SampleSettings, SearchSettings, get_algorithm, search)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- settings: bad values -> one line naming the value and what is allowed ---------------------------
BAD_SETTINGS = [
    (PruneSettings, {"repeats": 0}, "repeats", "0", ">= 1"),
    (PruneSettings, {"repeats": 2.5}, "repeats", "2.5", ">= 1"),
    (PruneSettings, {"supernet_options": [1, 2]}, "supernet_options", "[1, 2]", "mapping"),
    (SampleSettings, {"samples": 0}, "samples", "0", ">= 1"),
    (SampleSettings, {"seed": -1}, "seed", "-1", ">= 0"),
    (SampleSettings, {"samples": True}, "samples", "True", ">= 1"),
    (EvolutionSettings, {"population_size": 1}, "population_size", "1", ">= 2"),
    (EvolutionSettings, {"steps": -1}, "steps", "-1", ">= 0"),
    (EvolutionSettings, {"sample_size": 0}, "sample_size", "0", ">= 1"),
    (EvolutionSettings, {"mutation_rate": 1.5}, "mutation_rate", "1.5", "from 0 to 1 or None"),
    (EvolutionSettings, {"crossover_rate": -0.1}, "crossover_rate", "-0.1", "from 0 to 1"),
    (ImageSettings, {"max_images": 0}, "max_images", "0", ">= 1"),
    (ImageSettings, {"synthetic": "yes"}, "synthetic", "'yes'", "True or False"),
    (ImageSettings, {"source": 3}, "source", "3", "path or None"),
    (ConstraintSettings, {"max_flops": "lots"}, "", "'lots'", "400M, 5G, 3e7"),
    (ConstraintSettings, {"max_params": -5}, "max_params", "-5", ">= 0"),
    (ConstraintSettings, {"min_flops": float("nan")}, "min_flops", "nan", "finite"),
    (ConstraintSettings, {"resolution": 4}, "resolution", "4", ">= 8 or None"),
    (OutputSettings, {"top_k": 0}, "top_k", "0", ">= 1"),
    (OutputSettings, {"output": 7}, "output", "7", "path or None"),
    (SearchSettings, {"n_batches": 0}, "n_batches", "0", ">= 1 or None"),
    (SearchSettings, {"data_seed": -2}, "data_seed", "-2", ">= 0 or None"),
    (SearchSettings, {"resolution": 2}, "resolution", "2", ">= 8 or None"),
    (SearchSettings, {"num_classes": 0}, "num_classes", "0", ">= 1 or None"),
    (SearchSettings, {"proxies": ("xi_gsnr", "")}, "proxies", "''", "proxy names"),
    (SearchSettings, {"space_options": {3: 1}}, "space_options", "3", "option names"),
    (SearchSettings, {"images": {"synthetic": True}}, "images", "'synthetic'", "ImageSettings"),
    (SearchSettings, {"execution": "cpu"}, "execution", "'cpu'", "Execution"),
]


@pytest.mark.parametrize("kind,values,field,shown,allowed", BAD_SETTINGS,
                         ids=[f"{k.__name__}-{next(iter(v))}-{v[next(iter(v))]!r}" for k, v, *_ in BAD_SETTINGS])
def test_a_bad_setting_is_refused_in_one_line_naming_it(kind, values, field, shown, allowed):
    with pytest.raises(ValueError) as caught:
        kind(**values)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert field in message and shown in message and allowed in message, message


def test_settings_are_frozen_and_leave_their_inputs_alone():
    options = {"channels": 3}
    prune = PruneSettings(supernet_options=options)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prune.repeats = 5
    with pytest.raises(TypeError):  # a read-only view: the settings cannot be changed through it
        prune.supernet_options["channels"] = 4
    options["channels"] = 8  # nor by changing the caller's dict afterwards
    assert prune.supernet_options == {"channels": 3}
    bounds = ConstraintSettings(max_flops="400M", max_params=3e7, paper=True)
    assert bounds.bounds() == {"max_flops": 4e8, "max_params": 3e7}
    assert SearchSettings(proxies=["xi_gsnr"]).proxies == ("xi_gsnr",)


# --- the command line takes its defaults from the dataclasses -----------------------------------------
def _parsed(*argv):
    from xigsnr_naslib.cli.search import add_search_parser

    parser = argparse.ArgumentParser()
    add_search_parser(parser.add_subparsers())
    return parser.parse_args(["search", *argv])


def test_the_command_lines_defaults_are_the_dataclasses():
    from xigsnr_naslib.cli.search import algorithm_settings, search_settings

    args = _parsed("--space", "nb201")
    settings = search_settings(args)
    default = SearchSettings()
    for field in dataclasses.fields(SearchSettings):
        if field.name != "execution":  # the execution flags are every scoring command's (app.add_study_args)
            assert getattr(settings, field.name) == getattr(default, field.name), field.name
    card = get_card("nb201")
    for name, algorithm in ALGORITHMS.items():
        args.algorithm = name
        assert algorithm_settings(args, card) == algorithm.settings(), name


def test_the_command_line_reads_every_flag_into_the_settings():
    from xigsnr_naslib.cli.search import algorithm_settings, search_settings

    args = _parsed("--space", "burgerformer", "--dataset", "imagenet", "--proxy", "params", "--proxy", "flops",
                   "--n-batches", "2", "--init-seed", "4", "--space-option", "search_edges=true", "--resolution", "64",
                   "--num-classes", "10", "--images", "x.npz", "--max-images", "9", "--max-flops", "5G",
                   "--constraint-resolution", "128", "--paper-constraints", "--top-k", "3", "--population", "4",
                   "--steps", "7", "--mutation-rate", "0.5", "--search-seed", "3", "--workers", "0")
    settings = search_settings(args)
    assert settings.proxies == ("params", "flops") and settings.protocol_changes() == {
        "n_batches": 2, "batch_size": None, "data_seed": None, "init_seed": 4}
    assert settings.space_options == {"search_edges": True} and (settings.resolution, settings.num_classes) == (64, 10)
    assert settings.images == ImageSettings("x.npz", False, 9)
    assert settings.constraints == ConstraintSettings(max_flops=5e9, resolution=128, paper=True)
    assert settings.outputs.top_k == 3 and settings.execution.workers == 0
    assert algorithm_settings(args, get_card("burgerformer")) == EvolutionSettings(
        population_size=4, steps=7, mutation_rate=0.5, seed=3)


# --- the algorithm registry ----------------------------------------------------------------------------
def test_an_unknown_algorithm_is_refused_in_one_line_naming_the_choices():
    with pytest.raises(ValueError) as caught:
        get_algorithm("anneal")
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "'anneal'" in message
    assert "choose one of: prune, sample, evolution" in message
    with pytest.raises(ValueError, match="space 'nb101' does not offer search algorithm 'prune'; it offers: evolution"):
        get_algorithm("prune", get_card("nb101"))
    # the door refuses it the same way, before any work
    with pytest.raises(ValueError, match="unknown search algorithm 'anneal'; choose one of: prune, sample, evolution"):
        search("nb201", "anneal")


def test_the_registry_declares_each_algorithms_settings_and_flags():
    assert list(ALGORITHMS) == ["prune", "sample", "evolution"]
    for name, algorithm in ALGORITHMS.items():
        fields = {f.name for f in dataclasses.fields(algorithm.settings)}
        assert set(algorithm.flags) <= fields, name
        assert algorithm.settings().__dataclass_params__.frozen
    assert [n for n, a in ALGORITHMS.items() if a.constrained] == ["evolution"]


def test_the_door_refuses_another_algorithms_settings(tmp_path):
    with pytest.raises(TypeError, match="search algorithm 'sample' takes SampleSettings, got PruneSettings"):
        search("nb201", "sample", SearchSettings(), PruneSettings())


# --- the door gives the command line's result, without a namespace -------------------------------------
def _files(tmp_path, name):
    return OutputSettings(results=str(tmp_path / "scores.jsonl"), checkpoint=str(tmp_path / f"{name}.ckpt.json"),
                          output=str(tmp_path / f"{name}.json"))


def test_the_library_door_and_the_command_give_the_same_sample_search(tmp_path, data_root, capsys):
    lines = []
    settings = SearchSettings(proxies=("params",), execution=Execution(workers=0), data_root=str(data_root),
                              outputs=_files(tmp_path, "door"))
    report = search("nb201", "sample", settings, SampleSettings(samples=4, seed=2), echo=lines.append)
    assert json.loads((tmp_path / "door.json").read_text()) == json.loads(json.dumps(report))
    assert lines[0].startswith("search nb201 / cifar10: sample {'samples': 4, 'seed': 2}")
    assert report["header"]["algorithm_settings"] == {"samples": 4, "seed": 2}
    argv = ["search", "--space", "nb201", "--algorithm", "sample", "--samples", "4", "--search-seed", "2",
            "--proxy", "params", "--workers", "0", "--no-progress", "--data-root", str(data_root),
            "--results", str(tmp_path / "scores.jsonl"), "--checkpoint", str(tmp_path / "cli.ckpt.json"),
            "--output", str(tmp_path / "cli.json")]
    assert main(argv) == 0
    command = json.loads((tmp_path / "cli.json").read_text())
    for key in ("arch", "proxy_score", "params", "flops", "ground_truth", "networks_scored", "scores"):
        assert command[key] == report[key], key
    assert command["networks_scored_now"] == 0  # the door's run stored them all


def test_the_library_door_runs_a_population_search(tmp_path):
    settings = SearchSettings(proxies=("params",), execution=Execution(workers=0), outputs=_files(tmp_path, "evo"))
    report = search("burgerformer", "evolution", settings, EvolutionSettings(population_size=2, steps=1))
    assert report["evaluated"] == 3 and report["proxy"] == "params" and report["images"] is None
    best = report["best"][0]
    space = get_card("burgerformer").create_space()
    assert best["fitness"] == best["params"] == space.count_params(space.decode(best["arch"]), num_classes=1000)
    assert (tmp_path / "evo.ckpt.json").exists()


# --- the card fields that replaced name checks and hasattr ---------------------------------------------
def test_the_finite_size_of_nb201_is_its_list_of_cells():
    card = get_card("nb201")
    assert card.size == len(card.create_space().all_archs()) == 15625
    assert get_card("darts").size is None
    from xigsnr_naslib.search.zero_shot import check_samples

    with pytest.raises(ValueError, match="--samples 15626 exceeds the 15625 architectures of space 'nb201'"):
        check_samples(card, 15626)


def test_a_card_validation_ground_truth_is_reported_as_valid():
    """describe_architecture reports every dataset's test accuracy and, where the dataset card
    declares one, a validation accuracy, with ranks counted in each table (closed form here)."""
    from xigsnr_naslib.search.zero_shot import describe_architecture

    card = get_card("nb201")
    space = card.create_space()
    archs = [space.encode(a) for a in space.all_archs()[:4]]

    def table(values):
        return pd.DataFrame({"arch": archs, "accuracy": values}, index=range(4))

    tests, valids = [90.0, 93.0, 91.0, 92.0], [80.0, 70.0, 85.0, 60.0]
    cifar10 = dataclasses.replace(card.dataset("cifar10"), validation_ground_truth=lambda root: table(valids))
    other = dataclasses.replace(card, datasets={"cifar10": cifar10, "cifar100": card.dataset("cifar100")},
                                ground_truth=lambda dataset, root, accuracy: table(tests))
    out = describe_architecture(other, cifar10, space, space.decode(archs[3]))
    assert out["ground_truth"]["cifar10"]["rank"] == 2 and out["ground_truth"]["cifar10"]["top_percent"] == 50.0
    assert out["ground_truth"]["cifar10"]["valid"]["rank"] == 4 and out["ground_truth"]["cifar10"]["valid"]["of"] == 4
    assert "valid" not in out["ground_truth"]["cifar100"]  # no validation table declared for it


def test_the_darts_evaluation_network_checks_its_parameter_count(monkeypatch):
    """The DARTS card's evaluation network is the paper's 36-channel, 20-cell network; its built
    parameter count must equal the NDS closed form, else a RuntimeError names both counts."""
    from xigsnr_naslib.benchmarks.nds import card as nds_card
    from xigsnr_naslib.benchmarks.nds.space import count_nds_params
    from xigsnr_naslib.core.complexity import count_params

    card = get_card("darts")
    space = card.create_space()
    import random

    arch = space.sample(random.Random(0))
    model, description = card.evaluation_network(space, arch, 10)
    assert description == {"width": 36, "depth": 20}
    assert count_params(model) == count_nds_params(space.evaluation_net(arch), 10, "cifar")
    monkeypatch.setattr(nds_card, "count_nds_params", lambda net, classes, stem: 1)
    with pytest.raises(RuntimeError, match="the built network has [0-9]+ parameters, the NDS count gives 1"):
        card.evaluation_network(space, arch, 10)


def test_a_card_declares_its_search_report():
    assert get_card("nb201").search_report == get_card("darts").search_report == "architecture"
    assert get_card("nb101").search_report == get_card("burgerformer").search_report == "population"
    assert get_card("darts").genotype_json and not get_card("nb201").genotype_json
    with pytest.raises(ValueError, match="unknown search report 'table' of card 'nb201'; choose one of: population, "
                                         "architecture"):
        dataclasses.replace(get_card("nb201"), search_report="table")


def test_a_card_declares_the_papers_constraints_and_refuses_others():
    assert dict(get_card("burgerformer").paper_constraints) == {"max_params": 30e6, "max_flops": 5e9}
    assert not get_card("nb201").paper_constraints
    given = {"max_flops": 1e6}
    card = dataclasses.replace(get_card("nb201"), paper_constraints=given)
    given["max_flops"] = 2.0
    assert card.paper_constraints == {"max_flops": 1e6}  # a copy: the caller's dict stays theirs
    with pytest.raises(TypeError):
        card.paper_constraints["max_flops"] = 3.0  # read-only, as the card is frozen
    for bad, message in [({"max_flop": 1e6}, "unknown size bound 'max_flop' in paper_constraints of card 'nb201'; "
                                             "choose one of: max_flops, min_flops, max_params, min_params"),
                         ({"max_params": -1.0}, r"paper_constraints\['max_params'\] must be a finite number >= 0, "
                                                "got -1.0"),
                         ({"max_params": "30M"}, r"paper_constraints\['max_params'\] must be a finite number"),
                         ({"max_params": float("nan")}, r"paper_constraints\['max_params'\] must be a finite number"),
                         ([1, 2], "paper_constraints must be a mapping of size bounds")]:
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(get_card("nb201"), paper_constraints=bad)
