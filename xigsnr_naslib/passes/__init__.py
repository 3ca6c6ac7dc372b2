"""Pass requests: what a proxy asks the scoring path to compute on a network, once.

A proxy declares the passes it consumes (:attr:`xigsnr_naslib.proxies.Proxy.needs`); the
scoring path (:func:`xigsnr_naslib.proxies.run_passes`) runs each distinct request once
per architecture and hands its result to every proxy that asked, so proxies that read the
same gradients or activations cost one pass between them. A request is a frozen,
hashable value: two equal requests are one pass (:mod:`.protocol`).

Kinds, each in a module of its own:

* :class:`Moments` (:mod:`.moments`): streamed per-parameter moments of gradient samples
  over every batch (xi-GSNR, ZiCo).
* :class:`BatchGradients` (:mod:`.gradients`): the gradient of the mean loss of one batch,
  per parameter (GradNorm, SNIP, Fisher-style proxies).
* :class:`InputGradients` (:mod:`.gradients`): the gradient of the summed logits w.r.t. the
  input images of one batch (Jacobian-covariance proxies: NASWOT's first version, EPE-NAS).
* :class:`Activations` (:mod:`.activations`): the outputs (or inputs) of chosen module types
  on one batch, without gradients.
* :class:`ImageActivations` (:mod:`.activations`): the same on the first few images of a
  batch, forwarded on their own (MeCo: one image, every module; SWAP: 16 images, the ReLUs).
* :class:`CodeKernel` (:mod:`.codes`): NASWOT's kernel of binary activation codes on one
  batch, accumulated while the forward pass runs (only an N x N matrix is kept).
* :class:`StageFeatures` (:mod:`.stages`): the feature map after each stage (stem, cells) of
  a network, kept with their autograd graph, optionally on a re-initialised copy and on
  Gaussian noise (the AZ-NAS components).
* :class:`LogitJacobians` (:mod:`.jacobians`): per-image Jacobians of the logits w.r.t. one
  entry of each of the first parameter tensors (VKDNW's Fisher information).

Every pass leaves the network as it found it: weights, ``.grad`` and BatchNorm running
statistics. :func:`~xigsnr_naslib.proxies.run_passes` runs them on the network in train mode
(the protocol's state, whatever mode a caller left it in) and gives back every module's mode,
``requires_grad``, ``.grad`` and buffer as found (:func:`~xigsnr_naslib.core.gradients.scoring_state`).
A proxy whose computation changes the network declares ``fresh_model=True`` and gets a network
of its own; the built-in ones that change one (SynFlow's ``|w|``, GraSP's pooling, Zen's and
AZ-NAS's re-initialisation, VKDNW's eval mode) change a copy.

Define a new kind by subclassing :class:`PassRequest` as a frozen dataclass with
:meth:`~PassRequest.run` (and :meth:`~PassRequest.problem` when some protocols cannot give it).
Every name below is importable from ``xigsnr_naslib.passes``.
"""
from xigsnr_naslib.passes.protocol import INPUTS, NotComputable, PassRequest
from xigsnr_naslib.passes.moments import MIN_SAMPLES, SAMPLES, Moments, run_shared_moments
from xigsnr_naslib.passes.gradients import BatchGradients, GradientsOfBatch, InputGradients, InputGradientsOfBatch
from xigsnr_naslib.passes.activations import Activations, ImageActivations, forward_capturing
from xigsnr_naslib.passes.codes import CodeKernel, KernelOfCodes
from xigsnr_naslib.passes.stages import StageFeatureMaps, StageFeatures, feature_stages
from xigsnr_naslib.passes.jacobians import JacobiansOfLogits, LogitJacobians, first_entry_jacobians_loop

__all__ = ["PassRequest", "NotComputable", "INPUTS", "Moments", "SAMPLES", "MIN_SAMPLES", "run_shared_moments",
           "BatchGradients", "GradientsOfBatch", "InputGradients", "InputGradientsOfBatch", "Activations",
           "ImageActivations", "forward_capturing", "CodeKernel", "KernelOfCodes", "StageFeatures",
           "StageFeatureMaps", "feature_stages", "LogitJacobians", "JacobiansOfLogits", "first_entry_jacobians_loop"]
