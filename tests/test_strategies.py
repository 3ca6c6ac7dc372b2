"""Execution strategies against the single-mode estimator: one-pass multi-score, vmap, device scoring."""
import copy
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import XiGSNR, xi_gsnr
from xigsnr_naslib.core.gradients import (
    accumulated_batch_gradients,
    batchnorm_running_stats_off,
    independent_batch_gradients,
    paired_batch_gradients,
    stacked_batch_gradients,
)
from xigsnr_naslib.core.gsnr import (
    VARIANTS,
    gradient_moments,
    joint_gradient_moments,
    score_jointly,
    score_moments,
    score_tensor,
    select_parameters,
    xi_gsnr_all,
)
from xigsnr_naslib.benchmarks.nb201.space import NB201Space
from xigsnr_naslib.core.statistics import StackedMoments, cumulative_sums

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


# ---------------------------------------------------------------- how close "agrees" is
#
# The vmap strategy computes the same gradient samples as the loop, in float32, with the
# operations in another order (vmap batches the groups' convolutions and reductions), and
# the same float64 statistics from them. So its score differs from the loop's by rounding
# only, and how much follows from two numbers:
#
# * kappa, the score's condition number: to first order, relative errors e_g of the
#   gradient elements change s = sum mean^2 / (var + xi) by |ds| <= sum |ds/dg| |g| |e_g|,
#   that is by kappa times the (|ds/dg| |g|-weighted) mean |e_g|, relative to |s|, with
#   kappa = sum |ds/dg| |g| / |s| over every element g of every sample (condition_number).
#   A term's relative change is 2 dmean/mean - dvar/(var + xi); with few samples var is
#   small beside mean^2 for many entries, and then dvar/var is about 2 (|mean| / std) dg/g.
#   On small NB201 networks kappa is 30-85 in per_sample mode (6 samples) and 4-170 in the
#   official and paper modes (4 samples), where a plain sum would have 1.
# * e_g, the relative rounding error of a float32 gradient element: its longest reduction
#   adds k terms (a convolution's weight gradient and BatchNorm's statistics run over every
#   position of every image of a group: k = images x positions), and such rounding errors
#   grow like sqrt(k) u (u = 2^-24; k u at worst), so e_g <= sqrt(k) u.
#
# Hence each path lies within kappa sqrt(k) u of the exact score (approximated by the same
# computation in float64) and |s_vmap - s_loop| / |s| <= 2 kappa sqrt(k) u; in float64 the
# same with u = 2^-53, about 1e-13 here, while real differences are 0.1 to 10 (another mode,
# an image left out, BatchNorm statistics shared by two images: 0.70, 0.57, 10.0 for the
# per_sample score below). Measured over 8 architectures x 2 initialisations x 2 image draws
# x 3 modes, the float32 paths came within 6.7 kappa u of float64 (bounds: 16 kappa u in
# per_sample mode, k = 256; 39 kappa u in the others, k = 1536; at most 0.42 of the bound
# for every variant) and the float64 paths within 3 kappa u of each other. A fixed 1e-6
# (the earlier tolerance) was exceeded by the per_sample score of the first network below
# (1.2e-6 = 0.44 kappa u) and by up to 1.2e-5 (6.2 kappa u) on others.

UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}


def _entry_terms(mean, var, variant, xi):
    positive = var != 0
    safe = torch.where(positive, var, torch.ones_like(var))
    return {"xi_gsnr": mean * mean / (var + xi), "sq_mean": mean * mean, "inv_var_xi": 1.0 / (var + xi),
            "gsnr": torch.where(positive, mean * mean / safe, torch.zeros_like(var)),
            "inv_var": torch.where(positive, 1.0 / safe, torch.zeros_like(var))}[variant]


def float64_samples(model, groups, mode, loss_fn=F.cross_entropy):
    """The gradient samples of ``mode`` computed in float64: one ``[N, *shape]`` tensor per weight."""
    model = copy.deepcopy(model).double()
    tensors = [p for _, p in select_parameters(model)]
    groups = [(x.double(), y.double() if y.is_floating_point() else y) for x, y in groups]
    if mode == "per_sample":
        groups = [(x[i:i + 1], y[i:i + 1]) for x, y in groups for i in range(x.shape[0])]
    samples = stacked_batch_gradients(model, groups, loss_fn, tensors)
    return [s.cumsum(0) for s in samples] if mode == "official" else samples


def condition_number(samples, variant="xi_gsnr", xi=1e-8, skip=True):
    """kappa = sum |ds/dg| |g| / |s| over every element g of the float64 ``samples``
    (autograd through mean, population variance and the variant's terms)."""
    samples = [s.detach().requires_grad_(True) for s in samples]
    score = torch.zeros((), dtype=torch.float64)
    for s in samples:
        mean = s.mean(0)
        var = (s - mean).square().mean(0)
        if not (skip and bool((var == 0).all())):
            score = score + _entry_terms(mean, var, variant, xi).sum()
    grads = torch.autograd.grad(score, samples, allow_unused=True)
    sensitivity = sum(float((g.abs() * s.detach().abs()).sum()) for g, s in zip(grads, samples) if g is not None)
    return sensitivity / abs(float(score.detach()))


def rounding_bound(kappa, groups, mode, dtype=torch.float32):
    """kappa sqrt(k) u: how far one path's score may lie from the exact one (see above)."""
    x = groups[0][0]
    k = (1 if mode == "per_sample" else x.shape[0]) * math.prod(x.shape[2:])
    return kappa * math.sqrt(k) * UNIT_ROUNDOFF[dtype]


def as_float64(groups):
    return [(x.double(), y) for x, y in groups]


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


def test_joint_moments_leave_batchnorm_statistics_unless_asked(batches):
    model = make_model(ARCHS[0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moments = joint_gradient_moments(model, batches)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert score_moments(moments["official"]) == xi_gsnr(make_model(ARCHS[0]), batches)
    # asked for: running statistics move with every batch, as in a training step
    joint_gradient_moments(model, batches, update_batchnorm_stats=True)
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
    """Within the rounding bound of the analysis above, in float32 and float64."""
    loop = xi_gsnr_all(make_model(arch), batches)
    vmapped = xi_gsnr_all(make_model(arch), batches, strategy="vmap")
    to_float64 = UNIT_ROUNDOFF[torch.float64] / UNIT_ROUNDOFF[torch.float32]
    for mode in ("official", "paper"):
        samples = float64_samples(make_model(arch), batches, mode)
        skip = mode == "official"  # the released layer-skip rule, on in official mode only
        for variant in VARIANTS:
            bound = rounding_bound(condition_number(samples, variant, skip=skip), batches, mode)
            assert rel(vmapped[mode, variant], loop[mode, variant]) <= 2 * bound, (mode, variant)
        bound = rounding_bound(condition_number(samples, skip=skip), batches, mode)
        # also through the single estimator, and each path against the float64 computation
        assert rel(XiGSNR(mode=mode, strategy="vmap").score(make_model(arch), batches),
                   loop[(mode, "xi_gsnr")]) <= 2 * bound
        exact = xi_gsnr(make_model(arch).double(), as_float64(batches), mode=mode)
        assert rel(loop[(mode, "xi_gsnr")], exact) <= bound and rel(vmapped[(mode, "xi_gsnr")], exact) <= bound
        vmapped64 = xi_gsnr(make_model(arch).double(), as_float64(batches), mode=mode, strategy="vmap")
        assert rel(vmapped64, exact) <= 2 * bound * to_float64


def test_vmap_per_sample_mode_agrees_with_loop(batches):
    """Within the rounding bound of the analysis above, in float32 and float64."""
    one = batches[:1]
    loop = xi_gsnr(make_model(ARCHS[0]), one, mode="per_sample")
    vmapped = xi_gsnr(make_model(ARCHS[0]), one, mode="per_sample", strategy="vmap")
    exact = xi_gsnr(make_model(ARCHS[0]).double(), as_float64(one), mode="per_sample")
    vmapped64 = xi_gsnr(make_model(ARCHS[0]).double(), as_float64(one), mode="per_sample", strategy="vmap")
    kappa = condition_number(float64_samples(make_model(ARCHS[0]), one, "per_sample"))
    bound = rounding_bound(kappa, one, "per_sample")  # 46 x 16 x 2^-24 = 4.4e-5
    assert rel(loop, exact) <= bound and rel(vmapped, exact) <= bound
    assert rel(vmapped, loop) <= 2 * bound
    assert rel(vmapped64, exact) <= 2 * rounding_bound(kappa, one, "per_sample", torch.float64)
    # a real difference is far above both bounds: the same computation on 5 of the 6 images
    five = [(one[0][0][:5], one[0][1][:5])]
    assert rel(xi_gsnr(make_model(ARCHS[0]).double(), as_float64(five), mode="per_sample"), exact) > 1e3 * bound


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
    assert float(got) == pytest.approx(expected, rel=1e-12)  # 24 float64 terms >= 0 in two orders: < 48 u
    stacked = gradient_moments(model, batches, half_squared_error, "paper", strategy="vmap")
    kappa = condition_number(float64_samples(model, batches, "paper", half_squared_error), variant, 1e-3, skip)
    bound = 2 * rounding_bound(kappa, batches, "paper")  # float32 vmap against the loop (analysis above)
    assert rel(float(score_tensor(stacked, variant, 1e-3, skip)), expected) <= bound


def test_records_name_the_gpu_they_were_computed_on():
    """A record's environment fixes its last bits: on a GPU that is the GPU's model, the CUDA
    and cuDNN versions and whether TF32 rounds the products; a CPU record names no GPU. (On a
    machine without CUDA this checks the CPU side; evaluation/gpu_check.sh runs it on a GPU.)"""
    from xigsnr_naslib import Execution, Study
    from xigsnr_naslib.data.image_set import ImageSet
    from xigsnr_naslib.data.protocol import Protocol

    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(0)
    images = ImageSet(rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), np.arange(16) % 10, 10, "noise")
    study = Study("nb201", "cifar10", ["xi_gsnr"], Protocol(n_batches=2, batch_size=4, data_seed=1, init_seed=1),
                  Execution(device=device, workers=0), images=images,
                  space_options={"channels": 4, "cells_per_stage": 1})
    (record,) = study.score([(0, ARCHS[0])])
    env = record["environment"]
    assert env["torch"] == torch.__version__ and record["device"].startswith(device)
    if device == "cpu":
        assert not {"gpu", "cuda", "cudnn", "tf32"} & set(env)
    else:
        assert env["gpu"] == torch.cuda.get_device_name() and env["cudnn"] == torch.backends.cudnn.version()
        assert env["tf32"] == {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
