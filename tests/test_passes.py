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
    from xigsnr_naslib.correlation_job import Selection, correlate
    from xigsnr_naslib.metrics import kendall_tau
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
