"""ZiCo against closed-form gradients and an independent NumPy two-pass computation."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import get_proxy
from xigsnr_naslib.core.gsnr import select_parameters
from xigsnr_naslib.benchmarks.nb201.space import NB201Network
from xigsnr_naslib.core.statistics import RunningMoments
from xigsnr_naslib.proxies.zico import score_zico, zico, zico_moments

# the same tiny problems as the xi-GSNR estimator's tests (a linear model with MSE, a dead layer)
from test_estimator import TwoLayers, half_squared_error, linear_problem  # noqa: F401  (fixture)


def test_linear_model_matches_closed_form(linear_problem):
    W, xs, ts, model, batches = linear_problem
    g = np.array([np.einsum("bi,bj->ij", x @ W.T - t, x) / len(x) for x, t in zip(xs, ts)])
    expected = math.log(np.sum(np.abs(g).mean(0) / g.std(0)))
    assert zico(model, batches, half_squared_error) == pytest.approx(expected, rel=1e-12)


def test_zero_std_entries_and_layers_are_left_out():
    torch.manual_seed(0)
    model = TwoLayers()
    batches = [(torch.randn(5, 4), torch.randn(5, 3)) for _ in range(3)]
    only_live = nn.Linear(4, 3, bias=False)
    with torch.no_grad():
        only_live.weight.copy_(model.live.weight)
    # the dead layer (all std 0) adds nothing, rather than log(0) = -inf
    assert zico(model, batches, half_squared_error) == pytest.approx(zico(only_live, batches, half_squared_error),
                                                                     rel=1e-12)


def test_partly_constant_entries_are_left_out():
    moments = RunningMoments(["w"], track_abs_mean=True)
    for sample in ([1.0, 2.0, 5.0], [3.0, 2.0, -5.0]):  # entry 1 never varies
        moments.update([torch.tensor(sample)])
    # entry 0: mean|g| 2, std 1; entry 2: mean|g| 5, std 5
    assert score_zico(moments) == pytest.approx(math.log(2.0 + 1.0), rel=1e-12)


@pytest.mark.parametrize("channels,cells,hw", [
    (4, 1, 8),  # tiny: the fast loop
    pytest.param(8, 2, 32, marks=pytest.mark.slow),  # two cells per stage, CIFAR-size images: the full suite
])
def test_conv_net_agrees_with_numpy_two_pass(channels, cells, hw):
    """Released-algorithm style (zeroed grads per batch, host copies, np.std) vs the streamed moments."""
    torch.manual_seed(0)
    model = NB201Network("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
                         channels=channels, cells_per_stage=cells)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(12, 3, hw, hw, generator=gen), torch.randint(0, 10, (12,), generator=gen))
               for _ in range(3)]
    params = select_parameters(model, "conv_linear")
    copies = {n: [] for n, _ in params}
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        for n, p in params:
            copies[n].append(p.grad.detach().double().numpy().ravel().copy())
    expected = 0.0
    for rows in copies.values():
        g = np.array(rows)
        std = g.std(axis=0)
        nz = np.nonzero(std)[0]
        total = np.sum(np.abs(g).mean(axis=0)[nz] / std[nz])
        if total != 0:
            expected += np.log(total)
    model.zero_grad(set_to_none=True)
    got = zico(model, batches)
    assert got == pytest.approx(expected, rel=1e-9)
    assert all(p.grad is None for p in model.parameters())


def test_registered_proxy_and_abs_means_guard():
    proxy = get_proxy("zico")
    assert proxy.needs_data and proxy.settings["gradients"] == "independent"
    torch.manual_seed(0)
    model = nn.Linear(4, 3, bias=False)
    batches = [(torch.randn(5, 4), torch.randn(5, 3)) for _ in range(3)]
    # the registered proxy reads the shared pass (independent gradients with mean |g|): the
    # same number, bit for bit, as ZiCo's own passes
    assert proxy(model, batches, half_squared_error) == zico(model, batches, half_squared_error)
    with pytest.raises(ValueError, match="track_abs_mean"):
        RunningMoments(["w"]).abs_means()


def test_single_batch_is_not_computable_and_nan_is_recorded():
    from xigsnr_naslib.passes import NotComputable
    model = nn.Linear(4, 3, bias=False)
    with pytest.raises(NotComputable, match="1 batch"):
        zico(model, [(torch.randn(3, 4), torch.randn(3, 3))], half_squared_error)
    bad = [(torch.full((2, 4), float("nan")), torch.zeros(2, 3)) for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="non-finite"):
        assert math.isnan(zico(model, bad, half_squared_error))


def test_moments_track_abs_mean_with_missing_gradients():
    moments = RunningMoments(["a", "b"], track_abs_mean=True)
    moments.update([torch.tensor([-2.0]), None])
    moments.update([torch.tensor([4.0]), torch.tensor([-6.0])])  # b had no gradient in sample 1: zero
    assert moments.abs_means()["a"].item() == pytest.approx(3.0)
    assert moments.abs_means()["b"].item() == pytest.approx(3.0)
    assert moments.means()["b"].item() == pytest.approx(-3.0)


def test_zico_moments_in_train_mode_leave_the_model_clean():
    torch.manual_seed(1)
    model = NB201Network("|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
                         channels=4, cells_per_stage=1)
    batches = [(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))) for _ in range(2)]
    moments = zico_moments(model, batches)
    assert moments.count == 2 and set(moments.abs_means()) <= {n for n, _ in select_parameters(model)}
    assert all(p.requires_grad for p in model.parameters())
