"""The estimator against closed-form gradients, an independent NumPy computation, and itself."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import XiGSNR, gradient_moments, score_moments, xi_gsnr
from xigsnr_naslib.core.gsnr import MODES, VARIANTS, select_parameters
from xigsnr_naslib.benchmarks.nb201.space import NB201Network

XI = 1e-3  # large enough that it visibly matters on these tiny gradients

#: NB201 network sizes: a tiny one (4 channels, one cell per stage, 8x8 images) in the fast loop;
#: the benchmark's size (16 channels, five cells per stage, 32x32 CIFAR images) in the full suite
NB201_SIZES = [
    pytest.param({"channels": 4, "cells_per_stage": 1}, 8, id="tiny"),
    pytest.param({"channels": 16, "cells_per_stage": 5}, 32, id="full", marks=pytest.mark.slow),
]


def half_squared_error(out, target):
    return 0.5 * ((out - target) ** 2).sum(dim=1).mean()


@pytest.fixture
def linear_problem():
    """y = W x with MSE: the gradient of a batch is (1/B) sum_i (W x_i - t_i) x_i^T."""
    rng = np.random.default_rng(3)
    W = rng.normal(size=(3, 4))
    xs = rng.normal(size=(5, 6, 4))  # 5 batches of 6 inputs
    ts = rng.normal(size=(5, 6, 3))
    model = nn.Linear(4, 3, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(W))
    batches = [(torch.from_numpy(x), torch.from_numpy(t)) for x, t in zip(xs, ts)]
    return W, xs, ts, model, batches


def closed_form_samples(W, xs, ts, mode):
    per_batch = [np.einsum("bi,bj->ij", x @ W.T - t, x) / len(x) for x, t in zip(xs, ts)]
    if mode == "paper":
        return np.array(per_batch)
    if mode == "official":
        return np.cumsum(per_batch, axis=0)
    x, t = xs[0], ts[0]  # per_sample: the images of the first batch, one by one
    return np.array([np.outer(W @ xi - ti, xi) for xi, ti in zip(x, t)])


def closed_form_score(samples, variant, xi):
    m, v = samples.mean(0), samples.var(0)
    nz = v != 0
    return {
        "xi_gsnr": np.sum(m**2 / (v + xi)),
        "gsnr": np.sum(m[nz] ** 2 / v[nz]),
        "sq_mean": np.sum(m**2),
        "inv_var": np.sum(1 / v[nz]),
        "inv_var_xi": np.sum(1 / (v + xi)),
    }[variant]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_linear_model_matches_closed_form(linear_problem, mode, variant):
    W, xs, ts, model, batches = linear_problem
    if mode == "per_sample":
        batches = batches[:1]
    expected = closed_form_score(closed_form_samples(W, xs, ts, mode), variant, XI)
    got = xi_gsnr(model, batches, half_squared_error, mode=mode, variant=variant, xi=XI)
    assert got == pytest.approx(expected, rel=1e-10)


def test_modes_really_differ(linear_problem):
    _, _, _, model, batches = linear_problem
    scores = {m: xi_gsnr(model, batches, half_squared_error, mode=m) for m in MODES}
    assert len({round(s, 6) for s in scores.values()}) == 3


@pytest.mark.parametrize("size,hw", NB201_SIZES)
def test_streamed_moments_agree_with_two_pass_numpy(size, hw):
    """Released-algorithm style (host copies, np.var) vs the streamed float64 moments."""
    torch.manual_seed(0)
    model = NB201Network("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|", **size)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(16, 3, hw, hw, generator=gen), torch.randint(0, 10, (16,), generator=gen)) for _ in range(4)]
    # independent computation: accumulate without zeroing, copy every gradient to NumPy
    params = select_parameters(model, "conv_linear")
    copies = {n: [] for n, _ in params}
    for x, y in batches:
        F.cross_entropy(model(x), y).backward()
        for n, p in params:
            copies[n].append(p.grad.detach().double().numpy().ravel().copy())
    expected = 0.0
    for n, rows in copies.items():
        g = np.array(rows)
        var = g.var(axis=0)
        if var.any():
            expected += np.sum(g.mean(axis=0) ** 2 / (var + 1e-8))
    model.zero_grad(set_to_none=True)
    got = xi_gsnr(model, batches, mode="official")
    assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("size,hw", NB201_SIZES)
def test_same_seed_same_score_bit_for_bit(size, hw):
    def run():
        torch.manual_seed(7)
        model = NB201Network("|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|", **size)
        gen = torch.Generator().manual_seed(1)
        batches = [(torch.randn(8, 3, hw, hw, generator=gen), torch.randint(0, 10, (8,), generator=gen)) for _ in range(3)]
        return xi_gsnr(model, batches)

    assert run() == run()


class TwoLayers(nn.Module):
    """The second layer's output is multiplied by zero: its weight gradient is always 0."""

    def __init__(self):
        super().__init__()
        self.live = nn.Linear(4, 3, bias=False)
        self.dead = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        return self.live(x) + 0.0 * self.dead(x)


def test_released_layer_skip_rule():
    torch.manual_seed(0)
    model = TwoLayers()
    batches = [(torch.randn(5, 4), torch.randn(5, 3)) for _ in range(4)]
    kept = xi_gsnr(model, batches, half_squared_error, variant="inv_var_xi", xi=XI, layer_skip=True)
    unskipped = xi_gsnr(model, batches, half_squared_error, variant="inv_var_xi", xi=XI, layer_skip=False)
    # without the rule the dead layer adds 12 entries of 1/(0 + xi)
    assert unskipped - kept == pytest.approx(12 / XI, rel=1e-9)
    assert XiGSNR(mode="official").layer_skip and not XiGSNR(mode="paper").layer_skip


def test_parameter_selection():
    # a tiny network has every module kind of the full-size one (convolutions, BatchNorm, linear)
    model = NB201Network("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                         channels=4, cells_per_stage=1)
    conv_linear = select_parameters(model, "conv_linear")
    assert all(n.endswith("weight") for n, _ in conv_linear)
    assert {type(m) for m in model.modules() if any(m.weight is p for _, p in conv_linear if hasattr(m, "weight"))} == {nn.Conv2d, nn.Linear}
    everything = select_parameters(model, "all")
    assert len(everything) == len(list(model.parameters())) > len(conv_linear)
    # the estimator leaves requires_grad as it found it
    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))) for _ in range(2)]
    xi_gsnr(model, batches)
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("size,hw", NB201_SIZES)
def test_all_parameters_add_batchnorm_terms(size, hw):
    torch.manual_seed(0)
    model = NB201Network("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", **size)
    batches = [(torch.randn(8, 3, hw, hw), torch.randint(0, 10, (8,))) for _ in range(3)]
    m_all = gradient_moments(model, batches, params="all")
    m_cl = gradient_moments(model, batches, params="conv_linear")
    assert set(m_cl.means()) < set(m_all.means())
    assert score_moments(m_all) > score_moments(m_cl)


def test_non_finite_gradients_give_nan_and_a_warning():
    model = nn.Linear(4, 3)
    batches = [(torch.full((2, 4), float("nan")), torch.zeros(2, 3)) for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        score = xi_gsnr(model, batches, half_squared_error)
    assert math.isnan(score)


@pytest.mark.parametrize("bad", [dict(mode="eq10"), dict(variant="snr"), dict(params="bn"), dict(xi=-1.0)])
def test_bad_settings_are_named(bad):
    with pytest.raises(ValueError):
        XiGSNR(**bad)


def test_one_sample_is_not_computable():
    from xigsnr_naslib.passes import NotComputable
    model = nn.Linear(4, 3, bias=False)
    with pytest.raises(NotComputable, match="1 gradient sample"):
        xi_gsnr(model, [(torch.randn(3, 4), torch.randn(3, 3))], half_squared_error)


def test_xi_gsnr_takes_layer_skip_and_strategy_as_options_and_names_an_unknown_one():
    with pytest.raises(TypeError, match=r"unknown option 'layer_skp'; choose from: layer_skip, strategy"):
        xi_gsnr(nn.Linear(2, 2), [], layer_skp=False)
    with pytest.raises(ValueError, match="strategy"):  # a known option still reaches the estimator's checks
        xi_gsnr(nn.Linear(2, 2), [], strategy="threads")
