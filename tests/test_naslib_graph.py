"""The NASLib-style graph: the contract NASLib's ZeroCost.query and evaluators rely on, without NASLib.

``contract_zero_cost_query`` does, in order, what NASLib's ``ZeroCost.query`` and its
``find_measures`` do with a graph (as read in NASLib's source): ask for the loss and the
number of classes, move the graph to the CPU, make a copy of it (NASLib deep-copies when a
graph has no ``get_prunable_copy``), move the copy to the device, put it in train mode, run
a batch through it and back-propagate, and read the gradients of its parameters.
"""
import copy
import random

import pytest
import torch

from xigsnr_naslib.core.gsnr import xi_gsnr
from xigsnr_naslib.benchmarks import create_space


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def contract_zero_cost_query(graph, batch, device="cpu"):
    loss_fn = graph.get_loss_fn()
    n_classes = graph.num_classes
    graph = graph.cpu()
    net = copy.deepcopy(graph)
    net.to(device).train()
    net.zero_grad()
    x, y = batch
    assert int(y.max()) < n_classes
    loss_fn(net(x.to(device)), y.to(device)).backward()
    return sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", ["proxylessnas_xigsnr", "burgerformer"])
def test_graph_satisfies_the_zero_cost_contract(name):
    space = create_space(name, resolution=32)
    graph = space.naslib_graph(num_classes=10)
    graph.sample_random_architecture(rng=random.Random(0))
    assert graph.get_type() == name
    batch = (torch.randn(4, 3, 32, 32), torch.arange(4) % 10)
    grad_norm = contract_zero_cost_query(graph, batch)
    assert grad_norm > 0
    # the graph is an nn.Module holding the architecture's network: parameters and all
    assert sum(p.numel() for p in graph.parameters()) == space.count_params(graph.get_spec(), num_classes=10)


@pytest.mark.parametrize("name", ["proxylessnas_xigsnr", "burgerformer"])
def test_hash_set_spec_clone_and_mutate_round_trip(name):
    space = create_space(name, resolution=32)
    graph = space.naslib_graph(num_classes=10)
    with pytest.raises(ValueError, match="no architecture"):
        graph.get_hash()
    graph.sample_random_architecture(rng=random.Random(1))
    other = space.naslib_graph(num_classes=10)
    other.set_spec(graph.get_hash())  # NASLib stores hashes and rebuilds graphs from them
    assert other.get_spec() == graph.get_spec()
    clone = graph.clone()
    assert clone.get_hash() == graph.get_hash() and clone is not graph
    child = space.naslib_graph(num_classes=10)
    child.mutate(graph, rng=random.Random(2))
    assert space.is_valid(child.get_spec()) and child.get_hash() != graph.get_hash()
    with pytest.raises(NotImplementedError, match="no benchmark"):
        graph.query("VAL_ACCURACY", "imagenet")


def test_seeded_graph_scores_as_the_library_does():
    space = create_space("proxylessnas_xigsnr", resolution=32)
    arch = space.sample(random.Random(3))
    graph = space.naslib_graph(arch, num_classes=10)
    graph.seed = 7
    graph.parse()
    torch.manual_seed(7)
    model = space.build(arch, num_classes=10)
    batches = [(torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(i)), torch.arange(4)) for i in range(2)]
    assert xi_gsnr(graph.train(), batches) == pytest.approx(xi_gsnr(model.train(), batches), rel=1e-6)
