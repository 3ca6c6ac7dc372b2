"""The NAS-Bench-201 builder against the benchmark's recorded parameter counts."""
import random

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from xigsnr_naslib.core.complexity import count_params
from xigsnr_naslib.benchmarks import create_space, list_spaces
from xigsnr_naslib.core.pooling import ExactAvgPool2d
from xigsnr_naslib.benchmarks.nb201.space import Cell, NB201Network, OPERATIONS, arch_to_str, as_benchmark_code, parse_arch

#: records of params_MB that are not one CIFAR-10 network's count (see the data README):
#: five whole numbers that contradict the reference network definition...
CONTRADICTING_RECORDS = {737, 5065, 6545, 11964, 15372}
#: ...and 199 fractional values (averages), recognised by not being a whole count


@pytest.mark.slow  # all 15,625 records; test_count_depends_only_on_convolution_counts stays in the fast loop
def test_every_single_network_record_matches_exactly(data_root):
    table = pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv")
    recorded = table["params_MB"] * 1e6
    fractional = (recorded - recorded.round()).abs() > 1e-3
    assert fractional.sum() == 199
    # the count depends only on how many 1x1 and 3x3 convolutions the cell has: build one
    # network per combination, from the first arch string that has it
    counts = {}
    for arch_str in table["arch_str"]:
        ops = parse_arch(arch_str)
        key = (ops.count("nor_conv_1x1"), ops.count("nor_conv_3x3"))
        if key not in counts:
            counts[key] = count_params(NB201Network(ops, num_classes=10))
    ours = table["arch_str"].map(lambda s: counts[(parse_arch(s).count("nor_conv_1x1"), parse_arch(s).count("nor_conv_3x3"))])
    mismatched = set(table.loc[(ours != recorded.round()) & ~fractional, "nb201_index"])
    assert mismatched == CONTRADICTING_RECORDS
    assert (~fractional).sum() - len(CONTRADICTING_RECORDS) == 15421


def test_count_depends_only_on_convolution_counts():
    rng = random.Random(0)
    space = create_space("nb201")
    seen = {}
    for _ in range(30):
        arch = space.sample(rng)
        key = (arch.count("nor_conv_1x1"), arch.count("nor_conv_3x3"))
        n = count_params(space.build(arch))
        assert seen.setdefault(key, n) == n


@pytest.mark.parametrize("classes", [10, 100, 120])
def test_classifier_width_and_output(classes):
    model = NB201Network("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|", classes)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, classes)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, classes)  # ImageNet16-120 resolution


def test_string_round_trip_and_order():
    s = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|none~2|"
    ops = parse_arch(s)
    assert ops == ("avg_pool_3x3", "nor_conv_1x1", "skip_connect", "nor_conv_1x1", "skip_connect", "none")
    assert arch_to_str(ops) == s


@pytest.mark.parametrize("bad", [
    "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|none~1|",
    "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|none~0|+|none~0|+|none~0|none~1|none~2|",
    42,
])
def test_bad_strings_are_rejected_by_name(bad):
    with pytest.raises(ValueError, match="NAS-Bench-201|operation|node|edge"):
        parse_arch(bad)


def test_registry_and_search_operations():
    space = create_space("nb201")
    assert "nb201" in list_spaces()
    rng = random.Random(1)
    a = space.sample(rng)
    b = space.mutate(a, rng)
    assert sum(x != y for x, y in zip(a, b)) == 1 and all(op in OPERATIONS for op in b)
    c = space.crossover(a, b, rng)
    assert all(ci in (ai, bi) for ai, bi, ci in zip(a, b, c))
    assert space.decode(space.encode(a)) == a
    # the benchmark's string is canonical: every accepted spelling of a cell encodes to it
    code = space.encode(a)
    assert space.encode(code) == space.encode(list(a)) == space.encode(f" {code.replace('+', ' + ')} ") == code
    assert len(space.all_archs()) == 15625
    with pytest.raises(ValueError, match="unknown search space 'nb999'; choose one of: .*nb201"):
        create_space("nb999")


def _benchmark_cell_forward(cell, x):
    """The benchmark's cell: every edge's output summed, ``none`` as ``x * 0``."""
    nodes = [x]
    edge = 0
    for target in range(1, 4):
        terms = []
        for source in range(target):
            op = cell.edges[edge]
            terms.append(nodes[source].mul(0.0) if op.__class__.__name__ == "Zero" else op(nodes[source]))
            edge += 1
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        nodes.append(total)
    return nodes[3]


_CELL_FORWARD = Cell.forward


def _benchmark_flag_forward(cell, x):
    cell.evaluate_every_edge = True
    try:
        return _CELL_FORWARD(cell, x)
    finally:
        cell.evaluate_every_edge = False


#: (channels, cells per stage, image size): a tiny network in the fast loop; two cells per stage
#: (a cell fed by a cell) and CIFAR-size images in the full suite
SIZES = [pytest.param(4, 1, 8, id="tiny"), pytest.param(8, 2, 32, id="cifar", marks=pytest.mark.slow)]


@pytest.mark.parametrize("channels,cells,hw", SIZES)
@pytest.mark.parametrize("reference", [_benchmark_cell_forward, _benchmark_flag_forward])
@pytest.mark.parametrize("arch", [
    "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",   # none beside others
    "|none~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|none~2|",           # node 1 all none
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",                   # output all none
    "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|skip_connect~2|",
])
def test_skipping_none_edges_keeps_values_and_gradients(arch, reference, channels, cells, hw, monkeypatch):
    """Cells skip ``none`` terms; values and every gradient equal the benchmark's x*0 sums."""
    space = create_space("nb201", channels=channels, cells_per_stage=cells)
    x, y = torch.randn(16, 3, hw, hw), torch.randint(0, 10, (16,))
    results = []
    for forward in (Cell.forward, reference):
        monkeypatch.setattr(Cell, "forward", forward)
        torch.manual_seed(0)
        model = space.build(arch)
        logits = model(x)
        F.cross_entropy(logits, y).backward()
        results.append((logits.detach(), [(n, p.grad) for n, p in model.named_parameters()]))
        monkeypatch.undo()
    (logits, grads), (logits_ref, grads_ref) = results
    assert torch.equal(logits, logits_ref)
    for (name, g), (_, g_ref) in zip(grads, grads_ref):
        assert (g is None) == (g_ref is None), name
        assert g is None or torch.equal(g, g_ref), name


def test_as_benchmark_code_evaluates_every_edge_with_native_pooling():
    model = as_benchmark_code(create_space("nb201", channels=8, cells_per_stage=1).build(
        "|none~0|+|avg_pool_3x3~0|none~1|+|none~0|none~1|none~2|"))
    assert not any(isinstance(m, ExactAvgPool2d) for m in model.modules())
    cells = [m for m in model.modules() if isinstance(m, Cell)]
    assert cells and all(c.evaluate_every_edge for c in cells)
    calls = []
    for m in model.modules():
        if type(m).__name__ == "Zero":
            m.register_forward_hook(lambda *args: calls.append(1))
    model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 5 * len(cells)  # all five none edges of every cell ran


@pytest.mark.parametrize("channels,cells,hw", SIZES)
@pytest.mark.parametrize("mode", ["official", "paper"])
def test_scores_equal_on_the_benchmark_form(mode, channels, cells, hw):
    """End to end: the library's network (exact pooling, none terms left out) scores exactly
    as the benchmark's form of the same network."""
    from xigsnr_naslib.core.gsnr import xi_gsnr

    space = create_space("nb201", channels=channels, cells_per_stage=cells)
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.randn(16, 3, hw, hw, generator=gen), torch.randint(0, 10, (16,), generator=gen))
               for _ in range(3)]
    for arch in ("|avg_pool_3x3~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|",
                 "|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|"):
        scores = []
        for form in (lambda m: m, as_benchmark_code):
            torch.manual_seed(0)
            scores.append(xi_gsnr(form(space.build(arch)), batches, mode=mode))
        assert scores[0] == scores[1], arch
