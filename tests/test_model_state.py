"""Scoring a caller's network: the protocol's state whatever state the caller left it in, and the
network given back exactly as found.

Every public door (``get_proxy(name)(model, batches)`` for every registered proxy, the
estimator ``XiGSNR().score``, ``score_jointly``, ``xi_gsnr_all``, ``zico``, ``zen_score``,
``count_flops``, ``run_passes``) must

* score the network in train mode (BatchNorm normalises with each batch's statistics), every
  parameter counted as trainable, whatever modes, frozen flags, ``.grad`` and running statistics
  the caller left: the score equals that of the freshly built train-mode network a study scores;
* leave the caller's network exactly as found: the mode of every module, every parameter and
  buffer bit for bit (and the same objects), ``requires_grad``, ``.grad`` (None stays None, an
  existing tensor stays the same object with the same values).

Exact equality of scores is justified: both scores are computed in the same process, on the same
machine, with the same thread count, from networks that the door puts in the same state (same
weights, train mode, every parameter differentiable, no ``.grad``); so the same floating-point
operations run on the same values in the same order and give the same bits. A tolerance would
hide exactly the faults looked for (an eval-mode BatchNorm moves xi-GSNR by 1e-6 relative on some
networks).
"""
import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import proxies as proxies_module
from xigsnr_naslib.core.complexity import count_flops
from xigsnr_naslib.core.gradients import scoring_state
from xigsnr_naslib.core.gsnr import XiGSNR, joint_gradient_moments, score_jointly, score_moments, xi_gsnr_all
from xigsnr_naslib.passes import BatchGradients, NotComputable
from xigsnr_naslib.proxies import Moments, Proxy, get_proxy, list_proxies, run_passes
from xigsnr_naslib.benchmarks.nb201.space import NB201Network
from xigsnr_naslib.proxies.zico import zico
from xigsnr_naslib.proxies.zoo.zen import zen_score
from xigsnr_naslib.registry import registered

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"
CALLER_MODES = ("train", "eval", "mixed")
#: the fast loop (-m "not slow") checks every proxy and door with the caller's network in "mixed"
#: modes (train, with BatchNorm layers and a cell in eval: a door that scores in the caller's modes,
#: or restores only the top module's mode, fails it); "train" and "eval" run in the full suite
FAST_MODE = "mixed"


def caller_modes():
    return [pytest.param(mode, marks=() if mode == FAST_MODE else pytest.mark.slow) for mode in CALLER_MODES]


def tiny(arch=ARCH, channels=4, cells=1):
    """A small NB201 network: BatchNorm, ReLU, feature stages and global pooling (every proxy
    applies), freshly built and in train mode, as a study builds it."""
    torch.manual_seed(1)
    return NB201Network(arch, num_classes=10, channels=channels, cells_per_stage=cells).train()


def noise(n=2, images=16, hw=8, seed=0):
    """``n`` batches of ``images`` (16: SWAP reads 16) Gaussian images ``3 x hw x hw``, labels of 10 classes."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(images, 3, hw, hw, generator=g), torch.randint(0, 10, (images,), generator=g))
            for _ in range(n)]


def as_left_by_a_caller(model, mode, batches):
    """``model`` as a caller might leave it: running statistics moved by a training forward, a
    ``.grad`` on some parameters (one of them frozen), parameters frozen, and the modules in
    ``mode`` ("train", "eval", or "mixed": train with some BatchNorm layers and a cell in eval)."""
    with torch.no_grad():
        model.train()(batches[0][0] * 3 + 1)  # running statistics no longer those of a fresh network
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(7)
    params["stem.0.weight"].grad = torch.randn(params["stem.0.weight"].shape, generator=g)
    params["classifier.bias"].grad = torch.randn(params["classifier.bias"].shape, generator=g)
    for name in ("stem.1.weight", "cells.0.edges.1.1.weight", "classifier.bias"):
        params[name].requires_grad_(False)
    if mode == "eval":
        model.eval()
    elif mode == "mixed":
        model.train()
        model.stem[1].eval()
        model.cells[1].eval()
        model.lastact.eval()
    return model


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def state_of(model: nn.Module) -> dict:
    """Everything the caller can see: module modes, parameters and buffers (bits and objects),
    ``requires_grad``, ``.grad`` (object and bits)."""
    params = dict(model.named_parameters())
    return {
        "modes": [(n, m.training) for n, m in model.named_modules()],
        "objects": {n: id(t) for n, t in [*params.items(), *model.named_buffers()]},
        "values": {n: (t.dtype, tuple(t.shape), _bits(t).clone()) for n, t in [*params.items(), *model.named_buffers()]},
        "requires_grad": {n: p.requires_grad for n, p in params.items()},
        "grad": {n: None if p.grad is None else (id(p.grad), _bits(p.grad).clone()) for n, p in params.items()},
    }


def assert_same_state(before: dict, after: dict) -> None:
    assert after["modes"] == before["modes"]
    assert after["objects"] == before["objects"]
    assert after["requires_grad"] == before["requires_grad"]
    for name, (dtype, shape, bits) in before["values"].items():
        got = after["values"][name]
        assert (got[0], got[1]) == (dtype, shape) and torch.equal(got[2], bits), name
    for name, grad in before["grad"].items():
        got = after["grad"][name]
        assert (got is None) == (grad is None), name
        if grad is not None:
            assert got[0] == grad[0] and torch.equal(got[1], grad[1]), name


def score_of(door, model, batches):
    """A door's value, or the reason it is not computable (compared as such)."""
    torch.manual_seed(5)  # the same global generator state for every call (no registered proxy reads it)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return door(model, batches)
        except NotComputable as exc:
            return f"not computable: {exc}"


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


_REFERENCE: dict = {}


def reference(name, build, batches):
    """The proxy's score of the freshly built train-mode network (what a study records), once."""
    if name not in _REFERENCE:
        _REFERENCE[name] = score_of(get_proxy(name), build(), batches)
    return _REFERENCE[name]


# --- every registered proxy -----------------------------------------------------------------------

@pytest.mark.parametrize("mode", caller_modes())
@pytest.mark.parametrize("name", list_proxies())
def test_every_proxy_scores_the_protocol_state_and_leaves_the_network_as_found(name, mode):
    batches = noise()
    model = as_left_by_a_caller(tiny(), mode, batches)
    before = state_of(model)
    got = score_of(get_proxy(name), model, batches)
    assert_same_state(before, state_of(model))
    expected = reference(name, tiny, batches)
    assert same(got, expected), (name, mode, got, expected)


def test_the_doors_check_every_registered_proxy():
    # the parametrisation above reads the registry when the tests are collected: nothing is left out
    assert len(list_proxies()) >= 36 and {"xi_gsnr", "zico", "ensemble", "vkdnw_single", "zen"} <= set(list_proxies())


# --- the estimator and the other public functions --------------------------------------------------

DOORS = {
    "XiGSNR().score": lambda m, b: XiGSNR().score(m, b),
    "XiGSNR(paper, all).score": lambda m, b: XiGSNR(mode="paper", params="all").score(m, b),
    "XiGSNR(per_sample).score": lambda m, b: XiGSNR(mode="per_sample").score(m, b[:1]),
    "XiGSNR(vmap).score": lambda m, b: XiGSNR(strategy="vmap").score(m, b),
    "score_jointly": lambda m, b: tuple(score_jointly([XiGSNR(), XiGSNR(mode="paper", params="all")], m, b)),
    "xi_gsnr_all": lambda m, b: tuple(sorted(xi_gsnr_all(m, b).items())),
    "joint_gradient_moments": lambda m, b: score_moments(joint_gradient_moments(m, b)["official"]),
    "zico": lambda m, b: zico(m, b),
    "zen_score": lambda m, b: zen_score(m, (3, 8, 8), batch_size=4, seed=3),
    "count_flops": lambda m, b: count_flops(m, (3, 8, 8)),
    "run_passes": lambda m, b: run_passes(m, b, F.cross_entropy, [BatchGradients(0)])[BatchGradients(0)].loss,
}


@pytest.mark.parametrize("mode", caller_modes())
@pytest.mark.parametrize("door", list(DOORS))
def test_the_estimator_and_every_public_function_score_in_train_mode_and_leave_the_network(door, mode):
    batches = noise()
    model = as_left_by_a_caller(tiny(), mode, batches)
    before = state_of(model)
    got = score_of(DOORS[door], model, batches)
    assert_same_state(before, state_of(model))
    assert same(got, score_of(DOORS[door], tiny(), batches)), door


def test_an_eval_mode_network_gave_another_score_before_the_door_set_train_mode():
    """The fault the doors fix, shown on the samplers (which use a network as given): xi-GSNR of
    the same network in eval mode is another number, and train mode moves running statistics."""
    from xigsnr_naslib.core.gradients import accumulated_batch_gradients
    from xigsnr_naslib.core.gsnr import select_parameters
    from xigsnr_naslib.core.statistics import RunningMoments

    batches = noise()

    def raw(model):
        selected = select_parameters(model)
        moments = RunningMoments([n for n, _ in selected])
        for grads in accumulated_batch_gradients(model, batches, F.cross_entropy, [p for _, p in selected]):
            moments.update(grads)
        return score_moments(moments)

    trained = tiny()
    as_given_eval = raw(tiny().eval())
    as_given_train = raw(trained)
    assert as_given_eval != as_given_train
    assert not torch.equal(trained.stem[1].running_mean, tiny().stem[1].running_mean)
    assert XiGSNR().score(tiny().eval(), batches) == as_given_train


def test_update_batchnorm_stats_keeps_the_statistics_and_restores_the_rest():
    batches = noise()
    model = as_left_by_a_caller(tiny(), "eval", batches)
    before = state_of(model)
    stats = model.stem[1].running_mean.clone()
    moments = joint_gradient_moments(model, batches, update_batchnorm_stats=True)
    after = state_of(model)
    # what was asked for: the statistics moved with every batch (train mode), nothing else changed
    assert not torch.equal(model.stem[1].running_mean, stats)
    assert int(model.stem[1].num_batches_tracked) == int(before["values"]["stem.1.num_batches_tracked"][2]
                                                          .view(torch.int64)) + len(batches)
    after["values"] = {n: v for n, v in after["values"].items() if "running" not in n and "tracked" not in n}
    before["values"] = {n: v for n, v in before["values"].items() if n in after["values"]}
    assert_same_state(before, after)
    assert score_moments(moments["official"]) == XiGSNR().score(tiny(), batches)


# --- proxies of the caller's own -----------------------------------------------------------------

def _abs_weights_then_score(model, batches, loss_fn):
    """A function proxy that changes its network (allowed: it gets a network of its own)."""
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.eval()
    return float(sum(p.detach().sum() for p in model.parameters()))


def test_a_function_proxy_and_an_ensemble_member_score_a_copy():
    own = proxies_module.function_proxy("abs_sum_for_test", _abs_weights_then_score)
    derived = Proxy("derived_for_test", lambda v: v["abs_sum_for_test"] + v["xi_gsnr"],
                    members=("abs_sum_for_test", "xi_gsnr"))
    batches = noise()
    expected = float(sum(p.detach().abs().sum() for p in tiny().parameters()))
    with registered(own):
        for proxy, value in [(own, expected), (derived, expected + XiGSNR().score(tiny(), batches))]:
            for mode in CALLER_MODES:
                model = as_left_by_a_caller(tiny(), mode, batches)
                before = state_of(model)
                assert proxy(model, batches) == value
                assert_same_state(before, state_of(model))


def test_a_proxy_that_changes_the_callers_network_in_place_is_refused():
    def scale(results):
        with torch.no_grad():
            results.model.classifier.weight.mul_(2)
        return 0.0

    model = tiny()
    with pytest.raises(RuntimeError, match="changed parameter 'classifier.weight'.*fresh_model=True"):
        Proxy("scales_in_place", scale, (Moments("cumulative"),))(model, noise())
    assert model.training and model.classifier.weight.requires_grad


def test_the_state_is_given_back_after_an_exception_and_nested_doors_restore_their_mode():
    batches = noise()
    model = as_left_by_a_caller(tiny(), "mixed", batches)
    before = state_of(model)
    with pytest.raises(ZeroDivisionError):
        with scoring_state(model):
            assert all(m.training for m in model.modules())
            assert all(p.requires_grad and p.grad is None for p in model.parameters())
            with scoring_state(model, "eval"):  # nested (count_flops inside a proxy): the mode only
                assert not any(m.training for m in model.modules())
            assert all(m.training for m in model.modules())
            model(batches[0][0]).sum().backward()
            1 / 0
    assert_same_state(before, state_of(model))
    with pytest.raises(ValueError, match="unknown scoring mode 'test'; choose one of: train, eval"):
        with scoring_state(model, "test"):
            pass


# --- a NAS-Bench-201 network of the benchmark's size ---------------------------------------------

@pytest.mark.slow  # every registered proxy on a full NB201 network, twice: about a minute on one core
def test_every_proxy_on_an_nb201_network_left_in_eval_mode():
    batches = noise(n=2, images=16, hw=32)

    def build():
        return tiny(channels=16, cells=5)

    for name in list_proxies():
        model = as_left_by_a_caller(build(), "eval", batches)
        before = state_of(model)
        got = score_of(get_proxy(name), model, batches)
        assert_same_state(before, state_of(model))
        expected = score_of(get_proxy(name), build(), batches)
        assert same(got, expected), (name, got, expected)
