"""Pass requests (xigsnr_naslib.passes): closed forms on tiny networks, the network left as
found, and a proxy's "not computable" recorded as such through the study."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import Protocol, Study
from xigsnr_naslib.passes import Activations, BatchGradients, NotComputable
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


# --- passes of the recent proxies: the first images alone, stage features, logit Jacobians ---------

def _tiny_nb201():
    from xigsnr_naslib.spaces.nb201 import NB201Network

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
    from xigsnr_naslib.initialisation import reinitialise
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
    from xigsnr_naslib.initialisation import reinitialise

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
