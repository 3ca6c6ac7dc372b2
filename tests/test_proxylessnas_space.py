"""The ProxylessNAS adapter: released models, closed-form sizes, strings and search operators."""
import random

import pytest
import torch

from xigsnr_naslib.core.complexity import count_flops, count_params
from xigsnr_proxylessnas import (
    CHOICES,
    PROXYLESSNAS_GPU,
    PROXYLESSNAS_MOBILE,
    ZERO,
    ProxylessNASSpace,
    ProxylessNASXiGSNRSpace,
    Skeleton,
)
from xigsnr_naslib.benchmarks import create_space, list_spaces
from xigsnr_naslib.benchmarks.card import get_card


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Published figures: the evaluation logs of the ProxylessNAS repository
# (github.com/mit-han-lab/proxylessnas, logs/imagenet_gpu_log.txt: "Total training params:
# 7.12M", "Total FLOPs: 465.3M"; logs/imagenet_mobile_log.txt: "4.08M", "320.4M"), which are
# also the paper's Table 3 figures for ProxylessNAS-GPU / -Mobile. The architectures are the
# released configurations proxyless_gpu.config and proxyless_mobile.config (github.com/han-cai/files).
PUBLISHED = [
    ("gpu", PROXYLESSNAS_GPU, 7.12e6, 465.3e6),
    ("mobile", PROXYLESSNAS_MOBILE, 4.08e6, 320.4e6),
]


@pytest.mark.parametrize("skeleton, code, params, flops", PUBLISHED)
def test_released_models_have_published_size(skeleton, code, params, flops):
    space = ProxylessNASSpace(skeleton=skeleton)
    arch = space.decode(code)
    model = space.build(arch, num_classes=1000)
    assert abs(count_params(model) / params - 1) < 0.01
    assert abs(count_flops(model, (3, 224, 224)) / flops - 1) < 0.01
    # the closed forms used by the search agree exactly with the built network
    assert space.count_params(arch) == count_params(model)
    assert space.count_flops(arch, resolution=224) == count_flops(model, (3, 224, 224))


def test_gpu_skeleton_is_the_search_skeleton_scaled_by_1_35():
    gpu = ProxylessNASSpace(skeleton="gpu").skeleton
    assert (gpu.stem, gpu.first, gpu.widths, gpu.last) == (40, 24, (32, 56, 112, 128, 256, 432), 1728)
    assert ProxylessNASSpace(width_mult=1.35).skeleton == gpu


@pytest.mark.parametrize("name", ["proxylessnas", "proxylessnas_xigsnr"])
def test_closed_forms_match_built_networks(name):
    space = create_space(name)
    rng = random.Random(3)
    for resolution, num_classes in ((64, 10), (97, 1000)):
        arch = space.sample(rng)
        model = space.build(arch, num_classes=num_classes)
        assert space.count_params(arch, num_classes) == count_params(model)
        assert space.count_flops(arch, resolution, num_classes) == count_flops(model, (3, resolution, resolution))


def test_registered_and_shaped_as_the_paper_says():
    assert {"proxylessnas", "proxylessnas_xigsnr"} <= set(list_spaces())
    original, paper = create_space("proxylessnas"), create_space("proxylessnas_xigsnr")
    assert original.num_layers == 21 and paper.num_layers == 19
    # the original allows zero exactly where a shortcut exists: not on the 6 first layers of a stage
    assert sum(ZERO in original.options(i) for i in range(21)) == 15
    assert all(paper.options(i) == CHOICES for i in range(19))
    assert isinstance(paper, ProxylessNASXiGSNRSpace)
    assert dict(get_card("proxylessnas_xigsnr").paper_constraints) == {"max_flops": 400e6}
    assert not get_card("proxylessnas").paper_constraints  # the paper searched the other space
    # the paper's constraint (about 400M) cuts through the space
    flops = [paper.count_flops(a) for a in (("k3e3",) * 19, ("k7e6",) * 19)]
    assert flops[0] < 400e6 < flops[1]


@pytest.mark.parametrize("name", ["proxylessnas", "proxylessnas_xigsnr"])
def test_sampled_mutated_crossed_archs_follow_the_rules_and_round_trip(name):
    space = create_space(name)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(30)]
    for a, b in zip(archs, archs[1:]):
        for arch in (a, space.mutate(a, rng), space.mutate(a, rng, rate=0.5), space.crossover(a, b, rng)):
            assert space.is_valid(arch)
            code = space.encode(arch)
            assert space.decode(code) == space.canonical_arch(arch) and space.encode(space.decode(code)) == code
            assert space.arch_hash(arch) == space.arch_hash(space.decode(code))
        assert space.mutate(a, rng) != a
        child = space.crossover(a, b, rng)
        assert all(c in (x, y) for c, x, y in zip(child, a, b))
    assert len({space.encode(a) for a in archs}) == len(archs)
    # seeded sampling is reproducible
    assert [space.sample(random.Random(5)) for _ in range(3)] == [space.sample(random.Random(5)) for _ in range(3)]


def test_bad_architectures_are_named():
    space = create_space("proxylessnas")
    with pytest.raises(ValueError, match="layer 0 cannot be 'zero'"):
        space.validate((ZERO,) + ("k3e3",) * 20)
    with pytest.raises(ValueError, match="stage 1 .* 3 layers, expected 4"):
        space.decode("k3e3-k3e3-k3e3-k3e3|k3e3-k3e3-k3e3|" + "|".join(["k3e3-k3e3-k3e3-k3e3"] * 3) + "|k3e3")
    with pytest.raises(ValueError, match="unknown ProxylessNAS skeleton"):
        ProxylessNASSpace(skeleton="tpu")
    with pytest.raises(ValueError, match="cannot be 'zero'"):
        create_space("proxylessnas_xigsnr").decode("zero-k3e3|" + "|".join(["k3e3-k3e3-k3e3-k3e3"] * 4) + "|k3e3")
    with pytest.raises(ValueError):
        Skeleton(widths=(24, 40), depths=(1,), strides=(2,))


def test_network_runs_at_low_resolution_and_zero_layers_are_identities():
    space = create_space("proxylessnas")
    arch = space.decode(PROXYLESSNAS_GPU)
    model = space.build(arch, num_classes=7)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
    n_identity = sum(isinstance(b, torch.nn.Identity) for b in model.blocks)
    assert n_identity == arch.count(ZERO) == 8
