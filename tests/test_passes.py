"""Pass requests (xigsnr_naslib.passes): closed forms on tiny networks, the network left as
found, and a proxy's "not computable" recorded as such through the study."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import Protocol, Study
from xigsnr_naslib.passes import Activations, BatchGradients, CodeKernel, InputGradients, NotComputable
from xigsnr_naslib.proxies import Proxy, run_passes


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2)).train()


def batches(n=2, b=5):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(b, 3, generator=g), torch.randint(0, 2, (b,), generator=g)) for _ in range(n)]


def test_batch_gradients_equal_autograd_of_that_batch_and_leave_the_network_as_found():
    model, data = tiny(), batches()
    bn = model[2]
    before = (bn.running_mean.clone(), bn.num_batches_tracked.clone())
    model[0].weight.grad = torch.ones_like(model[0].weight)  # a .grad the caller had
    result = run_passes(model, data, F.cross_entropy, [BatchGradients(batch=1)])[BatchGradients(batch=1)]
    # independent computation on a copy: torch.autograd.grad of the second batch's mean loss
    twin = tiny()
    x, y = data[1]
    loss = F.cross_entropy(twin(x), y)
    expected = torch.autograd.grad(loss, list(twin.parameters()))
    for (name, _), g in zip(twin.named_parameters(), expected):
        # same operations in the same order on the same values: exactly equal
        assert torch.equal(result.grads[name], g), name
    assert result.loss == float(loss.detach())
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight))
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.num_batches_tracked, before[1])


def test_activations_are_the_relu_outputs_and_inputs_in_call_order():
    model, data = tiny(), batches()
    out = run_passes(model, data, F.cross_entropy, [Activations(("ReLU",)), Activations(("ReLU",), "input")])
    (name, relu_out), = out[Activations(("ReLU",))]
    (_, relu_in), = out[Activations(("ReLU",), "input")]
    assert name == "1"
    pre = model[0](data[0][0]).detach()
    assert torch.equal(relu_in, pre) and torch.equal(relu_out, pre.clamp(min=0))


def test_a_batch_the_protocol_does_not_draw_is_refused_at_the_door():
    proxy = Proxy("needs_batch_3", lambda r: 0.0, (BatchGradients(batch=3),))
    with pytest.raises(ValueError, match="'needs_batch_3' is not computable: it reads batch 3.*draws 2"):
        proxy(tiny(), batches(2))


class _Undefined:
    def __call__(self, results):
        raise NotComputable("no ReLU in this network")


def test_not_computable_is_recorded_with_its_reason_never_as_a_number(tmp_path, data_root):
    undefined = Proxy("test_undefined", _Undefined(), (BatchGradients(),))
    study = Study("nb201", proxies=[undefined, "params"], protocol=Protocol(n_batches=1, batch_size=2),
                  store=tmp_path / "r.jsonl", data_root=data_root)
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    records = {r["proxy"]: r for r in study.score([(0, arch)])}
    assert records["test_undefined"]["status"] == "not computable"
    assert records["test_undefined"]["score"] is None
    assert records["test_undefined"]["reason"] == "no ReLU in this network"
    assert records["params"]["status"] == "ok"


class ConstantOutput(nn.Module):
    """A network whose output does not depend on its input: a conv whose result is multiplied
    by zero (what an NB201 cell with no path from input to output amounts to)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        h = self.conv(x).mean(dim=(2, 3)) * 0.0
        return self.fc(h)


@pytest.mark.parametrize("name", ["xi_gsnr", "xi_gsnr_paper", "xi_gsnr_per_sample", "gsnr_sq_mean", "zico"])
def test_a_network_whose_output_ignores_its_input_is_not_computable_for_gradient_statistics(name):
    from xigsnr_naslib import get_proxy
    torch.manual_seed(0)
    data = [(torch.randn(4, 3, 8, 8), torch.randint(0, 10, (4,))) for _ in range(3)]
    # every Conv2d/Linear weight gradient is exactly zero (the fc input is 0; the conv's
    # gradient is multiplied by 0), so no sample varies: undefined, not 0
    with pytest.raises(NotComputable, match="varies"):
        get_proxy(name)(ConstantOutput().train(), data)


def test_disconnected_nb201_cells_are_recorded_not_computable_and_others_are_scored(tmp_path, data_root):
    disconnected = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"  # node 3 has no input
    connected = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    study = Study("nb201", proxies=["xi_gsnr", "zico", "params"], protocol=Protocol(n_batches=2, batch_size=4),
                  store=tmp_path / "r.jsonl", data_root=data_root)
    records = study.score([(0, disconnected), (1, connected)])
    status = {(r["index"], r["proxy"]): r["status"] for r in records}
    assert status[(0, "xi_gsnr")] == status[(0, "zico")] == "not computable"
    assert status[(0, "params")] == "ok"  # the network has parameters whatever its wiring
    assert status[(1, "xi_gsnr")] == status[(1, "zico")] == "ok"


def test_correlate_leaves_not_computable_architectures_out_or_ranks_them_last(tmp_path, data_root):
    import math
    from xigsnr_naslib.analysis.correlate import Selection, correlate
    from xigsnr_naslib.analysis.metrics import kendall_tau
    study = Study("nb201", proxies=["xi_gsnr"], protocol=Protocol(n_batches=2, batch_size=4),
                  store=tmp_path / "r.jsonl", data_root=data_root)
    truth = study.card.load_ground_truth("cifar10", data_root)
    # five connected cells and two with no path from input to output (node 3 gets only "none")
    disconnected = [i for i in truth.index if truth.at[i, "arch"].endswith("|none~0|none~1|none~2|")][:2]
    chosen = list(truth.index[:5]) + disconnected
    dropped = correlate(study, Selection(indices=chosen))
    last = correlate(study, Selection(indices=chosen), not_computable="last")
    assert dropped.metrics["xi_gsnr"]["n_not_computable"] == 2 and dropped.metrics["xi_gsnr"]["n"] == 5
    assert last.metrics["xi_gsnr"]["n"] == 7
    # "last" is tau with the undefined scores replaced by -inf, computed independently here
    scores = [-math.inf if i in disconnected else last.table.at[i, "xi_gsnr"] for i in chosen]
    assert last.metrics["xi_gsnr"]["kendall_tau"] == kendall_tau(scores, truth.loc[chosen, "accuracy"].to_numpy())
    with pytest.raises(ValueError, match="unknown not-computable policy 'first'.*drop, last"):
        correlate(study, Selection(indices=chosen), not_computable="first")


def test_input_gradients_are_each_images_jacobian_of_summed_logits_and_leave_the_network_as_found():
    # without BatchNorm the images do not interact: row n is d sum_c f_c(x_n) / d x_n, one image at a time
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    data = batches(2, 5)
    model[0].weight.grad = torch.ones_like(model[0].weight)
    result = run_passes(model, data, F.cross_entropy, [InputGradients(batch=1)])[InputGradients(batch=1)]
    x = data[1][0]
    for n in range(len(x)):
        xn = x[n:n + 1].clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(model(xn).sum(), xn)
        # one image's forward vs the batch's: float32 matrix products in other orders (~1e-7)
        assert torch.allclose(result.grads[n], expected[0], rtol=1e-5, atol=1e-7)
    assert result.n_outputs == 2
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight))
    assert not x.requires_grad


def test_input_gradients_leave_batchnorm_statistics_as_found():
    model, data = tiny(), batches()
    bn = model[2]
    before = (bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
    run_passes(model, data, F.cross_entropy, [InputGradients()])
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert torch.equal(bn.num_batches_tracked, before[2])


class ReLUWrapper(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x)


def test_code_kernel_counts_agreements_of_matched_module_inputs():
    x = torch.tensor([[1.0, -2.0, 0.0], [3.0, 1.0, -1.0]])  # codes 100 and 110: agree on 2 of 3 units
    model = nn.Sequential(ReLUWrapper(), nn.Linear(3, 3), nn.ReLU())
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(3))
        model[1].bias.zero_()
    data = [(x, torch.zeros(2, dtype=torch.long))]
    every, leaves = CodeKernel("ReLU"), CodeKernel("ReLU", leaves_only=True)
    out = run_passes(model, data, F.cross_entropy, [every, leaves])
    # the second ReLU sees relu(x): codes 100 and 110 again; the wrapper and its ReLU see x
    assert out[every].modules == ("0", "0.relu", "2") and out[leaves].modules == ("0.relu", "2")
    assert out[every].kernel.tolist() == [[9, 6], [6, 9]] and out[every].units == 9
    assert out[leaves].kernel.tolist() == [[6, 4], [4, 6]] and out[leaves].units == 6
    assert out[leaves].kernel.dtype == np.float64


# --- passes of the recent proxies: the first images alone, stage features, logit Jacobians ---------

def _tiny_nb201():
    from xigsnr_naslib.benchmarks.nb201.space import NB201Network

    torch.manual_seed(3)
    return NB201Network("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
                        num_classes=10, channels=4, cells_per_stage=1).train()


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model, state):
    return all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_image_activations_forward_the_first_images_alone(one_torch_thread):
    from xigsnr_naslib.passes import ImageActivations

    model, data = tiny(), batches(b=5)
    bn = model[2]
    state = _state(model)
    request = ImageActivations(("ReLU", "BatchNorm1d"), images=2)
    (relu_name, relu), (bn_name, normalised) = run_passes(model, data, F.cross_entropy, [request])[request]
    assert (relu_name, bn_name) == ("1", "2")
    x = data[0][0][:2]
    pre = model[0](x).detach().clamp(min=0)
    assert torch.equal(relu, pre)
    # BatchNorm over the two images only (not the batch of five): the same operations on the same values
    expected = F.batch_norm(pre, None, None, bn.weight.detach(), bn.bias.detach(), True, 0.0, bn.eps)
    assert torch.equal(normalised, expected)
    assert _same_state(model, state)


def test_image_activations_refuse_more_images_than_a_batch_holds():
    from xigsnr_naslib.passes import ImageActivations

    proxy = Proxy("needs_8_images", lambda r: 0.0, (ImageActivations(images=8),))
    with pytest.raises(ValueError, match="'needs_8_images' is not computable: it reads 8 images.*hold 5"):
        proxy(tiny(), batches(b=5))


def test_stage_features_are_the_stage_outputs_of_a_reinitialised_copy_on_seeded_noise(one_torch_thread):
    from xigsnr_naslib.core.initialisation import reinitialise
    from xigsnr_naslib.passes import StageFeatures

    model = _tiny_nb201()
    state = _state(model)
    data = [(torch.ones(3, 3, 32, 32), torch.zeros(3, dtype=torch.long))]
    request = StageFeatures(seed=5)
    maps = run_passes(model, data, F.cross_entropy, [request])[request]
    assert maps.reason is None and maps.names == ["stem", "cells.0", "cells.1", "cells.2", "cells.3", "cells.4"]
    assert all(f.requires_grad for f in maps.features)  # the graph is kept
    assert _same_state(model, state)  # the network given is untouched
    # independently: a copy re-drawn from the same seed, fed the same noise, stage by stage
    twin = _tiny_nb201()
    reinitialise(twin, "kaiming_normal_fan_in", torch.Generator().manual_seed(5))
    noise = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        f = twin.stem(noise)
        expected = [f]
        for cell in twin.cells:
            f = cell(f)
            expected.append(f)
    for ours, theirs in zip(maps.features, expected):
        assert torch.equal(ours.detach(), theirs)


def test_stage_features_of_a_network_without_stages_say_why(one_torch_thread):
    from xigsnr_naslib.passes import StageFeatures

    maps = run_passes(tiny(), batches(), F.cross_entropy, [StageFeatures()])[StageFeatures()]
    assert maps.features == [] and "does not name its feature stages" in maps.reason


def test_reinitialise_draws_kaiming_normal_fan_in_weights():
    from xigsnr_naslib.core.initialisation import reinitialise

    conv = nn.Conv2d(64, 128, 3)
    bn = nn.BatchNorm2d(4)
    bn.weight.data.fill_(3.0)
    model = nn.Sequential(conv, bn)
    reinitialise(model, "kaiming_normal_fan_in", torch.Generator().manual_seed(0))
    std = float(conv.weight.detach().std())
    # std sqrt(2 / 576) = 0.0589 estimated from 73,728 draws: relative standard error ~0.3%, 2% is > 6 sigma
    assert std == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.02)
    assert torch.all(conv.bias == 0) and torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    with pytest.raises(ValueError, match="unknown initialisation scheme 'xavier'; choose one of: kaiming_normal_fan_in"):
        reinitialise(model, "xavier", torch.Generator())


def test_logit_jacobians_leave_the_network_as_found(one_torch_thread):
    from xigsnr_naslib.passes import LogitJacobians

    model = _tiny_nb201()
    state = _state(model)
    request = LogitJacobians(max_tensors=7)
    result = run_passes(model, [(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))], F.cross_entropy,
                        [request])[request]
    assert result.jacobians.shape == (2, 10, 7) and result.logits.shape == (2, 10)
    assert result.names == [n for n, _ in model.named_parameters()][:7]
    assert _same_state(model, state) and all(p.requires_grad and p.grad is None for p in model.parameters())
