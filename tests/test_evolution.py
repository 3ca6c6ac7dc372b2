"""Regularized evolution: constraints before scoring, reproducibility, resume, and real progress."""
import dataclasses
import json
import math
import random
from collections import Counter

import pytest

from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.search.evolution import (
    Constraints,
    EvolutionSettings,
    RegularizedEvolution,
    arch_size,
    parse_amount,
)
from xigsnr_naslib.data.image_folder import synthetic_images
from xigsnr_naslib.data.protocol import Protocol, draw_batches
from xigsnr_naslib.proxies import get_proxy
from xigsnr_naslib.benchmarks import create_space
from xigsnr_naslib.scoring.study import ArchitectureScorer, Study, build_model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def space():
    return create_space("proxylessnas_xigsnr")


def _params_fitness(space, calls=None):
    def fitness(arch):
        if calls is not None:
            calls.append(arch)
        return float(space.count_params(arch))

    return fitness


def test_constraints_are_checked_before_scoring(space):
    calls = []
    cap = Constraints(max_flops=330e6, min_flops=300e6)
    result = RegularizedEvolution(space, _params_fitness(space, calls), EvolutionSettings(population_size=8,
                                                                                          steps=40, sample_size=4,
                                                                                          seed=0),
                                  constraints=cap, progress=False).run()
    assert len(result.history) == 48
    assert calls, "nothing was scored"
    for arch in calls:  # every network that reached the fitness satisfies the bounds
        flops = space.count_flops(arch)
        assert 300e6 <= flops <= 330e6
    for c in result.history:
        assert cap.violations(c.flops, c.params) == []
        assert (c.flops, c.params) == arch_size(space, space.decode(c.arch))
    # identical architectures are scored once
    assert len(calls) == len({space.encode(a) for a in calls}) == len({c.arch for c in result.history})


def test_unsatisfiable_constraints_are_reported(space):
    search = RegularizedEvolution(space, _params_fitness(space), EvolutionSettings(population_size=4, steps=0,
                                                                                   max_tries=50),
                                  constraints=Constraints(max_flops=1e6), progress=False)
    with pytest.raises(ValueError, match="no architecture within the constraints after 50 draws"):
        search.run()


def test_search_beats_random_sampling_on_a_proxy_with_known_optimum(space):
    """Fitness = parameter count. Unconstrained, its maximum is every layer k7e6."""
    optimum = space.count_params(("k7e6",) * space.num_layers)
    budget = 16 + 200
    result = RegularizedEvolution(space, _params_fitness(space), EvolutionSettings(population_size=16, steps=200,
                                                                                   sample_size=4, seed=0),
                                  progress=False).run()
    rng = random.Random(0)
    random_best = max(space.count_params(space.sample(rng)) for _ in range(budget))
    best = result.best(1)[0]
    assert best.fitness > random_best
    assert best.fitness >= 0.975 * optimum  # random sampling of the same budget reaches about 0.93
    assert (best.fitness - random_best) / (optimum - random_best) > 0.6
    # under a FLOPs cap the search still beats random sampling of the same budget, within the cap
    cap = Constraints(max_flops=350e6)
    capped = RegularizedEvolution(space, _params_fitness(space), EvolutionSettings(population_size=16, steps=200,
                                                                                   sample_size=4, seed=0),
                                  constraints=cap, progress=False).run()
    feasible = [a for a in (space.sample(rng) for _ in range(20 * budget)) if space.count_flops(a) <= 350e6][:budget]
    assert len(feasible) == budget
    assert capped.best(1)[0].fitness > max(space.count_params(a) for a in feasible)
    assert capped.best(1)[0].flops <= 350e6


def test_seeded_runs_are_reproducible(space):
    def run(seed):
        return RegularizedEvolution(space, _params_fitness(space), EvolutionSettings(population_size=6, steps=20,
                                                                                     sample_size=3,
                                                                                     crossover_rate=0.5,
                                                                                     mutation_rate=0.2, seed=seed),
                                    progress=False).run().history

    first, again, other = run(3), run(3), run(4)
    assert first == again
    assert [c.arch for c in first] != [c.arch for c in other]


def test_resume_continues_exactly_where_an_uninterrupted_run_ends(space, tmp_path):
    evo = dict(population_size=6, steps=24, sample_size=3, crossover_rate=0.5, seed=1, checkpoint_every=5)
    reference = RegularizedEvolution(space, _params_fitness(space), EvolutionSettings(**evo), progress=False).run()

    calls = []

    def interrupted(arch):
        if len(calls) == 17:
            raise KeyboardInterrupt
        calls.append(arch)
        return float(space.count_params(arch))

    ckpt = tmp_path / "population.json"
    with pytest.raises(KeyboardInterrupt):
        RegularizedEvolution(space, interrupted, EvolutionSettings(**evo), checkpoint=ckpt, progress=False).run()
    assert ckpt.exists()
    resumed_calls = []
    resumed = RegularizedEvolution(space, _params_fitness(space, resumed_calls), EvolutionSettings(**evo),
                                   checkpoint=ckpt, progress=False).run()
    assert resumed.history == reference.history
    assert [c.arch for c in resumed.population] == [c.arch for c in reference.population]
    assert len(resumed_calls) < len({c.arch for c in reference.history})  # finished work was not redone
    # a checkpoint of other settings is refused, not silently mixed
    with pytest.raises(ValueError, match=r"written with other seed \(seed: 1 then, 2 now\); use another checkpoint"):
        RegularizedEvolution(space, _params_fitness(space), EvolutionSettings(**{**evo, "seed": 2}), checkpoint=ckpt,
                             progress=False).run()


def test_non_finite_fitness_is_recorded_and_never_wins(space):
    def fitness(arch):
        return math.nan if arch[0] == "k7e6" else float(space.count_params(arch))

    result = RegularizedEvolution(space, fitness, EvolutionSettings(population_size=8, steps=30, sample_size=4,
                                                                    seed=0),
                                  progress=False).run()
    nan = [c for c in result.history if c.fitness is None]
    assert nan and all(space.decode(c.arch)[0] == "k7e6" for c in nan)
    assert all(space.decode(c.arch)[0] != "k7e6" for c in result.best(5))


def test_a_busy_results_file_stops_the_search_instead_of_failing_the_child(space):
    """A results file held by another run says nothing about the network: recording the child
    as failed (as a broken network is) would make the outcome depend on another process's timing."""
    import warnings

    from xigsnr_naslib.scoring.results import StoreBusyError

    calls = []

    def fitness(arch):
        calls.append(arch)
        if len(calls) == 3:
            raise StoreBusyError("results file s.jsonl is being written by another run")
        return float(space.count_params(arch))

    search = RegularizedEvolution(space, fitness, EvolutionSettings(population_size=4, steps=4, sample_size=2, seed=0),
                                  progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "fitness failed" warning would turn into an error here
        with pytest.raises(StoreBusyError, match="another run"):
            search.run()
    assert len(calls) == 3  # stopped at once


def test_best_are_distinct_encodings_that_rebuild_the_networks(space):
    result = RegularizedEvolution(space, _params_fitness(space), EvolutionSettings(population_size=4, steps=30,
                                                                                   sample_size=2, seed=0),
                                  progress=False).run()
    # no bound: nothing measured while searching (a space without closed forms would build each child twice)
    assert all(c.flops is None and c.params is None for c in result.history)
    best = result.best(5, sizes=lambda code: arch_size(space, space.decode(code)))
    assert len({c.arch for c in best}) == len(best) == 5
    assert [c.fitness for c in best] == sorted((c.fitness for c in best), reverse=True)
    for c in best:  # the reported ones are measured on request
        model = space.build(space.decode(c.arch))
        assert sum(p.numel() for p in model.parameters()) == c.params and c.flops > 0


def _tiny_study(name, proxies, protocol, images, store=None):
    """A study of ``name`` at 32 x 32 with 10 classes, scored on ``images``."""
    card = get_card(name)
    dataset = dataclasses.replace(card.dataset(), num_classes=10, resolution=32)
    return Study(card, dataset, proxies, protocol, store=store, images=images, space_options={"resolution": 32})


@pytest.mark.slow  # two searches of ImageNet-sized networks, each about 4 s
@pytest.mark.parametrize("name", ["proxylessnas_xigsnr", "burgerformer"])
def test_tiny_xi_gsnr_search_on_synthetic_images_is_reproducible(name):
    images = synthetic_images(16, 32, num_classes=10, seed=0)
    protocol = Protocol(n_batches=2, batch_size=8, data_seed=1, init_seed=1, normalization="imagenet")
    cap = Constraints(max_params=8e6, resolution=32, num_classes=10)

    def run():
        study = _tiny_study(name, ["xi_gsnr"], protocol, images)
        return study, RegularizedEvolution(study.space, study, EvolutionSettings(population_size=3, steps=2,
                                                                                 sample_size=2, seed=0),
                                           constraints=cap, progress=False).run()

    (study, first), (_, second) = run(), run()
    assert [(c.arch, c.fitness) for c in first.history] == [(c.arch, c.fitness) for c in second.history]
    assert all(c.fitness is not None and c.fitness > 0 for c in first.history)
    assert all(c.params <= 8e6 for c in first.history)
    # the fitness is the proxy's score of the network built with the protocol's init seed on its batches
    space, c = study.space, first.history[0]
    batches = draw_batches(images, protocol, "imagenet")
    assert c.fitness == get_proxy("xi_gsnr")(build_model(space, space.decode(c.arch), 10, protocol.init_seed), batches)
    # the study's settings are the run's: a checkpoint resumes only under them
    settings = first.settings["fitness"]
    assert settings == study.settings()
    assert settings["protocol"] == protocol.settings() and settings["images"] == images.fingerprint()
    assert settings["proxies"] == {"xi_gsnr": get_proxy("xi_gsnr").settings}


def test_amounts_parse():
    assert parse_amount("400M") == 400e6 and parse_amount("5G") == 5e9 and parse_amount("3e7") == 3e7
    assert parse_amount(None) is None and parse_amount(12) == 12.0
    with pytest.raises(ValueError, match="not an amount"):
        parse_amount("lots")


def test_study_fitness_needs_images_for_data_proxies(space, tmp_path):
    study = Study("proxylessnas_xigsnr", None, ["xi_gsnr"], data_root=tmp_path)  # no ImageNet there
    with pytest.raises(MissingDataError, match="no imagenet images under the data root"):
        RegularizedEvolution(space, study, EvolutionSettings(population_size=2, steps=0), progress=False)
    too_few = synthetic_images(4, 32, num_classes=10, seed=0)
    study = _tiny_study("proxylessnas_xigsnr", ["xi_gsnr"], Protocol(n_batches=2, batch_size=8), too_few)
    with pytest.raises(ValueError, match="a batch of 8 needs at least that many images"):
        study.fitness(space.sample(random.Random(0)))
    params = Study("proxylessnas_xigsnr", None, ["params"], data_root=tmp_path)  # reads no image
    arch = space.sample(random.Random(0))
    assert params.fitness(arch) == space.count_params(arch)
    assert params.settings()["protocol"] == {} and params.settings()["images"] is None


def test_constraints_are_counted_at_their_own_resolution():
    from xigsnr_burgerformer import BURGERFORMER_TINY

    low = create_space("burgerformer", resolution=32)
    arch = low.decode(BURGERFORMER_TINY)  # has a spatial MLP, whose size follows the resolution
    full = create_space("burgerformer")
    assert arch_size(low, arch, 224) == (full.count_flops(arch), full.count_params(arch))
    assert arch_size(low, arch) == (low.count_flops(arch), low.count_params(arch)) != arch_size(low, arch, 224)


@pytest.mark.slow  # a search of ten full-size NB201 networks, each built again to check its count
def test_any_registered_space_can_be_searched():
    """NAS-Bench-201 has no closed-form FLOPs and a mutate without ``rate``: both are handled."""
    nb201 = create_space("nb201")
    cap = Constraints(max_params=0.5e6, resolution=32, num_classes=10)
    result = RegularizedEvolution(nb201, lambda arch: float(arch.count("nor_conv_3x3")), EvolutionSettings(
                                                                                                           population_size=4,
                                                                                                           steps=6,
                                                                                                           sample_size=2,
                                                                                                           mutation_rate=0.5,
                                                                                                           seed=0),
                                  constraints=cap, progress=False).run()
    assert len(result.history) == 10
    for c in result.history:
        model = nb201.build(nb201.decode(c.arch), num_classes=10)
        assert c.params == sum(p.numel() for p in model.parameters()) <= 0.5e6


# --- a Study as the fitness: checkpointed settings, and the store behind a resumed search ----------

NB201_TINY = {"channels": 4, "cells_per_stage": 1}


def _nb201_study(protocol=Protocol(n_batches=2, batch_size=4), proxies=("xi_gsnr",), store=None):
    return Study("nb201", "cifar10", list(proxies), protocol, store=store,
                 images=synthetic_images(16, 16, num_classes=10, seed=0), space_options=NB201_TINY)


SEARCH = dict(population_size=6, sample_size=3, crossover_rate=0.5, mutation_rate=0.5, seed=1, checkpoint_every=5)


def test_a_changed_study_setting_is_refused_naming_the_field(tmp_path):
    ckpt = tmp_path / "population.json"
    study = _nb201_study()
    RegularizedEvolution(study.space, study, EvolutionSettings(steps=2, **SEARCH),
                         checkpoint=ckpt, progress=False).run()
    assert json.loads(ckpt.read_text())["settings"]["fitness"] == json.loads(json.dumps(study.settings()))
    for changed, field in [(dict(protocol=Protocol(n_batches=3, batch_size=4)), "fitness.protocol.n_batches"),
                           (dict(protocol=Protocol(n_batches=2, batch_size=4, init_seed=2)),
                            "fitness.protocol.init_seed"),
                           (dict(protocol=Protocol(n_batches=2, batch_size=4, data_seed=2)),
                            "fitness.protocol.data_seed"),
                           (dict(proxies=["xi_gsnr_paper"]), "fitness.proxies")]:
        other = _nb201_study(**changed)
        with pytest.raises(ValueError, match=rf"checkpoint .* was written with other .*{field}") as error:
            RegularizedEvolution(other.space, other, EvolutionSettings(steps=2, **SEARCH),
                                 checkpoint=ckpt, progress=False).run()
        assert "use another checkpoint file or the same settings" in str(error.value)
    # the same settings resume (more steps are not a change of settings)
    again = _nb201_study()
    assert len(RegularizedEvolution(again.space, again, EvolutionSettings(steps=4, **SEARCH),
                                    checkpoint=ckpt, progress=False).run().history) == 10


def test_a_resumed_search_scores_no_architecture_twice(tmp_path, monkeypatch):
    reference_study = _nb201_study()
    reference = RegularizedEvolution(reference_study.space, reference_study, EvolutionSettings(steps=14, **SEARCH),
                                     progress=False).run()

    scored = []
    real = ArchitectureScorer.records

    def counting(self, index, arch, proxy_names=None):
        if interrupt_after is not None and len(scored) == interrupt_after:
            raise KeyboardInterrupt
        scored.append(self.space.encode(arch))
        return real(self, index, arch, proxy_names)

    monkeypatch.setattr(ArchitectureScorer, "records", counting)
    ckpt, store = tmp_path / "population.json", tmp_path / "scores.jsonl"
    interrupt_after = 8  # after the checkpoint of 5 architectures, before the next one
    study = _nb201_study(store=store)
    with pytest.raises(KeyboardInterrupt):
        RegularizedEvolution(study.space, study, EvolutionSettings(steps=14, **SEARCH),
                             checkpoint=ckpt, progress=False).run()
    assert len(json.loads(ckpt.read_text())["history"]) < len(set(scored)) == 8  # scored after the checkpoint
    interrupt_after = None
    study = _nb201_study(store=store)
    resumed = RegularizedEvolution(study.space, study, EvolutionSettings(steps=14, **SEARCH),
                                   checkpoint=ckpt, progress=False).run()
    assert resumed.history == reference.history
    assert len(scored) == len(set(scored)) == len({c.arch for c in reference.history})  # each once, all told
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert Counter(r["arch"] for r in records) == Counter(set(scored))  # the store holds each once
    assert {r["arch"] for r in records} == {c.arch for c in reference.history}
