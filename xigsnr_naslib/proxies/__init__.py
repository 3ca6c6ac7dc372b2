"""Zero-cost proxies by name, each declaring the passes it consumes.

A :class:`Proxy` is a name, its settings, the passes it needs (:class:`Moments` requests:
streamed per-parameter moments of gradient samples) and a ``compute`` function that turns
the passes' results (:class:`PassResults`) into a score. The scoring path
(:mod:`xigsnr_naslib.scoring.study`) runs each distinct pass ONCE per architecture and hands it to
every proxy that asked: xi-GSNR's ``official`` and ``paper`` modes, every Table 9 variant and
ZiCo share one set of N backward passes; ``params`` and ``flops`` need no pass at all.
``proxy(model, batches)`` runs one proxy alone.

The network's state. Every proxy's protocol scores a network in train mode (BatchNorm
normalises with each batch's statistics: :data:`xigsnr_naslib.data.protocol.BN_MODES`); a pass
whose definition needs another state sets it on a copy of its own (VKDNW's eval-mode network
with fresh running statistics, AZ-NAS's and Zen's re-initialised copies). ``proxy(model,
batches)`` and :func:`run_passes` put a caller's network in that state, whatever mode the
caller left it or any submodule in, and give it back exactly as found: the mode of every
module, parameters, buffers (BatchNorm running statistics, ``num_batches_tracked``),
``requires_grad`` flags and ``.grad`` (:func:`~xigsnr_naslib.core.gradients.scoring_state`). A
parameter the caller froze (``requires_grad=False``) is scored like any other, as in the
freshly built network a study scores (gradients reach it; ``trainable_layers`` counts it): a
score depends on the network, not on how the caller set it up for training.

``get_proxy("xi_gsnr")`` returns a registered proxy; ``list_proxies()`` names them all.
Registration is explicit, in the style of timm's ``@register_model``: ``register_proxy(proxy)``
adds a :class:`Proxy`; the decorator ``@register_compute(name, needs, ...)`` registers the
``compute`` function below it as proxy ``name`` (how the project's own proxies are registered,
each beside its definition); ``@register_function(name)`` adds a function ``(model, batches,
loss_fn) -> float`` that runs passes of its own (it gets a freshly built network).
``with registered(proxy): ...`` (:func:`xigsnr_naslib.registry.registered`) registers one for
a block only. The built-in proxies' modules are imported at the first lookup
(:func:`_import_builtin_proxies`), so ``import xigsnr_naslib`` stays light. Other packages
add proxies through the entry-point group ``xigsnr_naslib.proxies`` (an entry point's object:
a :class:`Proxy`, or a function returning one or a list).

Names registered here:

| name | what it is |
|:---|:---|
| ``xi_gsnr`` | xi-GSNR as the authors' released code computes it (``official`` mode): the published numbers come from this. Default everywhere. |
| ``xi_gsnr_official`` | the same, named by its mode |
| ``xi_gsnr_paper`` | the paper's Eq. 10 (independent per-batch gradients) |
| ``xi_gsnr_per_sample`` | per-image gradients of one batch (the released NAS-Bench-101 run) |
| ``gsnr`` | Table 9 (4): mean^2/var without xi (official mode) |
| ``gsnr_sq_mean`` | Table 9 (1): mean^2 |
| ``gsnr_inv_var`` | Table 9 (2): 1/var |
| ``gsnr_inv_var_xi`` | Table 9 (3): 1/(var + xi) |
| ``params`` | number of parameters of the network |
| ``flops`` | multiply-adds of Conv2d/Linear layers for one input image |
| ``zico`` | ZiCo (Li et al. 2023), from :mod:`xigsnr_naslib.proxies.zico` |
| ``grad_norm`` ... ``zen`` | NAS-Bench-Suite-Zero's proxies (``grad_norm``, ``snip``, ``plain``, ``fisher``, ``grasp``, ``synflow``, ``l2_norm``, ``jacov``, ``epe_nas``, ``nwot``, ``nwot_naslib``, ``zen``), from :mod:`xigsnr_naslib.proxies.zoo` |
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch.nn as nn
import torch.nn.functional as F

from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.passes import MIN_SAMPLES, SAMPLES, Activations, BatchGradients, Moments, NotComputable, PassRequest, \
    run_shared_moments
from xigsnr_naslib.registry import Registry, UnknownChoiceError, registered
from xigsnr_naslib.core.complexity import count_flops, count_params
from xigsnr_naslib.core.gradients import Batch, LossFn, check_batches, scoring_state
from xigsnr_naslib.core.gsnr import JOINT_MODES, VARIANTS, XiGSNR, check_variation, score_moments, score_tensor
from xigsnr_naslib.core.statistics import RunningMoments

__all__ = ["Moments", "MIN_SAMPLES", "check_computable", "check_batches", "PassResults", "Proxy", "run_passes", "register_proxy", "register_compute",
           "register_function", "function_proxy", "get_proxy", "registered",
           "list_proxies", "xi_gsnr_proxies", "ENTRY_POINT_GROUP", "SAMPLES"]

ENTRY_POINT_GROUP = "xigsnr_naslib.proxies"

_SAMPLES_OF_MODE = {mode: samples for samples, mode in SAMPLES.items()}


def check_computable(proxies: Sequence["Proxy"], n_batches: int, batch_size: int) -> None:
    """Refuse, before anything is scored, proxies whose passes the protocol cannot give:
    e.g. fewer than two gradient samples (a variance over one sample is zero: the score is
    undefined, not 0), or a batch the protocol does not draw.

    Raises ``ValueError`` naming the proxy, what is missing and what to change.
    """
    for proxy in proxies:
        if proxy.members:
            check_computable(proxy.member_proxies(), n_batches, batch_size)
        for need in proxy.needs:
            problem = need.problem(n_batches, batch_size)
            if problem:
                raise UsageError(f"proxy {proxy.name!r} is not computable: {problem}")


@dataclass
class PassResults:
    """What a proxy's ``compute`` receives for one architecture.

    ``model`` (in train mode, on its device; do not change it), ``batches`` (list of
    ``(images N x C x H x W, labels N)``), ``loss_fn``, ``input_shape`` (one image, ``C x H x W``)
    and ``moments``: per requested pass, its result; for :class:`Moments` a
    :class:`~xigsnr_naslib.core.statistics.RunningMoments` (or ``StackedMoments`` under the
    ``vmap`` strategy), for other :class:`~xigsnr_naslib.passes.PassRequest` kinds what their
    ``run`` returns. A ``compute`` raises :class:`~xigsnr_naslib.passes.NotComputable` when
    the score is undefined for this architecture.
    """

    model: nn.Module
    batches: list
    loss_fn: LossFn
    input_shape: tuple[int, ...]
    moments: dict = field(default_factory=dict)


def run_passes(model: nn.Module, batches: Sequence[Batch], loss_fn: LossFn, needs: Iterable[Moments],
               strategy: str = "loop") -> dict[Moments, Any]:
    """Run every pass ``needs`` asks for, each once: ``{request: result}``.

    Requests with the same ``params`` share their passes (``independent`` and
    ``cumulative`` one set of N backward passes, ``per_sample`` another:
    :func:`~xigsnr_naslib.passes.moments.run_shared_moments`). The network runs
    in train mode and is left exactly as found (module documentation). With
    ``strategy="loop"`` every moment is bit for bit what the request alone would give.
    """
    needs = list(dict.fromkeys(needs))
    out: dict[PassRequest, Any] = {}
    with scoring_state(model, "train"):
        for need in needs:
            if not isinstance(need, Moments):
                out[need] = need.run(model, batches, loss_fn, strategy)
        out.update(run_shared_moments(model, batches, loss_fn, [n for n in needs if isinstance(n, Moments)], strategy))
    return out


def _input_shape(batches: Sequence[Batch]) -> tuple[int, ...]:
    return tuple(batches[0][0].shape[1:]) if batches else (3, 32, 32)


@dataclass(frozen=True)
class Proxy:
    """A named zero-cost proxy.

    Parameters
    ----------
    name : str
        Registry name (recorded with every score).
    compute : callable
        ``compute(results: PassResults) -> float``; must be picklable (a module-level
        function or an instance of a module-level class) to run in worker processes.
    needs : tuple of PassRequest
        The passes it consumes (:class:`Moments`, :class:`~xigsnr_naslib.passes.BatchGradients`,
        :class:`~xigsnr_naslib.passes.Activations`, ...); empty for proxies that read only the
        network or run passes of their own.
    settings : dict
        Everything that defines the score besides the protocol (recorded in every record).
    description : str
        One line for listings.
    needs_data : bool
        False for proxies that never look at the images (``params``, ``flops``).
    fresh_model : bool
        True for proxies that run passes of their own or may change the network: they get
        a network of their own, built with the same initialisation seed (called as
        ``proxy(model, batches)``: a deep copy of ``model``, in train mode).
    members : tuple of str
        For a proxy derived from others (an ensemble): the registered proxies whose values
        it combines. The scoring path computes the members (sharing their passes) and calls
        ``compute(values)`` with ``values`` a dict member name -> float; when a member is
        not computable, failed or not finite, the derived proxy is recorded as not
        computable, naming the member. Such a proxy declares no ``needs`` of its own.
    on_supernet : bool
        False for proxies defined on single-path networks only (e.g. ones that read the
        architecture's operations rather than the network): the pruning search
        (:mod:`xigsnr_naslib.search.pruning`) refuses them before any work.
    """

    name: str
    compute: Callable[[PassResults], float]
    needs: tuple[Moments, ...] = ()
    settings: dict = field(default_factory=dict)
    description: str = ""
    needs_data: bool = True
    fresh_model: bool = False
    on_supernet: bool = True
    members: tuple[str, ...] = ()

    def member_proxies(self) -> list["Proxy"]:
        """The registered proxies this one is derived from (empty for a proxy of its own)."""
        return [get_proxy(name) for name in self.members]

    def __call__(self, model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = F.cross_entropy,
                 strategy: str = "loop") -> float:
        """The score of ``model`` (on its device) on ``batches``, alone.

        ``model`` is scored in train mode whatever mode it or its submodules are in, every
        parameter counted as trainable, and is left exactly as found (module documentation);
        a ``fresh_model`` proxy scores a deep copy of it.

        Raises ``ValueError`` when the batches give too few gradient samples (:func:`check_computable`).
        """
        batches = list(batches)
        if batches and self.needs:
            check_batches(batches)
            check_computable([self], len(batches), min(len(y) for _, y in batches))
        with scoring_state(model, "train"):
            if self.members:
                return float(self.compute(_member_values(self.member_proxies(), model, batches, loss_fn, strategy)))
            if self.fresh_model:
                import copy

                model = copy.deepcopy(model)  # in the scoring state: train mode, no .grad
            moments = run_passes(model, batches, loss_fn, self.needs, strategy)
            return float(self.compute(PassResults(model, batches, loss_fn, _input_shape(batches), moments)))


def _member_values(members: Sequence[Proxy], model: nn.Module, batches: list, loss_fn: LossFn,
                   strategy: str) -> dict[str, float]:
    """The values of a derived proxy's members on ``model`` (in its scoring state): those with a
    network of their own first (each scores a copy), then the others sharing their passes."""
    values = {p.name: p(model, batches, loss_fn, strategy) for p in members if p.fresh_model}
    shared = [p for p in members if not p.fresh_model]
    if shared:
        if batches and any(p.needs for p in shared):
            check_batches(batches)
            check_computable(shared, len(batches), min(len(y) for _, y in batches))
        moments = run_passes(model, batches, loss_fn, [n for p in shared for n in p.needs], strategy)
        results = PassResults(model, batches, loss_fn, _input_shape(batches), moments)
        values.update({p.name: float(p.compute(results)) for p in shared})
    return {p.name: values[p.name] for p in members}


def _import_builtin_proxies() -> None:
    """The project's proxies outside this module: each module registers its own when imported.
    Run at the first lookup, not at import (the core stays light); the ensemble last (its
    members must be registered first)."""
    from xigsnr_naslib.proxies import zico  # noqa: F401
    from xigsnr_naslib.proxies.zoo import pruning_at_init, activation_patterns, zen, meco, swap, aznas, vkdnw, \
        trainable_layers  # noqa: F401
    from xigsnr_naslib.proxies import ensemble  # noqa: F401


_PROXIES = Registry(Proxy, ENTRY_POINT_GROUP, "proxy", _import_builtin_proxies)


#: ``register_proxy(proxy)``, ``get_proxy(name)``, ``list_proxies()``: the one door to every proxy
register_proxy, get_proxy, list_proxies = _PROXIES.register, _PROXIES.get, _PROXIES.names


def register_compute(name: str, needs: Sequence[PassRequest] = (), *, settings: dict | None = None,
                     description: str = "", needs_data: bool = True, on_supernet: bool = True) -> Callable:
    """Decorator: register the ``compute(results: PassResults) -> float`` below it as the proxy
    ``name`` consuming the passes ``needs`` (the other arguments as :class:`Proxy`'s); returns
    the function unchanged, so a module-level one stays picklable::

        @register_compute("mean_abs_gradient", (Moments("independent", abs_mean=True),),
                          description="sum of mean |g|")
        def mean_abs_gradient(results):
            return float(results.moments[...].abs_mean.sum())

    A name already registered for another proxy is a ``ValueError``.
    """

    def decorator(compute: Callable[[PassResults], float]) -> Callable[[PassResults], float]:
        register_proxy(Proxy(name, compute, tuple(needs), dict(settings or {}), description, needs_data,
                             on_supernet=on_supernet))
        return compute

    return decorator


class OwnPasses:
    """``compute`` of a proxy given as ``fn(model, batches, loss_fn) -> float`` (picklable when
    ``fn`` is a module-level function)."""

    def __init__(self, fn: Callable[[nn.Module, list, LossFn], float]):
        self.fn = fn

    def __call__(self, results: PassResults) -> float:
        return self.fn(results.model, results.batches, results.loss_fn)

    def __eq__(self, other) -> bool:
        return isinstance(other, OwnPasses) and other.fn is self.fn

    def __hash__(self) -> int:
        return hash(self.fn)


def register_function(name: str, *, settings: dict | None = None, description: str = "",
                      needs_data: bool = True) -> Callable:
    """Decorator: register ``fn(model, batches, loss_fn) -> float`` as proxy ``name``.

    The function runs passes of its own on a network built for it alone (it shares no pass
    with other proxies; declare :class:`Moments` with :class:`Proxy` to share them): called
    as ``proxy(model, batches)``, on a deep copy of ``model`` in train mode, every parameter
    requiring gradients and no ``.grad``; it may change that copy.
    """

    def decorator(fn: Callable[[nn.Module, list, LossFn], float]) -> Callable:
        register_proxy(function_proxy(name, fn, settings=settings, description=description, needs_data=needs_data))
        return fn

    return decorator


def function_proxy(name: str, fn: Callable[[nn.Module, list, LossFn], float], *, settings: dict | None = None,
                   description: str = "", needs_data: bool = True) -> Proxy:
    """The proxy :func:`register_function` registers, not registered (pass it to a study as
    an object, or register it for a block with :func:`~xigsnr_naslib.registry.registered`)."""
    return Proxy(name, OwnPasses(fn), (), dict(settings or {}), description, needs_data, fresh_model=True)


# --- xi-GSNR, every mode and Table 9 variant -----------------------------------------------------

class GSNRScore:
    """``compute`` of an xi-GSNR estimator: its score from the moments of its mode."""

    def __init__(self, estimator: XiGSNR):
        self.estimator = estimator
        self.need = Moments(_SAMPLES_OF_MODE[estimator.mode], estimator.params)

    def __call__(self, results: PassResults) -> float:
        e, moments = self.estimator, results.moments[self.need]
        if isinstance(moments, RunningMoments):
            return score_moments(moments, e.variant, e.xi, e.layer_skip)
        check_variation(moments)
        value = float(score_tensor(moments, e.variant, e.xi, e.layer_skip))  # vmap: moments on the device
        if value != value or value in (float("inf"), float("-inf")):
            warnings.warn(f"non-finite {e.variant} score ({value}): recorded as such", RuntimeWarning)
        return value

    def __eq__(self, other) -> bool:
        return isinstance(other, GSNRScore) and other.estimator == self.estimator

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.estimator.settings().items())))


def gsnr_proxy(name: str, estimator: XiGSNR, description: str = "") -> Proxy:
    """The proxy of an xi-GSNR estimator (its settings are the estimator's)."""
    score = GSNRScore(estimator)
    return Proxy(name, score, (score.need,), estimator.settings(), description)


def estimator_of(proxy: Proxy) -> XiGSNR | None:
    """The xi-GSNR estimator behind a proxy, if it has one."""
    return proxy.compute.estimator if isinstance(proxy.compute, GSNRScore) else None


def xi_gsnr_proxies(modes: Sequence[str] = JOINT_MODES, variants: Sequence[str] = VARIANTS, *,
                    xi: float = 1e-8, params: str = "conv_linear") -> list[Proxy]:
    """One proxy per (mode, variant); all of one ``params`` share their passes.

    Where a registered proxy computes the same thing (``xi_gsnr``, ``xi_gsnr_paper``,
    ``gsnr_inv_var``, ...) it is used, so records keep their usual names; the others are
    named ``xi_gsnr_<mode>_<variant>``.
    """
    registered: dict = {}
    for name in list_proxies():
        estimator = estimator_of(get_proxy(name))
        if estimator is not None:
            registered.setdefault(tuple(sorted(estimator.settings().items())), get_proxy(name))
    out = []
    for mode in modes:
        for variant in variants:
            estimator = XiGSNR(mode=mode, xi=xi, variant=variant, params=params)
            out.append(registered.get(tuple(sorted(estimator.settings().items())))
                       or gsnr_proxy(f"xi_gsnr_{mode}_{variant}", estimator, f"xi-GSNR {variant}, {mode} mode"))
    return out


for _name, _description, _settings in [
    ("xi_gsnr", "xi-GSNR as released (official mode; the published numbers)", {"mode": "official"}),
    ("xi_gsnr_official", "xi-GSNR, official mode (same as xi_gsnr)", {"mode": "official"}),
    ("xi_gsnr_paper", "xi-GSNR, the paper's Eq. 10 (independent batch gradients)", {"mode": "paper"}),
    ("xi_gsnr_per_sample", "xi-GSNR from per-image gradients of one batch", {"mode": "per_sample"}),
    ("gsnr", "Table 9 (4): GSNR without xi", {"mode": "official", "variant": "gsnr"}),
    ("gsnr_sq_mean", "Table 9 (1): squared gradient mean", {"mode": "official", "variant": "sq_mean"}),
    ("gsnr_inv_var", "Table 9 (2): inverse gradient variance", {"mode": "official", "variant": "inv_var"}),
    ("gsnr_inv_var_xi", "Table 9 (3): inverse of variance + xi", {"mode": "official", "variant": "inv_var_xi"}),
]:
    register_proxy(gsnr_proxy(_name, XiGSNR(**_settings), _description))


# --- proxies that read only the network -----------------------------------------------------------

@register_compute("params", description="number of parameters", needs_data=False)
def _params(results: PassResults) -> float:
    return float(count_params(results.model))


@register_compute("flops", description="multiply-adds of Conv2d/Linear layers for one image", needs_data=False)
def _flops(results: PassResults) -> float:
    return float(count_flops(results.model, results.input_shape))


__all__ += ["NotComputable", "PassRequest", "BatchGradients", "Activations", "UnknownChoiceError", "gsnr_proxy", "estimator_of", "OwnPasses", "GSNRScore"]
