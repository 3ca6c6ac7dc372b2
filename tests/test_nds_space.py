"""NDS networks: parameter counts equal every ImageNet record's, genotype errors name the record."""
import json

import pytest
import torch

from xigsnr_naslib.core.complexity import count_flops
from xigsnr_naslib.benchmarks import create_space, list_spaces
from xigsnr_naslib.benchmarks.nds.space import (
    NDS_SPACES,
    InvalidGenotypeError,
    NDSNetwork,
    canonical_net,
    count_nds_params,
    parse_net,
)

FILES = ["Amoeba", "DARTS", "ENAS", "NASNet", "PNAS"]
DARTS_V2 = {"normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
                       ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
            "normal_concat": [2, 3, 4, 5],
            "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
                       ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
            "reduce_concat": [2, 3, 4, 5]}


@pytest.fixture(scope="module")
def records(data_root):
    return {name: json.loads((data_root / "nds" / f"{name}_in.json").read_text()) for name in FILES}


def test_rule_count_equals_every_imagenet_record(records):
    total = 0
    for name, recs in records.items():
        for i, rec in enumerate(recs):
            net = parse_net(rec["net"], f"{name}_in.json[{i}]")
            assert count_nds_params(net, 1000, "imagenet") == rec["params"], (name, i)
            total += 1
    assert total == 603


@pytest.mark.parametrize("name", FILES)
def test_built_networks_have_the_record_counts(records, name):
    recs = records[name]
    for i in (0, len(recs) // 2, len(recs) - 1):
        with torch.device("meta"):
            model = create_space(f"nds_{name.lower()}_in").build(recs[i]["net"], num_classes=1000)
        assert sum(p.numel() for p in model.parameters()) == recs[i]["params"], (name, i)


def test_flops_close_to_records_on_imagenet(records):
    """Conv+linear multiply-adds at 224x224 fall 1-6% short of the records' ``flops``, which
    also count costs of other layers (see the README)."""
    rec = records["DARTS"][0]
    model = NDSNetwork(parse_net(rec["net"]), 1000, "imagenet")
    ratio = count_flops(model, (3, 224, 224)) / rec["flops"]
    assert 0.94 < ratio < 1.0


def test_cifar_network_darts_v2_size_and_forward():
    """DARTS (V2) at C=36, 20 cells: 3.3M parameters as the DARTS paper reports, aux head off."""
    net = parse_net({"genotype": DARTS_V2, "width": 36, "depth": 20})
    model = NDSNetwork(net, 10, "cifar")
    n = sum(p.numel() for p in model.parameters())
    assert n == count_nds_params(net, 10, "cifar")
    assert 3.3e6 < n < 3.4e6
    with_aux = NDSNetwork(net, 10, "cifar", auxiliary=True)
    assert sum(p.numel() for p in with_aux.parameters()) == count_nds_params(net, 10, "cifar", auxiliary=True)
    small = create_space("nds_darts").build({"genotype": DARTS_V2, "width": 8, "depth": 5}, num_classes=10)
    out = small(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_imagenet_stem_on_synthetic_batch():
    net = {"genotype": DARTS_V2, "width": 8, "depth": 3, "aux": True}
    model = create_space("nds_darts_in").build(net, num_classes=1000, auxiliary=True).train()
    logits, aux = model(torch.randn(2, 3, 224, 224))
    assert logits.shape == (2, 1000) and aux.shape == (2, 1000)
    assert sum(p.numel() for p in model.parameters()) == count_nds_params(parse_net(net), 1000, "imagenet", True)


def test_spaces_registered():
    names = list_spaces()
    for key in NDS_SPACES:
        assert key in names
    assert create_space("nds_pnas_in").default_resolution == 224


@pytest.mark.parametrize("mutate, message", [
    (lambda n: n["genotype"]["normal"].__setitem__(0, ["conv_9x9", 0]), "unknown operation 'conv_9x9'"),
    (lambda n: n["genotype"]["reduce"].__setitem__(3, ["max_pool_3x3", 7]), "reads input 7"),
    (lambda n: n["genotype"].pop("reduce_concat"), "reduce_concat"),
    (lambda n: n.pop("width"), "width"),
    (lambda n: n["genotype"]["normal"].pop(), "even number"),
    (lambda n: n["genotype"].__setitem__("normal_concat", [2, 9]), r"node\(s\) \[9\]"),
])
def test_bad_genotypes_name_the_record(mutate, message):
    net = {"genotype": json.loads(json.dumps(DARTS_V2)), "width": 16, "depth": 8}
    mutate(net)
    with pytest.raises(InvalidGenotypeError, match=message) as info:
        parse_net(net, "DARTS.json[42]")
    assert "DARTS.json[42]" in str(info.value)


def test_encoding_round_trip():
    space = create_space("nds_enas")
    net = space.decode({"genotype": DARTS_V2, "width": 16, "depth": 8})
    code = space.encode(net)
    # the string is the canonical genotype's (DARTS-V2 lists node 4's inputs as 1, 0), a fixed point
    assert space.decode(code) == canonical_net(net) != net and space.encode(space.decode(code)) == code
    # the canonical genotype builds a network of the record's size: the same parameters, reordered
    assert count_nds_params(canonical_net(net)) == count_nds_params(net)
