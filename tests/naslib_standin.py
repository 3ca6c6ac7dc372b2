"""A NASLib stand-in for the tests that run where NASLib is not importable.

Written from NASLib's code (automl/NASLib, Develop and zerocost branches), reproducing only
the behaviour the project depends on; each piece names what it reproduces:

* :func:`make_registry`: the measures registry (``naslib/predictors/utils/pruners/measures/
  __init__.py``): the ``measure(name, bn, copy_net)`` decorator, the copy without BatchNorm
  for ``bn=False``, ``KeyError("Duplicated measure! ...")`` for a name registered twice, and
  ``calc_measure(name, ...)``, a plain ``_measure_impls[name]`` lookup (a bare ``KeyError``
  for an unregistered name).
* :func:`find_measures`: ``predictive.find_measures``: the network moved to the CPU, one call
  ``calc_measure(name, net, device, inputs, targets, loss_fn=..., split_data=1)``, the
  returned list of tensors summed with ``torch.sum`` and ``.item()``.
* :func:`install_fake_naslib`: the import layout (``naslib`` and the registry module of the
  Develop or zerocost branch in ``sys.modules``).
* :data:`BENCHMARK_RUNNER`: the control flow of NASLib's zero-cost benchmark runner
  (``naslib/runners/zc/benchmarks/runner.py``): its own command line (``--config-file``
  and ``KEY VALUE`` overrides, as ``utils.get_config_from_args``), one batch of the
  config's ``batch_size`` from the loader, per architecture ``ZeroCost.query`` inside
  ``try/except Exception`` that logs "Failed to compute score" at info level and goes on,
  scores written to a JSON file, exit status 0. Where the real NASLib is imported, the script
  runs against NASLib's own registry (its measures copy a network with NASLib's ``copynet``, as
  ``find_measures_arrays`` arranges): ``tests/test_naslib_launcher.py`` runs so in the NASLib
  environments of ``tests/test_in_real_naslib.py``.
"""
import copy
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.integrations.naslib import bridge


def make_registry(name="fake.measures"):
    """A module with NASLib's registry semantics."""
    module = types.ModuleType(name)
    module.available_measures = []
    module._measure_impls = {}

    def _identity(self, x):
        return x

    def copy_for_measure(net, bn):
        net = copy.deepcopy(net)
        if not bn:
            for layer in net.modules():
                if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    layer.forward = types.MethodType(_identity, layer)
        return net

    def measure(name, bn=True, copy_net=True, force_clean=True, **impl_args):
        def make_impl(func):
            def impl(net_orig, device, *args, **kwargs):
                net = copy_for_measure(net_orig, bn).to(device) if copy_net else net_orig
                return func(net, *args, **kwargs, **impl_args)

            if name in module._measure_impls:
                raise KeyError(f"Duplicated measure! {name}")
            module.available_measures.append(name)
            module._measure_impls[name] = impl
            return func

        return make_impl

    def calc_measure(name, net, device, *args, **kwargs):
        return module._measure_impls[name](net, device, *args, **kwargs)

    module.measure = measure
    module.calc_measure = calc_measure
    return module


def find_measures(registry, net, inputs, targets, name, loss_fn=F.cross_entropy):
    """NASLib's call sequence: net moved to the CPU, one call, the list of tensors summed."""
    net = net.cpu()
    value = registry.calc_measure(name, net, inputs.device, inputs, targets, loss_fn=loss_fn, split_data=1)
    total = 0.0
    for t in value:
        total += torch.sum(t)
    return total.item()


def install_fake_naslib(monkeypatch, layout):
    """Put a stand-in ``naslib`` with the ``layout``'s registry module into ``sys.modules``."""
    for name in [m for m in sys.modules if m == "naslib" or m.startswith("naslib.")]:
        monkeypatch.delitem(sys.modules, name)  # a real NASLib imported earlier (restored afterwards)
    module_name = bridge.MEASURE_MODULES[layout]
    parts = module_name.split(".")
    for i in range(1, len(parts)):
        package = types.ModuleType(".".join(parts[:i]))
        package.__path__ = []
        monkeypatch.setitem(sys.modules, package.__name__, package)
    registry = make_registry(module_name)
    monkeypatch.setitem(sys.modules, module_name, registry)
    return registry


#: a script with the control flow of NASLib's zc benchmark runner, against the stand-in registry;
#: it scores NB201 cells of the project (NASLib's graphs are not available here) on a seeded batch
BENCHMARK_RUNNER = r'''
import argparse, json, logging, sys
import torch
import yaml
from xigsnr_naslib.integrations.naslib.bridge import MEASURE_MODULES
from xigsnr_naslib.benchmarks.nb201.space import NB201Network

logger = logging.getLogger("naslib")
parser = argparse.ArgumentParser()
parser.add_argument("--config-file")
parser.add_argument("opts", nargs=argparse.REMAINDER)
args = parser.parse_args()
config = yaml.safe_load(open(args.config_file))
for key, value in zip(args.opts[::2], args.opts[1::2]):
    config[key] = yaml.safe_load(value)
registry = next(sys.modules[m] for m in MEASURE_MODULES.values() if m in sys.modules)
gen = torch.Generator().manual_seed(config["seed"])
inputs = torch.randn(config["batch_size"], 3, 32, 32, generator=gen)
targets = torch.randint(0, 10, (config["batch_size"],), generator=gen)

class Cell(NB201Network):
    def get_hash(self):
        return tuple(config["archs"][self.position])

scores = []
for position, arch in enumerate(config["archs_str"]):
    try:
        torch.manual_seed(position)
        net = Cell(arch, num_classes=10, channels=4, cells_per_stage=1)
        net.position = position
        predictive = sys.modules.get(registry.__name__.rsplit(".", 1)[0] + ".predictive")
        if predictive is not None:  # the real NASLib: its measures copy the net as find_measures_arrays sets up
            net.get_prunable_copy = __import__("types").MethodType(predictive.copynet, net)
        value = registry.calc_measure(config["predictor"], net.cpu(), "cpu", inputs, targets,
                                      loss_fn=torch.nn.functional.cross_entropy, split_data=1)
        scores.append({"arch": arch, "score": sum(float(torch.sum(t)) for t in value)})
    except Exception as e:
        logger.info(f"Failed to compute score for model {position} with arch {arch}!")
json.dump({"argv": sys.argv, "scores": scores}, open(config["out"], "w"))
logger.info("Done.")
'''
