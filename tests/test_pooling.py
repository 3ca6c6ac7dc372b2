"""ExactAvgPool2d: bit for bit nn.AvgPool2d on the CPU, forward and backward, on every path."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.core import pooling
from xigsnr_naslib.core.gsnr import xi_gsnr
from xigsnr_naslib.core.pooling import ExactAvgPool2d, avg_pool_exact, avg_pool_stride1, pooling_backend, use_native_pooling
from xigsnr_naslib.benchmarks import create_space


def _native(x, kernel, padding, stride=1):
    return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)


def _value_and_grad(fn, x, grad_out):
    x = x.detach().requires_grad_(True)
    y = fn(x)
    (g,) = torch.autograd.grad(y, x, grad_out)
    return y, g


@pytest.fixture
def backend(monkeypatch):
    """The exact implementation, asked for by name."""
    monkeypatch.setenv("XIGSNR_POOLING", "torch")
    assert pooling_backend() == "torch"
    return "torch"


def test_the_exact_implementation_is_the_default(monkeypatch):
    monkeypatch.delenv("XIGSNR_POOLING", raising=False)
    assert pooling_backend() == "torch"
    monkeypatch.setenv("XIGSNR_POOLING", "auto")
    assert pooling_backend() == "torch"
    monkeypatch.setenv("XIGSNR_POOLING", "native")
    assert pooling_backend() == "native"
    x = torch.randn(2, 3, 9, 9)
    assert torch.equal(avg_pool_stride1(x, 3, 1), _native(x, 3, 1))


#: (kernel, padding, input shape): every window that fits the padded input
CASES = [(k, p, shape) for k, p in [(3, 1), (3, 0), (2, 0), (2, 1), (5, 2), (5, 1), (1, 0), (7, 3)]
         for shape in [(2, 3, 9, 7), (8, 16, 32, 32), (2, 5, 1, 1)] if min(shape[-2:]) + 2 * p >= k]


def _check_exact(kernel, stride, padding, shape, dtype):
    gen = torch.Generator().manual_seed(hash((kernel, stride, padding, shape)) % 2**31)
    # values over six orders of magnitude, so that any change of summation order shows
    scale = torch.logspace(-3, 3, shape[-1], dtype=dtype)
    x = torch.randn(shape, dtype=dtype, generator=gen) * scale
    out_shape = _native(x, kernel, padding, stride).shape
    grad_out = torch.randn(out_shape, dtype=dtype, generator=gen) * 1e3
    y_ref, g_ref = _value_and_grad(lambda t: _native(t, kernel, padding, stride), x, grad_out)
    y, g = _value_and_grad(lambda t: avg_pool_exact(t, kernel, stride, padding), x, grad_out)
    assert y.shape == y_ref.shape and g.shape == g_ref.shape
    assert torch.equal(y, y_ref)
    assert torch.equal(g, g_ref)


@pytest.mark.parametrize("kernel,padding,shape", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equal_to_native_kernel_bit_for_bit(backend, kernel, padding, shape, dtype):
    _check_exact(kernel, 1, padding, shape, dtype)


def test_a_different_summation_order_is_not_equal():
    """The check above can fail: summing the same window in another order changes bits."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 16, 32, 32, generator=gen) * torch.logspace(-3, 3, 32)
    padded = F.pad(x, (1, 1, 1, 1))
    reversed_order = sum(padded[..., a:a + 32, b:b + 32] for a in reversed(range(3)) for b in reversed(range(3)))
    assert not torch.equal(reversed_order / F.avg_pool2d(torch.ones(1, 1, 32, 32), 3, 1, 1,
                                                          count_include_pad=False, divisor_override=1),
                           _native(x, 3, 1))


@pytest.mark.parametrize("threads", [1, 2])
def test_module_matches_nn_avgpool_with_threads(backend, threads):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(16, 8, 12, 12)
        exact, native = ExactAvgPool2d(3, 1, 1, count_include_pad=False), nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        grad_out = torch.randn(16, 8, 12, 12)
        assert all(torch.equal(a, b) for a, b in zip(_value_and_grad(exact, x, grad_out),
                                                     _value_and_grad(native, x, grad_out)))
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("settings", [
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=True),    # padding counted
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False, ceil_mode=True),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False, divisor_override=4),
    dict(kernel_size=(3, 1), stride=1, padding=(1, 0), count_include_pad=False),  # not square
])
def test_other_settings_fall_back_to_the_native_kernel(settings):
    x = torch.randn(2, 3, 9, 9)
    assert torch.equal(ExactAvgPool2d(**settings)(x), nn.AvgPool2d(**settings)(x))
    assert ExactAvgPool2d(**settings)._fast_settings() is None


@pytest.mark.parametrize("settings,fast", [
    (dict(kernel_size=2, stride=2, padding=0), (2, 2, 0)),  # NB201's reduction block: padding 0 counts nothing
    (dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), (3, 2, 1)),
    (dict(kernel_size=3, padding=1, count_include_pad=False), (3, 3, 1)),  # stride defaults to the kernel
])
def test_strided_settings_take_the_exact_path(backend, settings, fast):
    pool = ExactAvgPool2d(**settings)
    assert pool._fast_settings() == fast
    x = torch.randn(4, 8, 16, 16)
    native = nn.AvgPool2d(**settings)
    grad_out = torch.randn_like(native(x))
    assert all(torch.equal(a, b) for a, b in zip(_value_and_grad(pool, x, grad_out), _value_and_grad(native, x, grad_out)))


def test_half_precision_falls_back():
    x = torch.randn(2, 3, 8, 8).to(torch.bfloat16)
    assert torch.equal(ExactAvgPool2d(3, 1, 1, count_include_pad=False)(x), _native(x, 3, 1))


def test_under_vmap_and_grad(backend):
    """torch.func transforms (the vmap strategy) see the same values as a loop."""
    x = torch.randn(4, 2, 3, 10, 10, dtype=torch.float64)

    def loss(t):
        return avg_pool_stride1(t, 3, 1).pow(2).sum()

    def loss_native(t):
        return _native(t, 3, 1).pow(2).sum()

    batched = torch.func.vmap(torch.func.grad(loss))(x)
    assert torch.equal(batched, torch.stack([torch.func.grad(loss_native)(t) for t in x]))


#: (channels, image size) of the NB201 networks below: tiny in the fast loop, CIFAR-size images in
#: the full suite (the pooling itself is checked at every CIFAR size above)
NETWORK_SIZES = [pytest.param(4, 8, id="tiny"), pytest.param(8, 32, id="cifar", marks=pytest.mark.slow)]


@pytest.mark.parametrize("channels,hw", NETWORK_SIZES)
def test_nb201_network_gradients_equal_with_native_pooling(backend, channels, hw):
    arch = "|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    space = create_space("nb201", channels=channels, cells_per_stage=1)
    torch.manual_seed(0)
    fast = space.build(arch)
    torch.manual_seed(0)
    native = use_native_pooling(space.build(arch))
    assert any(isinstance(m, ExactAvgPool2d) for m in fast.modules())
    assert not any(isinstance(m, ExactAvgPool2d) for m in native.modules())
    x, y = torch.randn(16, 3, hw, hw), torch.randint(0, 10, (16,))
    for model in (fast, native):
        F.cross_entropy(model(x), y).backward()
    for (name, p_fast), p_native in zip(fast.named_parameters(), native.parameters()):
        assert torch.equal(p_fast.grad, p_native.grad), name


def test_use_native_pooling_keeps_settings_and_mode():
    model = nn.Sequential(ExactAvgPool2d(5, 1, 2, count_include_pad=False)).eval()
    use_native_pooling(model)
    pool = model[0]
    assert type(pool) is nn.AvgPool2d and not pool.training
    assert (pool.kernel_size, pool.stride, pool.padding, pool.count_include_pad) == (5, 1, 2, False)


def test_all_sizes_of_a_cifar_network_are_exact(backend):
    shapes = [(64, c, s, s) for c, s in ((16, 32), (32, 16), (64, 8))]
    for shape in shapes:
        x, grad_out = torch.randn(shape), torch.randn(shape)
        assert all(torch.equal(a, b) for a, b in zip(
            _value_and_grad(lambda t: avg_pool_stride1(t, 3, 1), x, grad_out),
            _value_and_grad(lambda t: _native(t, 3, 1), x, grad_out)))


def test_blocks_of_planes_split_anywhere(monkeypatch):
    """The PyTorch path handles blocks that do not divide the planes, down to one plane."""
    monkeypatch.setenv("XIGSNR_POOLING", "torch")
    for block_bytes in (1, 3 * 34 * 34 * 4, 10**9):
        monkeypatch.setattr(pooling, "BLOCK_BYTES", block_bytes)
        _check_exact(3, 1, 1, (2, 5, 32, 32), torch.float32)


def test_non_contiguous_input(backend):
    x = torch.randn(4, 16, 12, 12).to(memory_format=torch.channels_last)
    grad_out = torch.randn(4, 16, 12, 12)
    assert all(torch.equal(a, b) for a, b in zip(
        _value_and_grad(lambda t: avg_pool_stride1(t, 3, 1), x, grad_out),
        _value_and_grad(lambda t: _native(t, 3, 1), x, grad_out)))


@pytest.mark.parametrize("value", ["fast", "c"])
def test_unknown_backend_setting_is_named(monkeypatch, value):
    monkeypatch.setenv("XIGSNR_POOLING", value)
    with pytest.raises(ValueError, match=f"XIGSNR_POOLING='{value}'"):
        pooling_backend()


@pytest.mark.parametrize("channels,hw", NETWORK_SIZES)
@pytest.mark.parametrize("mode", ["official", "per_sample"])
def test_scores_equal_bit_for_bit_with_the_native_kernel(monkeypatch, mode, channels, hw):
    """What the networks are for: a score is the same number with either implementation."""
    arch = "|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    space = create_space("nb201", channels=channels, cells_per_stage=1)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, hw, hw, generator=gen), torch.randint(0, 10, (8,), generator=gen)) for _ in range(2)]
    scores = {}
    for backend in ("torch", "native"):
        monkeypatch.setenv("XIGSNR_POOLING", backend)
        torch.manual_seed(0)
        scores[backend] = xi_gsnr(space.build(arch), batches[:1] if mode == "per_sample" else batches, mode=mode)
    assert scores["torch"] == scores["native"]
