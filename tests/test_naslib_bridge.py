"""Contract tests of the NASLib bridge: in the real NASLib where it is importable, else a stand-in.

Where NASLib imports (the NASLib environments of ``tests/test_in_real_naslib.py``, both
branches), ``registry`` is NASLib's own measures registry (its ``_measure_impls`` and
``available_measures`` swapped for copies during each test, so a test starts from NASLib's own
measures alone) and ``find_measures`` is NASLib's ``predictive.find_measures`` over a one-batch
loader. Elsewhere the stand-in (``tests/naslib_standin.py``) reproduces that registry (the
``measure`` decorator with ``bn``/``copy_net``, the copy that drops BatchNorm when ``bn=False``,
the error on a name registered twice, ``calc_measure``'s plain lookup) and ``find_measures``'
call sequence (one batch, ``calc_measure(name, net, device, inputs, targets, loss_fn=...,
split_data=1)``, the returned list of tensors summed with ``torch.sum`` and ``.item()``). Every
test here thus runs against the real host too. The values are checked against the core estimators.
"""
import importlib
import math
import sys
import types

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib import XiGSNR, get_proxy
from xigsnr_naslib.integrations.naslib import bridge
from xigsnr_naslib.benchmarks.nb201.space import NB201Network
from xigsnr_naslib.proxies.zico import zico

from naslib_standin import find_measures as standin_find_measures, install_fake_naslib, make_registry

bridge.add_collections_aliases()
try:
    REAL, LAYOUT = bridge.find_measures_module()
except bridge.NASLibNotFound:
    REAL = LAYOUT = None


def naslib_ready(net):
    """In the real NASLib a measure copies the network with ``net.get_prunable_copy(bn=...)``, which
    NASLib's ``find_measures_arrays`` attaches to a plain module (``predictive.copynet``): so do we."""
    if REAL is not None:
        from importlib import import_module

        predictive = import_module(REAL.__name__.rsplit(".", 1)[0] + ".predictive")
        net.get_prunable_copy = types.MethodType(predictive.copynet, net)
    return net


def find_measures(registry, net, inputs, targets, name, loss_fn=F.cross_entropy):
    """NASLib's ``predictive.find_measures`` (real NASLib), or the stand-in's call sequence."""
    if REAL is None:
        return standin_find_measures(registry, net, inputs, targets, name, loss_fn)
    from importlib import import_module

    predictive = import_module(REAL.__name__.rsplit(".", 1)[0] + ".predictive")
    return predictive.find_measures(net, bridge.FixedBatchLoader(inputs, targets), ("random", 1, 10),
                                    torch.device("cpu"), loss_fn, measure_names=[name])

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
SPLIT = dict(n_batches=3, batch_size=4)


@pytest.fixture
def registry(monkeypatch):
    if REAL is None:
        module = make_registry()
    else:  # NASLib's own registry, holding NASLib's own measures only, restored after the test
        module = REAL
        theirs = {k: v for k, v in module._measure_impls.items() if k not in getattr(module, "_xigsnr_registered", {})}
        monkeypatch.setattr(module, "_measure_impls", theirs)
        monkeypatch.setattr(module, "available_measures", [m for m in module.available_measures if m in theirs])
        monkeypatch.delattr(module, "_xigsnr_registered", raising=False)  # no registration of ours
        monkeypatch.setattr(module, "calc_measure", module.calc_measure)  # guard_registry wraps it
    yield module


@pytest.fixture
def one_batch():
    gen = torch.Generator().manual_seed(0)
    n = SPLIT["n_batches"] * SPLIT["batch_size"]
    return torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def small_net(seed=0):
    torch.manual_seed(seed)
    return naslib_ready(NB201Network(ARCH, num_classes=10, channels=4, cells_per_stage=1).train())


def split_batches(x, y, n_batches=SPLIT["n_batches"], batch_size=SPLIT["batch_size"]):
    return [(x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]) for i in range(n_batches)]


@pytest.mark.parametrize("name,settings", [
    ("xi_gsnr", dict(mode="official")),
    ("xi_gsnr_official", dict(mode="official")),
    ("xi_gsnr_paper", dict(mode="paper")),
    ("gsnr", dict(mode="official", variant="gsnr")),
    ("gsnr_sq_mean", dict(mode="official", variant="sq_mean")),
    ("gsnr_inv_var", dict(mode="official", variant="inv_var")),
    ("gsnr_inv_var_xi", dict(mode="official", variant="inv_var_xi")),
])
def test_measures_called_as_naslib_does_match_the_estimator(registry, one_batch, name, settings):
    assert bridge.register_naslib_measures(measures_module=registry, **SPLIT) == list(bridge.DEFAULT_MEASURES)
    x, y = one_batch
    got = find_measures(registry, small_net(), x, y, name)
    expected = XiGSNR(**settings).score(small_net(), split_batches(x, y))
    assert got == pytest.approx(expected, rel=1e-12)
    assert bridge.last_raw_score(name, registry) == pytest.approx(expected, rel=1e-12)


def test_zico_measure_matches_zico(registry, one_batch):
    bridge.register_naslib_measures(["zico"], measures_module=registry, **SPLIT)
    x, y = one_batch
    assert find_measures(registry, small_net(), x, y, "zico") == pytest.approx(zico(small_net(), split_batches(x, y)),
                                                                                rel=1e-12)


def test_return_is_a_list_of_one_float64_tensor_and_the_network_is_untouched(registry, one_batch):
    bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry, **SPLIT)
    net = small_net().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    out = registry.calc_measure("xi_gsnr", net, "cpu", *one_batch, loss_fn=F.cross_entropy, split_data=1)
    assert isinstance(out, list) and len(out) == 1
    assert out[0].dtype == torch.float64 and out[0].ndim == 0
    # copy_net=True: the original keeps its mode, weights, BatchNorm statistics and has no gradients
    assert not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


def test_split_data_is_ignored_and_signature_accepts_decorator_args(registry, one_batch):
    bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry, **SPLIT)
    x, y = one_batch
    fn = bridge.naslib_measure("xi_gsnr", bridge.BatchSplit(**SPLIT))
    a = fn(small_net(), x, y, loss_fn=F.cross_entropy, split_data=1)
    b = fn(small_net(), x, y, loss_fn=F.cross_entropy, split_data=2, mode="param")
    assert a[0].item() == b[0].item()


def test_a_batch_that_does_not_split_is_a_clear_error(registry):
    bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry)  # default 8 x 64
    x, y = torch.randn(100, 3, 8, 8), torch.randint(0, 10, (100,))
    with pytest.raises(ValueError, match=r"one batch of 100 images.*8 batches of 64 = 512.*batch_size: 512"):
        find_measures(registry, small_net(), x, y, "xi_gsnr")
    with pytest.raises(ValueError, match="12 inputs but 11 targets"):
        bridge.BatchSplit(3, 4).split(torch.randn(12, 1), torch.zeros(11), "xi_gsnr")


def test_registration_is_idempotent_and_follows_the_latest_split(registry, one_batch):
    bridge.register_naslib_measures(measures_module=registry)
    bridge.register_naslib_measures(measures_module=registry, **SPLIT)  # no KeyError from the registry
    assert [m for m in registry.available_measures if m in bridge.DEFAULT_MEASURES] == list(bridge.DEFAULT_MEASURES)
    x, y = one_batch
    assert math.isfinite(find_measures(registry, small_net(), x, y, "xi_gsnr"))  # 3 x 4 now applies
    info = bridge.registered_measures(registry)["zico"]
    assert info["n_batches"] == 3 and info["batch_size"] == 4 and info["bn"] and info["copy_net"]


def test_registry_semantics_are_respected(registry):
    registry.measure("zico")(lambda *a, **k: [torch.tensor(0.0)])  # NASLib's own measure of that name
    with pytest.raises(ValueError, match="already has a measure named 'zico'"):
        bridge.register_naslib_measures(["zico"], measures_module=registry)
    bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry)
    with pytest.raises(ValueError, match="cannot register a name twice"):
        bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry, copy_net=False)
    with pytest.raises(ValueError, match="bn=False needs copy_net=True"):
        bridge.register_naslib_measures(["gsnr"], measures_module=registry, bn=False, copy_net=False)
    with pytest.raises(ValueError, match="does not look at data"):
        bridge.naslib_measure("params")
    with pytest.raises(bridge.NASLibNotFound, match="not a NASLib measures registry"):
        bridge.register_naslib_measures(measures_module=types.ModuleType("empty"))


def test_bn_false_scores_the_network_without_batchnorm(registry, one_batch):
    bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry, bn=False, **SPLIT)
    x, y = one_batch
    got = find_measures(registry, small_net(), x, y, "xi_gsnr")
    no_bn = small_net()
    for parent in list(no_bn.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, child_name, nn.Identity())
    expected = XiGSNR().score(no_bn, split_batches(x, y))
    assert got == pytest.approx(expected, rel=1e-12)
    assert got != pytest.approx(XiGSNR().score(small_net(), split_batches(x, y)), rel=1e-3)


def test_copy_net_false_scores_in_place_and_restores_mode(registry, one_batch):
    bridge.register_naslib_measures(["xi_gsnr_paper"], measures_module=registry, copy_net=False, **SPLIT)
    net = small_net().eval()
    x, y = one_batch
    # the measure itself (NASLib's find_measures puts every network in train mode when it is done)
    got = registry.calc_measure("xi_gsnr_paper", net, "cpu", x, y, loss_fn=F.cross_entropy, split_data=1)[0].item()
    assert got == pytest.approx(XiGSNR(mode="paper").score(small_net(), split_batches(x, y)), rel=1e-12)
    assert not net.training and all(p.grad is None for p in net.parameters())


def test_non_finite_scores_are_kept_raw_and_mapped_like_naslib(registry):
    bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry, **SPLIT)
    x = torch.full((12, 3, 32, 32), float("nan"))
    with pytest.warns(RuntimeWarning):
        value = find_measures(registry, small_net(), x, torch.zeros(12, dtype=torch.long), "xi_gsnr")
    assert math.isnan(value) and math.isnan(bridge.last_raw_score("xi_gsnr", registry))
    assert bridge.naslib_score(value) == -1e8 and bridge.naslib_score(float("inf")) == -1e8
    assert bridge.naslib_score(2.5) == 2.5


@pytest.mark.parametrize("layout", ["Develop", "zerocost"])
def test_finds_either_layout_and_the_one_line_plugin_registers(monkeypatch, layout):
    registry = install_fake_naslib(monkeypatch, layout)
    found, name = bridge.find_measures_module()
    assert found is registry and name == layout
    monkeypatch.delitem(sys.modules, "xigsnr_naslib.naslib_plugin", raising=False)
    plugin = importlib.import_module("xigsnr_naslib.naslib_plugin")
    assert plugin.REGISTERED == list(bridge.DEFAULT_MEASURES)
    assert set(bridge.DEFAULT_MEASURES) <= set(registry._measure_impls)
    importlib.reload(plugin)  # a second import registers nothing twice
    assert registry.available_measures.count("xi_gsnr") == 1


def test_missing_naslib_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "naslib", None)
    with pytest.raises(ImportError, match="NASLib is not importable.*PYTHONPATH"):
        bridge.register_naslib_measures()
    monkeypatch.delitem(sys.modules, "xigsnr_naslib.naslib_plugin", raising=False)
    with pytest.raises(bridge.NASLibNotFound) as error:
        importlib.import_module("xigsnr_naslib.naslib_plugin")
    # one traceback: the import failure it names is not chained above it
    assert error.value.__suppress_context__ and error.value.__cause__ is None


def test_a_missing_dependency_of_naslib_is_named(monkeypatch):
    package = types.ModuleType("naslib")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "naslib", package)
    predictors = types.ModuleType("naslib.predictors")
    predictors.__path__ = []
    monkeypatch.setitem(sys.modules, "naslib.predictors", predictors)

    def fail(name, *args, **kwargs):
        if name.startswith("naslib.predictors.utils"):
            raise ModuleNotFoundError("No module named 'pybnn'", name="pybnn")
        return real_import(name, *args, **kwargs)

    real_import = importlib.import_module
    monkeypatch.setattr(bridge.importlib, "import_module", fail)
    with pytest.raises(bridge.NASLibNotFound, match="pybnn"):
        bridge.find_measures_module()


def test_proxies_registry_lists_zico_and_the_bridged_names():
    for name in bridge.DEFAULT_MEASURES:
        assert get_proxy(name).needs_data


def test_collections_abc_trap_is_explained_and_the_aliases_fix_it(monkeypatch):
    import collections
    import collections.abc

    package = types.ModuleType("naslib")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "naslib", package)
    real_import = importlib.import_module

    def fail(name, *args, **kwargs):
        if name.startswith("naslib.predictors"):
            raise ImportError("cannot import name 'Iterable' from 'collections' (/usr/lib/python3.11/collections)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(bridge.importlib, "import_module", fail)
    with pytest.raises(bridge.NASLibNotFound, match="add_collections_aliases"):
        bridge.find_measures_module()
    monkeypatch.delattr(collections, "Iterable", raising=False)
    bridge.add_collections_aliases()
    assert collections.Iterable is collections.abc.Iterable


class HashedNet(NB201Network):
    """An NB201 cell that answers NASLib's ``get_hash`` (the op-index tuple, NASLib's zc-file key)."""

    def get_hash(self):
        return (2, 3, 0, 2, 4, 1)


def test_failures_are_logged_with_the_architecture_and_counted(registry, one_batch, caplog):
    bridge.register_naslib_measures(["xi_gsnr"], measures_module=registry, **SPLIT)
    bridge.guard_registry(registry)
    bridge.guard_registry(registry)  # idempotent: one wrapper
    bridge.reset_measure_report(registry)
    torch.manual_seed(0)
    net = naslib_ready(HashedNet(ARCH, num_classes=10, channels=4, cells_per_stage=1))
    x, y = one_batch
    with caplog.at_level("ERROR", logger="xigsnr_naslib.integrations.naslib.bridge"):
        assert math.isfinite(find_measures(registry, net, x, y, "xi_gsnr"))
        with pytest.raises(ValueError, match="batch_size: 12"):
            find_measures(registry, net, x[:10], y[:10], "xi_gsnr")
        with pytest.raises(KeyError, match="'xi_gsnr_v2' is not registered .*registered: .*xi_gsnr"):
            find_measures(registry, net, x, y, "xi_gsnr_v2")
    messages = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(messages) == 2 and all("(2, 3, 0, 2, 4, 1)" in m for m in messages)
    assert "'xi_gsnr' failed" in messages[0] and "batch_size: 12" in messages[0]
    report = bridge.measure_report(registry)
    assert report["xi_gsnr"]["calls"] == 2 and report["xi_gsnr"]["failed"] == 1
    assert report["xi_gsnr_v2"] == {"calls": 1, "failed": 1, "errors": [report["xi_gsnr_v2"]["errors"][0]],
                                    "not_computable": {}}
    assert report["xi_gsnr_v2"]["errors"][0].startswith("(2, 3, 0, 2, 4, 1): KeyError")


def test_an_ensemble_is_a_naslib_measure_like_any_proxy(registry, one_batch):
    from xigsnr_naslib.proxies.ensemble import Member, ensemble_proxy
    from xigsnr_naslib.registry import registered
    ensemble = ensemble_proxy("test_ensemble", [Member("xi_gsnr", "log", 10.0, 2.0), Member("params", "log", 11.0)])
    x, y = one_batch
    with registered(ensemble):
        assert bridge.register_naslib_measures(["test_ensemble"], measures_module=registry, **SPLIT) == ["test_ensemble"]
        got = find_measures(registry, small_net(), x, y, "test_ensemble")
    # the same network, split and passes: the estimator's float, and the rule applied to its members
    assert got == ensemble(small_net(), split_batches(x, y))
    members = {"xi_gsnr": get_proxy("xi_gsnr")(small_net(), split_batches(x, y)),
               "params": get_proxy("params")(small_net(), split_batches(x, y))}
    assert got == pytest.approx((math.log(members["xi_gsnr"]) - 10.0) / 2.0 + math.log(members["params"]) - 11.0,
                                rel=1e-12)


DISCONNECTED = "|none~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"


@pytest.mark.parametrize("name", ["xi_gsnr", "zico"])
def test_a_cell_without_a_path_from_input_to_output_is_nan_not_an_exception(registry, one_batch, name, caplog):
    """The host's contract: a float. NASLib's evaluator calls query() without catching, so an exception
    here would end the experiment: undefined is NaN (NASLib's ZeroCost makes it -1e8), reported once
    per measure and architecture at warning level with its reason, counted apart from failures."""
    registration = bridge.register([name], bridge.MeasureSettings(**SPLIT), registry)
    registration.reset_measure_report()

    class Cell(NB201Network):
        def get_hash(self):
            return (1, 1, 1, 1, 0, 1)

    x, y = one_batch
    with caplog.at_level("WARNING", logger="xigsnr_naslib.integrations.naslib.bridge"):
        for _ in range(2):
            torch.manual_seed(0)
            net = naslib_ready(Cell(DISCONNECTED, num_classes=10, channels=4, cells_per_stage=1))
            value = find_measures(registry, net, x, y, name)
            assert math.isnan(value) and math.isnan(registration.last_raw_score(name))
            assert bridge.naslib_score(value) == -1e8
            assert "gradient" in registration.last_not_computable(name)
        assert math.isfinite(find_measures(registry, small_net(), x, y, name))
        assert bridge.last_not_computable(name, registry) is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "(1, 1, 1, 1, 0, 1)" in warnings[0] and repr(name) in warnings[0]
    report = registration.measure_report()[name]
    assert report["calls"] == 3 and report["failed"] == 0 and list(report["not_computable"]) == ["(1, 1, 1, 1, 0, 1)"]
