"""Execution strategies against the single-mode estimator: one-pass multi-score, vmap, device scoring."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import XiGSNR, xi_gsnr
from xigsnr_naslib.gradients import (
    accumulated_batch_gradients,
    batchnorm_running_stats_off,
    independent_batch_gradients,
    paired_batch_gradients,
    stacked_batch_gradients,
)
from xigsnr_naslib.gsnr import (
    VARIANTS,
    gradient_moments,
    joint_gradient_moments,
    score_jointly,
    score_moments,
    score_tensor,
    select_parameters,
    xi_gsnr_all,
)
from xigsnr_naslib.spaces.nb201 import NB201Space
from xigsnr_naslib.statistics import StackedMoments, cumulative_sums

from test_estimator import TwoLayers, half_squared_error  # a dead layer (zero variance); MSE

# small NB201 networks: every operation, BatchNorm in train mode, the real cell wiring
SPACE = NB201Space(channels=4, cells_per_stage=1)
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
]


@pytest.fixture(autouse=True)
def _one_thread():
    """These networks are tiny: intra-op threads only add synchronisation (and collapse on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(arch, seed=3):
    torch.manual_seed(seed)
    return SPACE.build(SPACE.decode(arch)).train()


@pytest.fixture
def batches():
    gen = torch.Generator().manual_seed(5)
    return [(torch.randn(6, 3, 16, 16, generator=gen), torch.randint(0, 10, (6,), generator=gen)) for _ in range(4)]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# ---------------------------------------------------------------- one pass, every mode


@pytest.mark.parametrize("arch", ARCHS)
def test_paired_gradients_equal_autograd_accumulation_bit_for_bit(arch, batches):
    model = make_model(arch)
    tensors = [p for _, p in select_parameters(model)]
    paired = [([t.clone() for t in g], [t.clone() for t in G])
              for g, G in paired_batch_gradients(model, batches, F.cross_entropy, tensors)]
    model = make_model(arch)
    tensors = [p for _, p in select_parameters(model)]
    accumulated = [[t.clone() for t in G] for G in accumulated_batch_gradients(model, batches, F.cross_entropy, tensors)]
    model = make_model(arch)
    tensors = [p for _, p in select_parameters(model)]
    independent = [[t.clone() for t in g] for g in independent_batch_gradients(model, batches, F.cross_entropy, tensors)]
    assert len(paired) == len(batches)
    for (g, G), G_ref, g_ref in zip(paired, accumulated, independent):
        for a, b in zip(G, G_ref):
            assert torch.equal(a, b)
        for a, b in zip(g, g_ref):
            assert torch.equal(a, b)
    # and the running sum really is a sum (not the last batch gradient)
    assert not torch.equal(paired[-1][0][0], paired[-1][1][0])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("params", ["conv_linear", "all"])
def test_one_pass_every_mode_and_variant_equals_single_estimator(arch, params, batches):
    joint = xi_gsnr_all(make_model(arch), batches, params=params, xi=1e-6)
    assert set(joint) == {(m, v) for m in ("official", "paper") for v in VARIANTS}
    for (mode, variant), value in joint.items():
        single = xi_gsnr(make_model(arch), batches, mode=mode, variant=variant, params=params, xi=1e-6)
        assert value == single, (mode, variant)  # bit for bit: same samples, same arithmetic
    assert joint[("official", "xi_gsnr")] != joint[("paper", "xi_gsnr")]


def test_score_jointly_mixes_modes_settings_and_selections(batches):
    estimators = [
        XiGSNR(mode="paper", variant="gsnr"),
        XiGSNR(mode="official", xi=1e-4, layer_skip=False),
        XiGSNR(mode="per_sample", variant="inv_var_xi"),
        XiGSNR(mode="official", params="all"),
        XiGSNR(mode="paper", variant="sq_mean", params="all"),
    ]
    got = score_jointly(estimators, make_model(ARCHS[0]), batches[:2])
    for e, value in zip(estimators, got):
        assert value == e.score(make_model(ARCHS[0]), batches[:2])


def test_joint_moments_leave_batchnorm_statistics_when_asked(batches):
    model = make_model(ARCHS[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moments = joint_gradient_moments(model, batches, update_batchnorm_stats=False)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert score_moments(moments["official"]) == xi_gsnr(make_model(ARCHS[0]), batches)
    # the default keeps the estimator's old behaviour: running statistics move
    joint_gradient_moments(model, batches)
    assert not torch.equal(before["stem.1.running_mean"], model.state_dict()["stem.1.running_mean"])


def test_batchnorm_running_stats_off_changes_no_output_and_restores():
    torch.manual_seed(0)
    bn, frozen = nn.BatchNorm2d(3), nn.BatchNorm2d(3).eval()
    x = torch.randn(5, 3, 4, 4) * 2 + 1
    model = nn.Sequential(bn, frozen)
    expected = model(x)
    mean, count = bn.running_mean.clone(), int(bn.num_batches_tracked)
    with batchnorm_running_stats_off(model):
        got = model(x)
        assert not bn.track_running_stats and frozen.track_running_stats  # eval-mode layers untouched
    assert torch.equal(got, expected)
    assert torch.equal(bn.running_mean, mean) and int(bn.num_batches_tracked) == count
    assert bn.track_running_stats


# ---------------------------------------------------------------- vmap strategy


def test_stacked_gradients_match_closed_form():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(3, 4))
    xs, ts = rng.normal(size=(5, 6, 4)), rng.normal(size=(5, 6, 3))
    model = nn.Linear(4, 3, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(W))
    groups = [(torch.from_numpy(x), torch.from_numpy(t)) for x, t in zip(xs, ts)]
    (stacked,) = stacked_batch_gradients(model, groups, half_squared_error, [model.weight])
    expected = np.array([np.einsum("bi,bj->ij", x @ W.T - t, x) / len(x) for x, t in zip(xs, ts)])
    np.testing.assert_allclose(stacked.numpy(), expected, rtol=1e-12)
    official = StackedMoments(["w"], [stacked], cumulative=True)
    np.testing.assert_allclose(official.means()["w"].numpy(), np.cumsum(expected, 0).mean(0), rtol=1e-12)
    np.testing.assert_allclose(official.variances()["w"].numpy(), np.cumsum(expected, 0).var(0), rtol=1e-10)


def test_cumulative_sums_add_in_order_like_autograd():
    x = torch.tensor([[1e8], [1.0], [-1e8], [1.0]], dtype=torch.float32)
    out = cumulative_sums(x.clone())
    expected, total = [], torch.zeros(1, dtype=torch.float32)
    for row in x:
        total = total + row
        expected.append(total.clone())
    assert torch.equal(out, torch.stack(expected))


@pytest.mark.parametrize("arch", ARCHS)
def test_vmap_strategy_agrees_with_loop(arch, batches):
    loop = xi_gsnr_all(make_model(arch), batches)
    vmapped = xi_gsnr_all(make_model(arch), batches, strategy="vmap")
    for key in loop:
        assert rel(vmapped[key], loop[key]) < 1e-6, key
    for mode in ("official", "paper"):  # also through the single estimator
        assert rel(XiGSNR(mode=mode, strategy="vmap").score(make_model(arch), batches),
                   loop[(mode, "xi_gsnr")]) < 1e-6


def test_vmap_per_sample_mode_agrees_with_loop(batches):
    one = batches[:1]
    loop = xi_gsnr(make_model(ARCHS[0]), one, mode="per_sample")
    vmapped = xi_gsnr(make_model(ARCHS[0]), one, mode="per_sample", strategy="vmap")
    assert rel(vmapped, loop) < 1e-6


def test_vmap_leaves_the_model_as_found(batches):
    model = make_model(ARCHS[1])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    xi_gsnr_all(model, batches, strategy="vmap")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(m.track_running_stats for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_vmap_needs_batches_of_one_shape(batches):
    uneven = batches[:2] + [(batches[2][0][:3], batches[2][1][:3])]
    with pytest.raises(ValueError, match="one shape"):
        xi_gsnr_all(make_model(ARCHS[0]), uneven, strategy="vmap")


def test_vmap_nonfinite_gradient_gives_nonfinite_score(batches):
    model = make_model(ARCHS[0])
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = xi_gsnr_all(model, batches, strategy="vmap", variants=("xi_gsnr",))
    assert all(math.isnan(v) for v in scores.values())
    assert any("non-finite" in str(w.message) for w in caught)


# ---------------------------------------------------------------- device scoring


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("skip", [True, False])
def test_score_tensor_equals_score_moments(variant, skip):
    torch.manual_seed(0)
    model = TwoLayers()
    batches = [(torch.randn(5, 4), torch.randn(5, 3)) for _ in range(4)]
    moments = gradient_moments(model, batches, half_squared_error, "paper")
    expected = score_moments(moments, variant, 1e-3, skip)
    got = score_tensor(moments, variant, 1e-3, skip)
    assert got.dtype == torch.float64 and got.dim() == 0
    assert float(got) == pytest.approx(expected, rel=1e-12)
    stacked = gradient_moments(model, batches, half_squared_error, "paper", strategy="vmap")
    assert float(score_tensor(stacked, variant, 1e-3, skip)) == pytest.approx(expected, rel=1e-6)  # float32 vmap
