"""The registries (proxies, benchmark cards): explicit registration, lazy built-ins, and
temporary registrations with ``registered`` (removed on exit, on an error too; nested; a
name already taken refused before anything changes)."""
import pickle
import subprocess
import sys

import pytest
import torch.nn as nn

from xigsnr_naslib import BenchmarkCard, DatasetCard, Protocol, Proxy, get_card, get_proxy, list_cards, list_proxies
from xigsnr_naslib.benchmarks import SearchSpace
from xigsnr_naslib.registry import Registry, UnknownChoiceError, registered


def _one(results):
    return 1.0


def _two(results):
    return 2.0


class _TinySpace(SearchSpace):
    name = "registry_test_space"

    def encode(self, arch):
        return str(arch)

    def decode(self, code):
        return int(code)

    def build(self, arch, num_classes=10, **kwargs):
        return nn.Linear(3, num_classes)


def _card(name="registry_test_space"):
    return BenchmarkCard(name, _TinySpace, {"cifar10": DatasetCard("cifar10", 10, 32, "cifar10",
                                                                   Protocol(n_batches=2, batch_size=4))})


def test_a_temporary_proxy_is_there_inside_the_block_only():
    before = list_proxies()
    proxy = Proxy("registry_test_one", _one, needs_data=False)
    with registered(proxy):
        assert get_proxy("registry_test_one") is proxy
        assert list_proxies() == sorted(before + ["registry_test_one"])
    assert list_proxies() == before
    with pytest.raises(UnknownChoiceError, match="unknown proxy 'registry_test_one'; choose one of: "):
        get_proxy("registry_test_one")


def test_an_error_inside_the_block_still_removes_what_it_registered():
    before_proxies, before_cards = list_proxies(), list_cards()
    with pytest.raises(RuntimeError, match="inside the block"):
        with registered(Proxy("registry_test_one", _one), _card()):
            assert "registry_test_one" in list_proxies() and "registry_test_space" in list_cards()
            raise RuntimeError("inside the block")
    assert list_proxies() == before_proxies and list_cards() == before_cards


def test_blocks_nest_and_each_removes_its_own():
    outer, inner = Proxy("registry_test_outer", _one), Proxy("registry_test_inner", _two)
    with registered(outer):
        with registered(inner):
            assert get_proxy("registry_test_outer") is outer and get_proxy("registry_test_inner") is inner
        assert "registry_test_inner" not in list_proxies()
        assert get_proxy("registry_test_outer") is outer
        # the inner block may not take the outer block's name, and refusing it leaves the outer one
        with pytest.raises(ValueError) as clash:
            with registered(Proxy("registry_test_outer", _two)):
                pytest.fail("a clashing block must not run")
        assert str(clash.value) == ("a proxy named 'registry_test_outer' is already registered; "
                                    "register it under another name")
        assert get_proxy("registry_test_outer") is outer
    assert "registry_test_outer" not in list_proxies()


def test_a_name_already_registered_is_refused_in_one_line_and_nothing_changes():
    before_proxies, before_cards = list_proxies(), list_cards()
    xi_gsnr = get_proxy("xi_gsnr")
    # a built-in name, even for an equal object: leaving the block would otherwise remove the built-in
    for taken in (Proxy("xi_gsnr", _one), xi_gsnr):
        with pytest.raises(ValueError, match=r"^a proxy named 'xi_gsnr' is already registered; register it under "
                                             r"another name$"):
            with registered(Proxy("registry_test_first", _one), taken):
                pass
    with pytest.raises(ValueError, match="'registry_test_twice' is already registered"):  # twice in one call
        with registered(Proxy("registry_test_twice", _one), Proxy("registry_test_twice", _two)):
            pass
    # a card clash in a mixed block: the block's proxy does not stay either
    with pytest.raises(ValueError, match=r"^a search space named 'nb201' is already registered"):
        with registered(Proxy("registry_test_first", _one), _card("nb201")):
            pass
    assert list_proxies() == before_proxies and list_cards() == before_cards
    assert get_proxy("xi_gsnr") is xi_gsnr and get_card("nb201").name == "nb201"


def test_a_temporary_card_is_found_by_name_and_builds_its_space():
    with registered(_card()):
        space = get_card("registry_test_space").create_space()
        assert isinstance(space, _TinySpace) and isinstance(space.build(0), nn.Linear)
    assert "registry_test_space" not in list_cards()


def test_something_no_registry_holds_is_a_type_error_naming_the_kinds():
    with pytest.raises(TypeError, match=r"no registry takes a str; registries hold: .*Proxy"):
        with registered("xi_gsnr"):
            pass
    registry = Registry(Proxy, "xigsnr_naslib.registry_test_group", "test item")
    with pytest.raises(TypeError, match="a BenchmarkCard is not a Proxy"):
        with registry.registered(_card()):
            pass


def test_the_decorated_built_ins_are_the_module_functions_and_pickle():
    from xigsnr_naslib import proxies
    from xigsnr_naslib.proxies import zico
    from xigsnr_naslib.proxies.zoo import pruning_at_init

    assert get_proxy("params").compute is proxies._params and not get_proxy("params").needs_data
    assert get_proxy("zico").compute is zico._zico_compute and get_proxy("zico").needs == (zico.ZICO_PASS,)
    assert get_proxy("synflow").compute is pruning_at_init.synflow
    assert get_proxy("grad_norm").needs == (pruning_at_init.ONE_BATCH_GRADIENTS,)
    for name in ("params", "zico", "grad_norm", "aznas_trainability", "vkdnw"):
        assert pickle.loads(pickle.dumps(get_proxy(name))) == get_proxy(name)  # worker processes get them
    # the decorator refuses a taken name before registering anything
    with pytest.raises(ValueError, match="a proxy named 'params' is already registered"):
        proxies.register_compute("params")(_two)
    assert get_proxy("params").compute is proxies._params


@pytest.mark.slow  # a fresh interpreter imports torch (seconds)
def test_importing_the_package_loads_no_proxy_module_until_a_lookup():
    code = ("import sys, xigsnr_naslib; "
            "lazy = [m for m in sys.modules if m.startswith(('xigsnr_naslib.proxies.', 'pandas', 'scipy'))]; "
            "assert not lazy, lazy; "
            "xigsnr_naslib.get_proxy('zico'); "
            "assert {'xigsnr_naslib.proxies.zico', 'xigsnr_naslib.proxies.zoo.vkdnw', 'xigsnr_naslib.proxies.ensemble'} "
            "<= set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
