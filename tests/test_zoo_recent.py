"""The recent proxies (xigsnr_naslib.proxies.zoo: meco, swap, aznas, vkdnw, trainable_layers): closed
forms on hand-made feature maps, activation patterns and tiny networks, agreement between
independent computations, determinism, and what is not computable (with its reason)."""
import math
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.passes import LogitJacobians, NotComputable, first_entry_jacobians_loop
from xigsnr_naslib.proxies import get_proxy, list_proxies, run_passes
from xigsnr_naslib.benchmarks import create_space
from xigsnr_naslib.benchmarks.nb201.space import NB201Network
from xigsnr_naslib.proxies.zoo import aznas, meco, swap, trainable_layers, vkdnw

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECENT = ("meco", "meco_opt", "swap", "aznas_expressivity", "aznas_progressivity", "aznas_trainability",
          "aznas_complexity", "vkdnw", "vkdnw_fisher", "vkdnw_single", "trainable_layers", "trainable_weight_layers")
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|"


def noise_batches(n=1, b=16, c=3, hw=32, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, c, hw, hw, generator=g), torch.randint(0, classes, (b,), generator=g)) for _ in range(n)]


def tiny_nb201(arch=ARCH, seed=1):
    torch.manual_seed(seed)
    return NB201Network(arch, num_classes=10, channels=4, cells_per_stage=1).train()


def orthogonal_centred_rows(n_rows, n_cols, seed=0):
    """Rows that are centred and orthonormal (QR of a random matrix, projected off the ones)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_cols, n_rows + 1))
    a[:, 0] = 1.0
    q, _ = np.linalg.qr(a)
    return q[:, 1:].T  # orthogonal to the constant vector: centred


def test_every_recent_proxy_is_registered():
    assert set(RECENT) <= set(list_proxies())


# --- MeCo ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rho", [0.0, 0.3, -0.8, 0.99])
def test_min_correlation_eigenvalue_of_two_channels_is_one_minus_abs_rho(rho):
    u, v = orthogonal_centred_rows(2, 50)
    rows = torch.tensor(np.stack([u, rho * u + math.sqrt(1 - rho ** 2) * v]))
    # corr = [[1, rho], [rho, 1]]: eigenvalues 1 -+ rho; float64 eigvalsh of a 2x2: error ~1e-15
    assert meco.min_correlation_eigenvalue(rows) == pytest.approx(1 - abs(rho), abs=1e-12)


def test_a_constant_channel_zeroes_its_correlations_so_the_term_is_zero():
    u, v = orthogonal_centred_rows(2, 40)
    rows = torch.tensor(np.stack([u, v, np.full(40, 3.0)]))
    # corr after zeroing the constant channel: diag(1, 1, 0): min eigenvalue exactly 0
    assert meco.min_correlation_eigenvalue(rows) == pytest.approx(0.0, abs=1e-12)


def test_meco_sums_module_terms_and_meco_opt_scales_independent_channels_by_c_over_8():
    # module a: 16 orthonormal centred channels over 32 positions (corr = I, every term 1)
    a = torch.tensor(orthogonal_centred_rows(16, 32)).reshape(1, 16, 4, 8)
    # module b: two channels with correlation 0.5 (term 0.5)
    u, v = orthogonal_centred_rows(2, 20, seed=3)
    b = torch.tensor(np.stack([u, 0.5 * u + math.sqrt(0.75) * v])).reshape(1, 2, 4, 5)
    features = [("a", a), ("b", b)]
    assert meco.meco_score(features) == pytest.approx(1.0 + 0.5, abs=1e-10)
    # meco_opt: any 8 of the 16 channels have corr = I: 1 * 16 / 8; b has fewer than 8: factor 1
    assert meco.meco_score(features, 8, random.Random(0)) == pytest.approx(2.0 + 0.5, abs=1e-10)


def _meco_by_numpy(model, image):
    """An independent MeCo: numpy's corrcoef and eigvalsh on every module's output."""
    outputs = []
    handles = [m.register_forward_hook(lambda mod, i, o: outputs.append(o.detach()[0].numpy().astype(np.float64)))
               for m in model.modules()]
    with torch.no_grad():
        model(image)
    for h in handles:
        h.remove()
    total = 0.0
    for out in outputs:
        rows = out.reshape(out.shape[0], -1)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.corrcoef(rows) if rows.shape[1] > 1 else np.full((rows.shape[0],) * 2, np.nan)
        corr = np.atleast_2d(np.where(np.isfinite(corr), corr, 0.0))
        total += float(np.linalg.eigvalsh(corr)[0])
    return total


def test_meco_through_its_pass_equals_an_independent_numpy_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 5, 3),
                          nn.Flatten(), nn.Linear(5 * 6 * 6, 10)).train()
    batches = noise_batches(b=4, hw=8)
    ours = get_proxy("meco")(model, batches)
    # the pass forwards the first image alone: BatchNorm with that image's statistics
    # float32 features, float64 statistics in both: agreement to ~1e-6 (float32 rounding of the features only)
    assert ours == pytest.approx(_meco_by_numpy(model, batches[0][0][:1]), abs=1e-6)


def test_meco_opt_is_deterministic_and_depends_on_its_seed():
    model, batches = tiny_nb201(), noise_batches()
    features = run_passes(model, batches, F.cross_entropy, [meco.MECO_PASS])[meco.MECO_PASS]
    first = meco.meco_score(features, 8, random.Random(0))
    assert meco.meco_score(features, 8, random.Random(0)) == first
    assert meco.meco_score(features, 8, random.Random(1)) != first


def test_meco_of_a_network_that_ignores_its_input_is_not_computable():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(10))

        def forward(self, x):
            return self.bias.expand(x.shape[0], 10) + 0 * x.sum()

    with pytest.raises(NotComputable, match="no module output has a channel that varies"):
        get_proxy("meco")(Constant(), noise_batches(b=2, hw=4))


# --- SWAP -----------------------------------------------------------------------------------------

def test_swap_counts_distinct_sign_patterns_of_hand_made_activations():
    # 3 images x 6 neurons; column patterns: 101, 101, 000, 010, 010, 111 -> 4 distinct
    a = torch.tensor([[1.0, 2.0, 0.0, 0.0, 0.0, 4.0],
                      [0.0, 0.0, 0.0, 0.5, 3.0, 4.0],
                      [7.0, 0.1, 0.0, 0.0, 0.0, 4.0]])
    assert swap.count_distinct_patterns(a) == 4.0
    pairs = [("r1", a[:, :4].reshape(3, 1, 2, 2)), ("r2", a[:, 4:].reshape(3, 2, 1, 1)), ("fc", a)]
    assert swap.swap_score(pairs) == 4.0  # the 2-D output ("fc") is left out, as the released code does


def test_swap_packing_agrees_with_unique_columns():
    g = torch.Generator().manual_seed(0)
    for images in (1, 5, 16, 62):
        a = torch.relu(torch.randn(images, 3000, generator=g)) * (torch.rand(images, 3000, generator=g) > 0.3)
        a[:, 100:200] = a[:, :100]  # duplicated neurons
        assert swap.count_distinct_patterns(a) == float(torch.unique(torch.sign(a).T, dim=0).shape[0])


def test_swap_on_an_mlp_is_not_computable_and_non_finite_activations_give_nan():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(NotComputable, match="no ReLU module is applied to a 4-D feature map"):
        get_proxy("swap")(mlp, noise_batches(b=16, hw=4))
    assert math.isnan(swap.count_distinct_patterns(torch.tensor([[1.0, float("nan")]])))


def test_swap_is_refused_when_batches_hold_fewer_than_16_images():
    with pytest.raises(ValueError, match="'swap' is not computable: it reads 16 images"):
        get_proxy("swap")(tiny_nb201(), noise_batches(b=8))


def test_swap_regulariser_is_the_released_gaussian_of_the_parameter_count():
    assert swap.regular_factor(2000, mu=2.0, sigma=1.0) == 1.0
    assert swap.regular_factor(3000, mu=2.0, sigma=4.0) == pytest.approx(math.exp(-1 / 4))
    proxy = swap.regularised_swap_proxy(2.0, 4.0)
    assert proxy.name == "swap_regularised_mu2_sigma4" and proxy.settings["mu"] == 2.0


# --- AZ-NAS ---------------------------------------------------------------------------------------

def test_expressivity_is_the_entropy_of_the_normalised_covariance_spectrum():
    # 2 channels, 64 positions, orthogonal centred columns with variances 1 and 3: p = (1/4, 3/4)
    u, v = orthogonal_centred_rows(2, 64)
    x = np.stack([u * math.sqrt(64 * 1.0), v * math.sqrt(64 * 3.0)], axis=1)  # positions x channels
    feature = torch.tensor(x).T.reshape(2, 1, 8, 8).permute(1, 0, 2, 3).contiguous()  # 1 x 2 x 8 x 8
    # rows of positions: feature[0, :, i, j]; rebuilt as (B H W) x C this is x again
    expected = -(0.25 * math.log(0.25 + 1e-8) + 0.75 * math.log(0.75 + 1e-8))
    (entropy,) = aznas.stage_entropies([feature])
    assert entropy == pytest.approx(expected, abs=1e-12)
    assert aznas.expressivity([entropy, 2 * entropy]) == pytest.approx(3 * entropy)
    assert aznas.progressivity([1.0, 0.5, 2.0]) == pytest.approx(-0.5)


def test_a_zero_feature_map_makes_expressivity_and_progressivity_the_worst_rank():
    (e,) = aznas.stage_entropies([torch.zeros(2, 3, 4, 4)])
    assert math.isnan(e)
    assert aznas.expressivity([1.0, e]) == -math.inf and aznas.progressivity([1.0, e]) == -math.inf


def test_trainability_of_a_scaling_stage_a_pooling_stage_and_an_identity():
    x = torch.randn(4, 1, 8, 8, requires_grad=True)
    generator = torch.Generator().manual_seed(0)
    # one channel: M = c * sum(g^2) / N = c exactly (g = +-1), so sigma = |c|
    (score,) = aznas.stage_trainabilities([x, 3.0 * x], generator)
    assert score == pytest.approx(-3.0 - 1 / (3.0 + 1e-6) + 2.0, abs=1e-12)
    # 2x2 average pooling: g_in = g_out / 4 on each of the 4 pixels, unshuffled to 4 channels:
    # M = (1/4, 1/4, 1/4, 1/4)^T, sigma = 1/2
    (score,) = aznas.stage_trainabilities([x, F.avg_pool2d(x, 2)], generator)
    assert score == pytest.approx(-0.5 - 1 / (0.5 + 1e-6) + 2.0, abs=1e-9)
    (score,) = aznas.stage_trainabilities([x, x.view_as(x)], generator)
    assert score == -math.inf
    assert aznas.trainability([0.0, -math.inf]) == -math.inf


def test_aznas_components_on_an_nb201_network_with_an_identity_cell():
    # every cell is the identity (skip 0->3, the rest none): trainability -inf, as released
    model = tiny_nb201("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    batches = noise_batches(b=8)
    assert get_proxy("aznas_trainability")(model, batches) == -math.inf
    assert math.isfinite(get_proxy("aznas_expressivity")(model, batches))
    assert get_proxy("aznas_complexity")(model, batches) > 0


def test_aznas_needs_named_feature_stages():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(48, 10))
    with pytest.raises(NotComputable, match="does not name its feature stages"):
        get_proxy("aznas_expressivity")(mlp, noise_batches(b=2, hw=4))


def test_aznas_documents_its_components_and_aggregation():
    assert aznas.AZNAS_COMPONENTS == ("aznas_expressivity", "aznas_progressivity", "aznas_trainability",
                                      "aznas_complexity")
    assert "log(rank / n)" in aznas.AZNAS_AGGREGATION


# --- VKDNW ----------------------------------------------------------------------------------------

def test_multinomial_cholesky_factors_the_smoothed_covariance():
    g = torch.Generator().manual_seed(0)
    p = vkdnw.smoothed_probabilities(torch.randn(5, 10, generator=g))
    lower = vkdnw.multinomial_cholesky(p)
    sigma = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    # float64 closed form: error of a few ulps of the entries (<= 1)
    assert torch.allclose(lower @ lower.transpose(1, 2), sigma, atol=1e-14)
    assert torch.equal(lower, torch.tril(lower)) and torch.all(lower[:, :, -1] == 0)


def test_decile_entropy_of_a_known_spectrum():
    eigenvalues = np.arange(1.0, 21.0)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((20, 20)))
    matrix = torch.tensor(q @ np.diag(eigenvalues) @ q.T)
    d = np.quantile(eigenvalues, np.arange(1, 10) / 10)  # numpy's linear interpolation = torch.quantile's
    t = d / (np.abs(d).sum() + 1e-10)
    # the eigenvalues of the rotated matrix are exact to ~1e-14, the entropy to ~1e-13
    assert vkdnw.decile_entropy(matrix) == pytest.approx(float(-(t * np.log(t + 1e-10)).sum()), abs=1e-12)
    with pytest.raises(NotComputable, match="every decile"):
        vkdnw.decile_entropy(torch.zeros(5, 5))


def test_vkdnw_fisher_of_a_linear_model_in_closed_form():
    # logits z = W x + b; the selected weights are W[0, 0] and b[0]: J_n = e_0 [x_n0, 1]
    torch.manual_seed(0)
    model = nn.Linear(4, 3).double().train()
    x = torch.randn(6, 4, dtype=torch.float64)
    request = LogitJacobians(source="images", init=None)
    result = run_passes(model, [(x, torch.zeros(6, dtype=torch.long))], F.cross_entropy, [request])[request]
    assert result.names == ["weight", "bias"]
    z = (x @ model.weight.detach().T + model.bias.detach()).numpy()
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True) * 0.95 + 0.05 / 3
    feats = np.stack([x[:, 0].numpy(), np.ones(6)], axis=1)  # [x_n0, 1]
    outer = feats[:, :, None] * feats[:, None, :]
    fisher = (outer * (p[:, 0] * (1 - p[:, 0]))[:, None, None]).mean(0)          # Sigma_00 = p0 (1 - p0)
    lower = vkdnw.multinomial_cholesky(torch.tensor(p)).numpy()
    released = (outer * (lower[:, :, 0] ** 2).sum(1)[:, None, None]).mean(0)       # (L^T L)_00 = sum_i L_i0^2
    ours_released, ours_fisher = vkdnw.fisher_matrices(result)
    # float64 throughout: agreement to ~1e-15 relative
    np.testing.assert_allclose(ours_fisher.numpy(), fisher, rtol=1e-12)
    np.testing.assert_allclose(ours_released.numpy(), released, rtol=1e-12)


def _fisher_by_class_gradients(model, x, tensors):
    """An independent exact Fisher: mean over images of sum_y p_y g_y g_y^T with
    g_y = J^T (e_y - p), each g_y one backward of z . (e_y - p) on the image alone."""
    total = 0
    for i in range(x.shape[0]):
        with torch.no_grad():
            p = vkdnw.smoothed_probabilities(model(x)[i : i + 1])[0]  # logits of the whole batch, as the pass
        out = model(x[i : i + 1])[0]
        for y in range(out.shape[0]):
            direction = -p.clone()
            direction[y] += 1
            grads = torch.autograd.grad((out * direction.to(out.dtype)).sum(), tensors, retain_graph=True)
            g = torch.stack([t.reshape(-1)[0] for t in grads]).to(torch.float64)
            total = total + p[y] * g[:, None] * g[None, :]
    return total / x.shape[0]


def test_logit_jacobians_batched_equal_the_per_image_loop_and_the_fisher_its_class_gradients():
    model = tiny_nb201().double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    request = LogitJacobians(source="images", init=None, max_tensors=40)
    result = run_passes(model, [(x, torch.zeros(2, dtype=torch.long))], F.cross_entropy, [request])[request]
    # independently, on the network as the pass evaluates it: eval mode, a fresh network's running statistics
    model.eval()
    tensors = [p for _, p in model.named_parameters()][:40]
    loop = first_entry_jacobians_loop(model, x, tensors)
    fisher = _fisher_by_class_gradients(model, x, tensors)
    # float64: the batched hooks and the per-image autograd loop differ by summation order only
    torch.testing.assert_close(result.jacobians, loop, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(vkdnw.fisher_matrices(result)[1], fisher, rtol=1e-9, atol=1e-14)


def test_batched_first_entry_jacobians_with_per_image_batchnorm_equal_the_loop():
    from xigsnr_naslib.core.gradients import batchnorm_running_stats_off
    from xigsnr_naslib.passes.jacobians import _first_entry_jacobians_batched

    model = tiny_nb201().double()  # train mode: each image forwarded alone is normalised by its own statistics
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    tensors = [p for _, p in model.named_parameters()][:40]
    with batchnorm_running_stats_off(model):
        loop = first_entry_jacobians_loop(model, x, tensors)
        for p in model.parameters():
            p.requires_grad_(False)
        batched = _first_entry_jacobians_batched(model, x, tensors)
    # float64, instance normalisation against BatchNorm on a batch of one: summation order only
    torch.testing.assert_close(batched, loop, rtol=1e-9, atol=1e-12)


@pytest.mark.slow  # torch.func over an NB201 network: 5-25 s on two cores, depending on the load
def test_logit_jacobians_equal_torch_func_vmap_of_jacrev():
    from torch.func import functional_call, jacrev, vmap

    model = tiny_nb201().double()
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    request = LogitJacobians(source="images", init=None, max_tensors=30)
    result = run_passes(model, [(x, torch.zeros(4, dtype=torch.long))], F.cross_entropy, [request])[request]
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    names = list(params)[:30]
    onehot = {n: torch.zeros_like(params[n]).reshape(-1).index_fill(0, torch.tensor([0]), 1.0).reshape(params[n].shape)
              for n in names}

    def logits(deltas, image):
        weights = {**params, **{n: params[n] + d * onehot[n] for n, d in deltas.items()}}
        return functional_call(model, (weights, buffers), (image.unsqueeze(0),)).squeeze(0)

    model.eval()  # as the pass evaluates the network
    jac = vmap(jacrev(logits), in_dims=(None, 0))({n: torch.zeros((), dtype=torch.float64) for n in names}, x)
    torch.testing.assert_close(result.jacobians, torch.stack([jac[n] for n in names], dim=2), rtol=1e-9, atol=1e-12)


# --- trainable layers -----------------------------------------------------------------------------

def test_trainable_layer_counts_of_a_hand_built_network():
    shared = nn.Conv2d(4, 4, 3, padding=1, bias=False)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), shared, shared,
                          nn.BatchNorm2d(4, affine=False), nn.Flatten(), nn.Linear(4, 2))
    frozen = nn.Linear(2, 2)
    frozen.weight.requires_grad_(False)
    model.append(frozen)
    # tensors: conv 1 + BN 2 + shared conv 1 (once) + Linear 2 + frozen Linear's bias 1 = 7
    assert trainable_layers.count_trainable_tensors(model) == 7
    # modules: conv, BN, shared conv (once), Linear, frozen Linear (its bias) = 5
    assert trainable_layers.count_trainable_modules(model) == 5
    # the proxy scores the network, not the caller's training set-up: a frozen tensor counts too,
    # as in VKDNW's len(named_parameters()) (8 tensors; the modules stay 5), and stays frozen
    assert get_proxy("trainable_layers")(model, []) == 8.0
    assert get_proxy("trainable_weight_layers")(model, []) == 5.0
    assert not frozen.weight.requires_grad


def test_trainable_layers_of_nb201_count_three_tensors_per_convolution_edge():
    base = trainable_layers.count_trainable_tensors(tiny_nb201("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))
    two_convs = tiny_nb201("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|")
    # one cell per stage, 3 stages, 2 convolution edges each: 6 edges x (conv weight, BN weight, BN bias)
    assert trainable_layers.count_trainable_tensors(two_convs) == base + 18


def test_vkdnw_single_orders_by_layer_count_then_vkdnw():
    single = get_proxy("vkdnw_single")
    assert single.members == ("trainable_layers", "vkdnw")
    rule = single.compute
    # within one count the entropy decides; across counts the count, whatever the entropies
    # (0 <= vkdnw <= log 9: a flat spectrum scores log 9, the most an entropy of 9 terms can)
    assert rule({"trainable_layers": 21, "vkdnw": 0.1}) < rule({"trainable_layers": 21, "vkdnw": 0.2})
    assert rule({"trainable_layers": 21, "vkdnw": math.log(9)}) < rule({"trainable_layers": 22, "vkdnw": 0.0})
    assert rule({"trainable_layers": 21, "vkdnw": math.log(9)}) == 21.5
    # the lexicographic order of random pairs, checked against Python's tuple order
    rng = random.Random(0)
    pairs = [(rng.randrange(20, 25), rng.uniform(0, math.log(9))) for _ in range(200)]
    by_rule = sorted(pairs, key=lambda p: rule({"trainable_layers": p[0], "vkdnw": p[1]}))
    assert by_rule == sorted(pairs)
    with pytest.raises(NotComputable, match="whole number"):
        rule({"trainable_layers": 21.5, "vkdnw": 0.1})
    with pytest.raises(NotComputable, match="in \\[0, 2.1972\\]"):
        rule({"trainable_layers": 21, "vkdnw": 2.5})
    # on a network: its members' values through the rule
    batches = noise_batches(b=64)
    model = tiny_nb201()
    expected = (trainable_layers.count_trainable_tensors(model)
                + get_proxy("vkdnw")(tiny_nb201(), batches) / (2 * math.log(9)))
    assert single(tiny_nb201(), batches) == pytest.approx(expected, rel=1e-12)


def test_vkdnw_agg_is_the_log_rank_sum_of_its_five_scores():
    import pandas as pd
    from xigsnr_naslib.proxies.ensemble import POPULATION_AGGREGATES, rank_combine
    members, rule = POPULATION_AGGREGATES["vkdnw_agg"]
    assert members == ("vkdnw_single", "aznas_expressivity", "aznas_trainability", "flops", "jacov")
    assert rule == "log_rank_sum" and all(m in list_proxies() for m in members)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(30, 5)), columns=list(members))
    frame.iloc[3, 4] = np.nan  # a missing Jacov ranks lowest, as the released code's minimum fill
    from scipy import stats
    filled = frame.fillna(-np.inf)
    expected = sum(np.log(stats.rankdata(filled[m])) for m in members)
    assert np.allclose(rank_combine(frame, rule).to_numpy(), expected, rtol=0, atol=1e-12)


# --- all of them, determinism and the other spaces ------------------------------------------------

def _scores(model, batches):
    out = {}
    for name in RECENT:
        try:
            out[name] = get_proxy(name)(model, batches)
        except NotComputable as exc:
            out[name] = f"not computable: {exc}"
    return out


@pytest.mark.slow  # every recent proxy twice, each with passes of its own: 8-15 s on one core
def test_every_recent_proxy_is_deterministic_and_leaves_the_network_as_found():
    batches = noise_batches(b=16)
    model = tiny_nb201()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = _scores(model, batches)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert _scores(tiny_nb201(), batches) == first
    assert all(isinstance(v, float) for v in first.values())


@pytest.mark.slow  # builds and scores NB101 and NDS networks with every recent proxy: 25-45 s each
@pytest.mark.parametrize("space,arch", [
    ("nb101", "0110000/0001000/0000100/0000010/0000001/0000001/0000000;"
              "input,conv3x3-bn-relu,conv1x1-bn-relu,conv3x3-bn-relu,maxpool3x3,conv3x3-bn-relu,output"),
    ("nb101", "0100001/0010000/0001000/0000100/0000010/0000001/0000000;"
              "input,conv1x1-bn-relu,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,maxpool3x3,output"),
    ("nds_darts", {"genotype": {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["skip_connect", 0],
                                           ["dil_conv_3x3", 2], ["max_pool_3x3", 1], ["skip_connect", 0],
                                           ["sep_conv_5x5", 0], ["avg_pool_3x3", 3]],
                                "normal_concat": [2, 3, 4, 5],
                                "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2],
                                           ["max_pool_3x3", 1], ["max_pool_3x3", 0], ["skip_connect", 2],
                                           ["skip_connect", 2], ["max_pool_3x3", 1]],
                                "reduce_concat": [2, 3, 4, 5]}, "width": 8, "depth": 5}),
])
def test_recent_proxies_score_nb101_and_nds_networks(space, arch):
    torch.manual_seed(1)
    model = create_space(space).build(arch, num_classes=10).train()
    scores = _scores(model, noise_batches(b=16))
    assert all(isinstance(v, float) and not math.isnan(v) for v in scores.values()), scores
