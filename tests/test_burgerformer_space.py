"""The BurgerFormer adapter: released models, closed-form sizes, strings, rules and operators."""
import random

import pytest
import torch

from xigsnr_naslib.core.complexity import count_flops, count_params
from xigsnr_burgerformer import (
    ALL_SKIP,
    BURGERFORMER_BASE,
    BURGERFORMER_LARGE,
    BURGERFORMER_SMALL,
    BURGERFORMER_TINY,
    BurgerFormerSpace,
    from_config,
    stage_sizes,
    to_config,
)
from xigsnr_naslib.benchmarks import create_space


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Published figures: the model table of the BurgerFormer repository README
# (github.com/xingxing-123/BurgerFormer: FLOPs/G 1.0, 2.1, 3.9, 6.5 and Params/M 10, 14, 26, 36
# for tiny, small, base, large), the same as Yang et al. (ICML 2022), Table 2; the xi-GSNR
# paper's Table 7 quotes BurgerFormer(-base) as 26M / 3.9G. The architectures are the
# repository's arch.py. The released FLOPs are counted by the authors' own counter, which
# also counts norms, activations, biases and pooling (our convention="released").
PUBLISHED = [
    ("tiny", BURGERFORMER_TINY, 10e6, 1.0e9),
    ("small", BURGERFORMER_SMALL, 14e6, 2.1e9),
    ("base", BURGERFORMER_BASE, 26e6, 3.9e9),
    ("large", BURGERFORMER_LARGE, 36e6, 6.5e9),
]


@pytest.mark.parametrize("name, code, params, flops", PUBLISHED)
def test_released_models_have_published_size(name, code, params, flops):
    space = BurgerFormerSpace()
    arch = space.decode(code)
    assert abs(space.count_params(arch) / params - 1) < 0.02
    assert abs(space.count_flops(arch, convention="released") / flops - 1) < 0.02
    # multiply-adds alone are a few percent fewer than the released count, never more
    macs = space.count_flops(arch)
    assert 0.95 * flops < macs < space.count_flops(arch, convention="released")


@pytest.mark.parametrize("code", [BURGERFORMER_TINY, BURGERFORMER_BASE])
def test_closed_forms_match_the_built_network(code):
    space = BurgerFormerSpace()
    arch = space.decode(code)
    model = space.build(arch, num_classes=1000)
    assert space.count_params(arch) == count_params(model)
    # the hook counter sees Conv2d/Linear only: the closed form adds the two attention products
    n = [k * k for k in stage_sizes(224)]
    products = sum(2 * n[i] ** 2 * s.width * s.depth * sum("self_atten" in b for b in s.blocks)
                   for i, s in enumerate(arch))
    assert (products > 0) == ("self_atten" in code)
    assert space.count_flops(arch) == count_flops(model, (3, 224, 224)) + products


def test_spatial_mlp_follows_the_resolution():
    code = BURGERFORMER_TINY  # stage 3 has a spatial MLP
    for resolution in (32, 64):
        space = BurgerFormerSpace(resolution=resolution)
        arch = space.decode(code)
        model = space.build(arch, num_classes=10)
        assert model(torch.randn(2, 3, resolution, resolution)).shape == (2, 10)
        assert space.count_params(arch, 10) == count_params(model)
        assert space.count_flops(arch, num_classes=10) == count_flops(model, (3, resolution, resolution))


def test_released_dictionaries_convert_both_ways():
    space = BurgerFormerSpace()
    # the first stage of BurgerFormer-tiny in the released arch.py format
    stage1 = {"macro": {"depth": 2, "width": 32, "ratio": 4},
              "meso": {"use_layer_scale": [False, True, True], "is_drop": [False, True, True],
                       "1": "skip-skip-skip-skip-skip", "2": "skip-GN-dwise_3x3-skip-gelu",
                       "3": "skip-skip-avgpool-LN-silu", "0->1": "none", "0->2": "none", "1->2": "skip",
                       "0->3": "none", "1->3": "none", "2->3": "skip"}}
    tiny = space.decode(BURGERFORMER_TINY)
    config = to_config(tiny)
    assert config["stage-1"] == stage1
    assert from_config(config) == tiny
    broken = to_config(tiny)
    broken["stage-1"]["meso"]["use_layer_scale"] = [True, True, True]
    with pytest.raises(ValueError, match="use_layer_scale"):
        from_config(broken)
    with pytest.raises(ValueError, match="stage-4"):
        from_config({k: v for k, v in config.items() if k != "stage-4"})


@pytest.mark.parametrize("search_edges", [False, True])
def test_sampled_mutated_crossed_archs_follow_the_rules_and_round_trip(search_edges):
    space = create_space("burgerformer", search_edges=search_edges)
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(40)]
    for a, b in zip(archs, archs[1:]):
        for arch in (a, space.mutate(a, rng), space.mutate(a, rng, rate=0.3), space.crossover(a, b, rng)):
            assert space.is_valid(arch)
            code = space.encode(arch)
            assert space.decode(code) == arch
        assert space.mutate(a, rng) != a
    # stages 1 and 2 never get global mixers; an all-skip bread never gets a layer scale
    for arch in archs:
        for s in arch[:2]:
            assert not any(op in b for b in s.blocks for op in ("self_atten", "spatial_mlp"))
        for s in arch:
            scales = to_config((s,) * 4)["stage-1"]["meso"]["use_layer_scale"]
            assert scales == [s.blocks[0] != ALL_SKIP, True, s.blocks[2] != ALL_SKIP]
    if search_edges:  # edges are searched, yet every block keeps an identity path
        assert len({s.edges for arch in archs for s in arch}) > 3


def test_bad_architectures_are_named():
    space = BurgerFormerSpace()
    tiny = BURGERFORMER_TINY.split("|")
    with pytest.raises(ValueError, match="stage 1 sub-block 2.*exactly one norm"):
        space.decode("|".join([tiny[0].replace("skip-GN-dwise_3x3-skip-gelu", "skip-GN-dwise_3x3-BN-gelu")] + tiny[1:]))
    with pytest.raises(ValueError, match="stage 1 sub-block 3.*breaks the choices"):
        space.decode("|".join([tiny[0].replace("avgpool", "self_atten")] + tiny[1:]))
    with pytest.raises(ValueError, match="stage 2: depth 9"):
        space.decode("|".join([tiny[0], tiny[1].replace("d4", "d9")] + tiny[2:]))
    with pytest.raises(ValueError, match="fixed pattern"):
        space.decode("|".join([tiny[0][:-6] + "111111"] + tiny[1:]))
    no_path = tiny[1][:-6] + "000000"
    with pytest.raises(ValueError, match="no identity path"):
        create_space("burgerformer", search_edges=True).decode("|".join([tiny[0], no_path] + tiny[2:]))
    with pytest.raises(ValueError, match="4 stages"):
        space.decode("|".join(tiny[:3]))
