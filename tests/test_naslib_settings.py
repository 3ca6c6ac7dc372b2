"""The NASLib layer's settings and registrations, without NASLib (the stand-in registry).

* The settings dataclasses (:class:`MeasureSettings` of the launcher and the bridge,
  :class:`RunSettings` of ``naslib-run``) refuse a bad value at construction with one line
  naming it, and the command lines' defaults are the dataclasses' defaults.
* A registration is an object: two registries registered with different splits score with
  their own split and keep their own reports; two names of one registry registered with
  different splits keep theirs; the last raw score is read from the registration.
"""
import math
import types

import pytest
import torch

from xigsnr_naslib import XiGSNR
from xigsnr_naslib.benchmarks.nb201.space import NB201Network
from xigsnr_naslib.cli.app import build_parser
from xigsnr_naslib.cli.naslib import build_launcher_parser, launcher_settings, run_settings
from xigsnr_naslib.integrations.naslib import bridge
from xigsnr_naslib.integrations.naslib.runner import RunSettings

from naslib_standin import find_measures, make_registry

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("kwargs,named", [
    (dict(n_batches=0), "n_batches must be a whole number >= 1, got 0"),
    (dict(batch_size=-3), "batch_size must be a whole number >= 1, got -3"),
    (dict(n_batches=2.5), "n_batches must be a whole number >= 1, got 2.5"),
    (dict(batch_size=True), "batch_size must be a whole number >= 1, got True"),
    (dict(n_batches="8"), "n_batches must be a whole number >= 1, got '8'"),
    (dict(bn="no"), "bn must be True or False, got 'no'"),
    (dict(copy_net=0), "copy_net must be True or False, got 0"),
    (dict(bn=False, copy_net=False), "bn=False needs copy_net=True"),
])
def test_measure_settings_refuse_a_bad_value_in_one_line(kwargs, named):
    with pytest.raises(ValueError) as exc:
        bridge.MeasureSettings(**kwargs)
    assert named in one_line(exc)


@pytest.mark.parametrize("kwargs,named", [
    (dict(engine="nasblib"), "unknown engine 'nasblib'; choose one of auto, naslib, standalone"),
    (dict(device=0), "device must be a torch device name"),
    (dict(zc_fill=1, zc_json="zc.json"), "zc_fill must be True or False, got 1"),
    (dict(progress="yes"), "progress must be True or False, got 'yes'"),
    (dict(data_root=3), "data_root must be a path or None, got 3"),
    (dict(zc_fill=True), "--zc-fill needs --zc-json FILE"),
])
def test_run_settings_refuse_a_bad_value_in_one_line(kwargs, named):
    with pytest.raises(ValueError) as exc:
        RunSettings(**kwargs)
    assert named in one_line(exc)


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        bridge.MeasureSettings().n_batches = 4
    with pytest.raises(AttributeError):
        RunSettings().engine = "naslib"


def test_the_command_lines_defaults_are_the_settings_defaults():
    launcher = build_launcher_parser().parse_args(["run", "script.py"])
    assert launcher_settings(launcher) == bridge.MeasureSettings()
    run = build_parser().parse_args(["naslib-run", "--config", "c.yaml"])
    assert run_settings(run) == RunSettings()
    flags = build_launcher_parser().parse_args(["run", "--n-batches", "3", "--batch-size", "4", "--no-bn", "s.py"])
    assert launcher_settings(flags) == bridge.MeasureSettings(3, 4, bn=False, copy_net=True)


def net(seed=0):
    torch.manual_seed(seed)
    return NB201Network(ARCH, num_classes=10, channels=4, cells_per_stage=1).train()


def batch(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def split(x, y, n_batches, batch_size):
    return [(x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]) for i in range(n_batches)]


def test_two_registrations_with_different_settings_do_not_overwrite_each_other():
    """Registry A at 3 x 4, registry B at 2 x 4 afterwards: A still scores 12 images as 3 x 4 (a
    shared split would make it refuse them), and each keeps its own report and last raw score."""
    a, b = make_registry("a.measures"), make_registry("b.measures")
    reg_a = bridge.register(["xi_gsnr"], bridge.MeasureSettings(3, 4), a)
    reg_b = bridge.register(["xi_gsnr"], bridge.MeasureSettings(2, 4), b)
    assert reg_a is not reg_b and bridge.registration_of(a) is reg_a and bridge.registration_of(b) is reg_b
    x12, y12 = batch(12)
    x8, y8 = batch(8, seed=1)
    got_a = find_measures(a, net(), x12, y12, "xi_gsnr")
    got_b = find_measures(b, net(), x8, y8, "xi_gsnr")
    assert got_a == pytest.approx(XiGSNR().score(net(), split(x12, y12, 3, 4)), rel=1e-12)
    assert got_b == pytest.approx(XiGSNR().score(net(), split(x8, y8, 2, 4)), rel=1e-12)
    assert got_a != pytest.approx(got_b, rel=1e-6)
    assert reg_a.last_raw_score("xi_gsnr") == got_a and reg_b.last_raw_score("xi_gsnr") == got_b
    assert reg_a.measure_report()["xi_gsnr"]["calls"] == 1 and reg_b.measure_report()["xi_gsnr"]["calls"] == 1
    with pytest.raises(ValueError, match="one batch of 8 images.*3 batches of 4"):
        find_measures(a, net(), x8, y8, "xi_gsnr")
    assert reg_a.measure_report()["xi_gsnr"]["failed"] == 1 and reg_b.measure_report()["xi_gsnr"]["failed"] == 0
    assert bridge.registered_measures(a)["xi_gsnr"]["n_batches"] == 3
    assert bridge.registered_measures(b)["xi_gsnr"]["n_batches"] == 2


def test_names_of_one_registry_keep_their_own_split():
    """zico registered at 2 x 4 after xi_gsnr at 3 x 4: xi_gsnr keeps 3 x 4; registering xi_gsnr
    again changes its split only."""
    registry = make_registry()
    registration = bridge.register(["xi_gsnr"], bridge.MeasureSettings(3, 4), registry)
    assert bridge.register(["zico"], bridge.MeasureSettings(2, 4), registry) is registration
    assert registration.split_of("xi_gsnr") == bridge.BatchSplit(3, 4)
    assert registration.split_of("zico") == bridge.BatchSplit(2, 4)
    x, y = batch(12)
    assert math.isfinite(find_measures(registry, net(), x, y, "xi_gsnr"))
    bridge.register(["xi_gsnr"], bridge.MeasureSettings(2, 4), registry)
    assert registration.split_of("xi_gsnr") == bridge.BatchSplit(2, 4)
    assert math.isfinite(find_measures(registry, net(), x[:8], y[:8], "xi_gsnr"))
    assert registry.available_measures.count("xi_gsnr") == 1  # NASLib's registry saw it once


def test_a_refused_registration_registers_nothing():
    registry = make_registry()
    registry.measure("zico")(lambda *a, **k: [torch.tensor(0.0)])  # NASLib's own measure of that name
    with pytest.raises(ValueError, match="already has a measure named 'zico'"):
        bridge.register(["xi_gsnr", "zico"], bridge.MeasureSettings(), registry)
    assert "xi_gsnr" not in registry._measure_impls and "xi_gsnr" not in bridge.registration_of(registry)
    with pytest.raises(TypeError, match="MeasureSettings"):
        bridge.register(["xi_gsnr"], {"n_batches": 3}, registry)


def test_the_module_level_readers_read_the_registry_given():
    registry = make_registry()
    assert bridge.registration_of(registry) is None and bridge.measure_report(registry) == {}
    assert bridge.last_raw_score("xi_gsnr", registry) is None and bridge.registered_measures(registry) == {}
    bridge.register_naslib_measures(["xi_gsnr"], n_batches=3, batch_size=4, measures_module=registry)
    x, y = batch(12)
    value = find_measures(registry, net(), x, y, "xi_gsnr")
    assert bridge.last_raw_score("xi_gsnr", registry) == value
    assert bridge.measure_report(registry)["xi_gsnr"]["calls"] == 1
    bridge.reset_measure_report(registry)
    assert bridge.measure_report(registry) == {} and bridge.last_raw_score("xi_gsnr", registry) == value
    assert bridge.registration_of(types.ModuleType("empty")) is None
