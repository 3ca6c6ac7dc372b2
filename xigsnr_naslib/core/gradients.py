"""How gradient samples are produced from a model, a loss and batches.

Each generator yields, once per sample, the list of ``.grad`` tensors of the selected
parameters (views, not copies: the consumer must read them before asking for the next
sample). Three sampling schemes exist, matching the estimator's modes:

``independent_batch_gradients``
    One sample per batch; gradients are cleared before each batch, so sample *i* is the
    mean-loss gradient of batch *i* alone (the paper's Eq. 10).
``accumulated_batch_gradients``
    One sample per batch; gradients are never cleared, so sample *k* is the running sum of
    the first *k* batch gradients (what the released code records).
``per_sample_gradients``
    One sample per image of a single batch, each image passed through the network on its
    own (batch of one, BatchNorm in train mode), as the released NAS-Bench-101 run does.

Two execution strategies serve several modes, or the GPU, from the same passes:

``paired_batch_gradients``
    One backward per batch yields both samples at once: the batch gradient g_k (``paper``)
    and the running sum G_k = G_{k-1} + g_k in the parameters' dtype, added exactly as
    autograd's gradient accumulation adds (``official``), so both modes cost one set of
    passes and each equals its own sampler bit for bit.
``stacked_batch_gradients``
    All per-group gradients in one call: ``torch.func.vmap`` over the groups (the batches,
    or single images for ``per_sample``) of ``torch.func.grad`` of a ``functional_call``.
    BatchNorm normalises each group with that group's own statistics, as in the loop;
    running-statistic updates are switched off while it runs (vmap cannot write a shared
    buffer from every group, and train-mode outputs do not read them).

The samplers use the model as given (train mode, as in the released code). A model whose
forward returns a tuple or list is read through its first element, the logits.

The scoring doors (:meth:`xigsnr_naslib.core.gsnr.XiGSNR.score`, ``get_proxy(name)(model, batches)``
and the other public functions that score a caller's network) run inside
:func:`scoring_state`: the network is scored in the state its protocol prescribes (train
mode, every parameter differentiable, no ``.grad``), whatever state the caller left it in,
and is given back exactly as it was found.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

import contextlib
import threading

import torch
import torch.nn as nn

from xigsnr_naslib.errors import UsageError

__all__ = [
    "LossFn",
    "logits_of",
    "independent_batch_gradients",
    "accumulated_batch_gradients",
    "per_sample_gradients",
    "paired_batch_gradients",
    "stacked_batch_gradients",
    "batchnorm_running_stats_off",
    "scoring_state",
    "SCORING_MODES",
]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = tuple[torch.Tensor, torch.Tensor]


def logits_of(output) -> torch.Tensor:
    """The logits of a model output (first element of a tuple or list)."""
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def check_batches(batches: Sequence[Batch]) -> None:
    """Every batch must be an ``(inputs, targets)`` pair of tensors with as many targets as
    inputs; anything else (a dict batch, a bare tensor) is a ``TypeError`` naming what came."""
    for k, batch in enumerate(batches):
        ok = isinstance(batch, (tuple, list)) and len(batch) == 2 and all(isinstance(t, torch.Tensor) for t in batch)
        if not ok:
            got = type(batch).__name__ + (f" with keys {sorted(batch)}" if isinstance(batch, dict) else "")
            raise TypeError(f"batch {k} is a {got}; a batch must be an (inputs, targets) pair of tensors "
                            "(convert dict batches with (b['image'], b['label']) or the like)")
        if len(batch[0]) != len(batch[1]):
            raise UsageError(f"batch {k} has {len(batch[0])} inputs but {len(batch[1])} targets")


def _clear(params: Sequence[nn.Parameter]) -> None:
    for p in params:
        p.grad = None


def _backward(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> None:
    loss = loss_fn(logits_of(model(x)), y)
    loss.backward()


def independent_batch_gradients(
    model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> Iterator[list[torch.Tensor | None]]:
    for x, y in batches:
        _clear(params)
        _backward(model, x, y, loss_fn)
        yield [p.grad for p in params]


def accumulated_batch_gradients(
    model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> Iterator[list[torch.Tensor | None]]:
    _clear(params)
    for x, y in batches:
        _backward(model, x, y, loss_fn)
        yield [p.grad for p in params]


def per_sample_gradients(
    model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> Iterator[list[torch.Tensor | None]]:
    for x, y in batches:
        for i in range(x.shape[0]):
            _clear(params)
            _backward(model, x[i : i + 1], y[i : i + 1], loss_fn)
            yield [p.grad for p in params]


def paired_batch_gradients(
    model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> Iterator[tuple[list[torch.Tensor | None], list[torch.Tensor | None]]]:
    """Yield ``(g_k, G_k)`` per batch: the batch's own gradients and their running sum.

    ``g_k`` is what :func:`independent_batch_gradients` yields and ``G_k`` what
    :func:`accumulated_batch_gradients` yields, from one backward per batch: autograd adds a
    new gradient into ``.grad`` with one elementwise add in the gradient's dtype, and so does
    this. A tensor with no gradient in batch k keeps its running sum (``None`` until its
    first gradient), as ``.grad`` would. Both lists are read-only views, valid until the
    next sample is asked for.
    """
    running: list[torch.Tensor | None] = [None] * len(params)
    for x, y in batches:
        _clear(params)
        _backward(model, x, y, loss_fn)
        grads = [p.grad for p in params]
        for i, g in enumerate(grads):
            if g is None:
                continue
            if running[i] is None:
                running[i] = g  # backward makes a fresh .grad next time: no copy needed
            else:
                running[i].add_(g)
        yield grads, list(running)
    _clear(params)


@contextlib.contextmanager
def batchnorm_running_stats_off(model: nn.Module) -> Iterator[None]:
    """Stop train-mode BatchNorm layers from updating their running statistics, and restore.

    A BatchNorm layer in train mode normalises with the batch's statistics whether or not
    it tracks running ones, so the outputs and gradients are unchanged; only the updates of
    ``running_mean``, ``running_var`` and ``num_batches_tracked`` are skipped. Layers in eval
    mode are left alone (they read their running statistics).
    """
    changed = [m for m in model.modules()
               if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]
    for m in changed:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in changed:
            m.track_running_stats = True


def _parameter_names(model: nn.Module, params: Sequence[nn.Parameter]) -> list[str]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    missing = [i for i, p in enumerate(params) if id(p) not in by_id]
    if missing:
        raise UsageError(f"parameters {missing} are not parameters of the model")
    return [by_id[id(p)] for p in params]


def stacked_batch_gradients(
    model: nn.Module, groups: Sequence[Batch], loss_fn: LossFn, params: Sequence[nn.Parameter]
) -> list[torch.Tensor]:
    """The gradients of every group at once: one ``[len(groups), *p.shape]`` tensor per param.

    ``groups`` are ``(inputs, targets)`` pairs of equal shapes (the batches, or one image
    each for per-image gradients); their gradients are computed by ``torch.func.vmap`` over
    the groups of ``torch.func.grad`` of the mean loss of one group, with every BatchNorm
    layer normalising each group by that group's statistics. Unlike the loop, a parameter
    the loss does not reach gets zeros, not ``None``. Random layers (dropout) draw
    independently per group.
    """
    from torch.func import functional_call, grad, vmap

    groups = list(groups)
    if not groups:
        return []
    shapes = {(tuple(x.shape), tuple(y.shape)) for x, y in groups}
    if len(shapes) != 1:
        raise UsageError(f"stacked gradients need groups of one shape, got {sorted(shapes)}")
    xs = torch.stack([x for x, _ in groups])
    ys = torch.stack([y for _, y in groups])
    names = _parameter_names(model, params)
    selected = {n: p.detach() for n, p in zip(names, params)}

    def group_loss(weights: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(logits_of(functional_call(model, weights, (x,), strict=False)), y)

    # no_grad: the model's own parameters are constants here; grad() still differentiates
    # with respect to ``weights`` (function transforms ignore an outer no_grad).
    with torch.no_grad(), batchnorm_running_stats_off(model):
        grads = vmap(grad(group_loss), in_dims=(None, 0, 0), randomness="different")(selected, xs, ys)
    return [grads[n] for n in names]


#: the module modes a scoring door can put a network in: ``train`` (every proxy's protocol,
#: :data:`xigsnr_naslib.data.protocol.BN_MODES`: BatchNorm normalises with the batch's statistics)
#: and ``eval`` (counting FLOPs, where no statistic is read)
SCORING_MODES = ("train", "eval")
_GUARDED = threading.local()


@contextlib.contextmanager
def scoring_state(model: nn.Module, mode: str = "train", restore_buffers: bool = True) -> Iterator[nn.Module]:
    """Score ``model`` in the state a protocol prescribes, and give it back exactly as found.

    Inside: every module in ``mode`` (``model.train()`` or ``model.eval()``, submodules left in
    another mode included), every floating-point parameter requiring gradients, every ``.grad``
    None, gradients enabled. So a score does not depend on the mode the caller left the network
    in, nor on which parameters the caller froze: a frozen parameter (``requires_grad=False``)
    is scored like any other, as in the protocol's freshly built network (to score part of a
    network, score that part).

    On exit, also after an exception: the mode of every module, each parameter's
    ``requires_grad`` and ``.grad`` (the same tensor object with its values; None stays None),
    the parameter and buffer objects, and every buffer's values bit for bit (BatchNorm running
    statistics, ``num_batches_tracked``; copies are kept while inside, so memory grows by the
    buffers' size) as found. ``restore_buffers=False`` keeps what the scoring wrote into the
    buffers (the one change a caller may ask for). Parameters are not copied: one changed in
    place inside (a proxy that changes its network must declare ``fresh_model``) raises
    ``RuntimeError`` naming it.

    Reentrant: inside a ``scoring_state`` of the same network (same thread), it only sets the
    modules' ``mode`` and restores it (the outer one restores the rest).
    """
    if mode not in SCORING_MODES:
        raise UsageError(f"unknown scoring mode {mode!r}; choose one of: {', '.join(SCORING_MODES)}")
    guarded = _GUARDED.__dict__.setdefault("ids", set())
    modules = list(model.modules())
    modes = [m.training for m in modules]
    state = None if id(model) in guarded else _State(modules)  # an inner one sets and restores the modes only
    guarded.add(id(model))
    try:
        if state is not None:
            state.clear()
        for m in modules:  # the attribute, as restored: a train() override must not keep a module out
            m.training = mode == "train"
        with torch.enable_grad():
            yield model
    finally:
        for m, training in zip(modules, modes):
            m.training = training
        if state is not None:
            guarded.discard(id(model))
            state.restore(restore_buffers)
    if state is not None:
        state.check_parameters(model)


class _State:
    """What :func:`scoring_state` gives back: parameter and buffer objects, ``requires_grad``,
    ``.grad``, buffer values (copies) and parameter versions (to detect an in-place change)."""

    def __init__(self, modules: Sequence[nn.Module]):
        self.owned = [(store, name, t) for m in modules for store in (m._parameters, m._buffers)
                      for name, t in store.items() if t is not None]
        self.params = list({id(p): p for m in modules for p in m._parameters.values() if p is not None}.values())
        self.flags = [p.requires_grad for p in self.params]
        self.grads = [p.grad for p in self.params]
        self.versions = [p._version for p in self.params]
        self.buffers = [(b, b.detach().clone())
                        for b in {id(b): b for m in modules for b in m._buffers.values() if b is not None}.values()]

    def clear(self) -> None:
        """No ``.grad``; every floating-point parameter requires gradients."""
        for p in self.params:
            p.grad = None
            if p.is_floating_point() or p.is_complex():
                p.requires_grad_(True)

    def restore(self, buffers: bool = True) -> None:
        for store, name, t in self.owned:
            if store.get(name) is not t:
                store[name] = t
        for p, flag, grad in zip(self.params, self.flags, self.grads):
            p.requires_grad_(flag)
            p.grad = grad
        if buffers:
            with torch.no_grad():
                for b, saved in self.buffers:
                    b.copy_(saved)

    def check_parameters(self, model: nn.Module) -> None:
        changed = [p for p, v in zip(self.params, self.versions) if p._version != v]
        if changed:
            names = {id(p): n for n, p in model.named_parameters()}
            raise RuntimeError(f"scoring changed parameter {names.get(id(changed[0]), '?')!r} of the network in "
                               "place; a proxy that changes its network must declare fresh_model=True")
