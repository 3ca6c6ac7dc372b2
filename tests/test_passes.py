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
