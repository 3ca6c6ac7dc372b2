"""Regularized (aging) evolution under hard FLOPs and parameter constraints.

The search of Real et al. (AAAI 2019) as the xi-GSNR paper runs it in the ProxylessNAS and
BurgerFormer spaces (population 128, 2000 steps): a population of architectures that
satisfy the constraints is sampled and scored; then at every step a tournament of
``sample_size`` members is drawn, a child is made from its best member (by crossover with
the second best with probability ``crossover_rate``, then mutation at ``mutation_rate``),
scored, added, and the *oldest* member dies.

Constraints are checked before anything is scored, with the space's closed-form
``count_flops``/``count_params`` where it has them (a rejected child is redrawn), so a
search never spends a forward pass on a network it would discard. Without a bound no size
is measured while searching (a space without closed forms would build every child twice):
candidates carry ``flops``/``params`` None, and :meth:`EvolutionResult.best` with
``sizes=`` (e.g. :func:`arch_size` of the decoded encoding) measures the ones reported. The fitness is a
:class:`~xigsnr_naslib.scoring.study.Study` (its first proxy, through the one scoring path, so a
resumed search never scores an architecture twice) or any callable ``arch -> float``. A non-finite fitness is recorded and never
wins a tournament.

Architectures are identified by the space's canonical string (``space.encode``: one per
benchmark architecture, so isomorphic NAS-Bench-101 cells are one): each is scored once, on
its canonical form (``space.decode(code)``, so the fitness is a function of the
architecture), and listed once by :meth:`EvolutionResult.best`. A child equal to an earlier
architecture reuses its fitness and still takes its place in the population, as aging
evolution does; ``to_dict`` reports both the children made (``evaluated``) and the distinct
architectures scored (``distinct``).

A seeded run is reproducible: the evolution draws from its own ``random.Random(seed)`` and
proxies seed every network's initialisation. With ``checkpoint=path`` the state (population,
history, random state) is written every ``checkpoint_every`` steps and a rerun resumes it,
ending exactly where an uninterrupted run would. :meth:`EvolutionResult.best` gives the best
architectures as canonical encodings, which ``space.decode`` turns back into the same networks.
"""
from __future__ import annotations

import json
import math
import os
import random
import warnings
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Hashable


from xigsnr_naslib.data.outputs import writing
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.core.complexity import count_flops as _hook_flops
from xigsnr_naslib.scoring.results import StoreBusyError
from xigsnr_naslib.benchmarks.space import SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from xigsnr_naslib.scoring.study import Study

__all__ = [
    "Constraints",
    "Candidate",
    "EvolutionResult",
    "RegularizedEvolution",
    "EvolutionSettings",
    "arch_size",
    "parse_amount",
]

CHECKPOINT_VERSION = 1


def parse_amount(text: str | float | int | None) -> float | None:
    """``"400M"`` -> 4e8, ``"5G"`` / ``"5.0e9"`` -> 5e9, ``"30M"`` -> 3e7; None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    t = text.strip().upper()
    scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(t[-1:], None)
    try:
        return float(t[:-1]) * scale if scale else float(t)
    except ValueError:
        raise UsageError(f"not an amount: {text!r} (examples: 400M, 5G, 3e7)") from None


def arch_size(space: SearchSpace, arch: Hashable, resolution: int | None = None, num_classes: int = 1000
              ) -> tuple[int, int]:
    """(FLOPs as multiply-adds, parameters) of ``arch`` at ``resolution``: closed form if the space has it.

    ``resolution`` defaults to the space's own; spaces whose parameter count depends on the
    resolution (BurgerFormer's spatial MLPs) count parameters at that resolution too.
    """
    resolution = resolution or space.resolution or space.default_resolution
    if hasattr(space, "count_flops"):
        flops = space.count_flops(arch, resolution=resolution, num_classes=num_classes)
        extra = {"resolution": resolution} if "resolution" in _parameters(space.count_params) else {}
        return int(flops), int(space.count_params(arch, num_classes=num_classes, **extra))
    model = space.build(arch, num_classes=num_classes)
    return _hook_flops(model, (3, resolution, resolution)), sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class Constraints:
    """Hard bounds on FLOPs (multiply-adds) and parameters of the network at ``resolution``; None: no bound.

    ``resolution`` None means the space's own. A search scored at a low resolution usually
    keeps its constraints at the deployment resolution (224 in the paper).
    """

    max_flops: float | None = None
    min_flops: float | None = None
    max_params: float | None = None
    min_params: float | None = None
    resolution: int | None = None
    num_classes: int = 1000

    @property
    def bounded(self) -> bool:
        """Whether any bound is set (without one, no size needs measuring)."""
        return any(v is not None for v in (self.max_flops, self.min_flops, self.max_params, self.min_params))

    def violations(self, flops: float, params: float) -> list[str]:
        """Which bounds ``(flops, params)`` break (empty when it satisfies them all)."""
        out = []
        for value, bound, name, op in ((flops, self.max_flops, "FLOPs", "<="), (flops, self.min_flops, "FLOPs", ">="),
                                       (params, self.max_params, "params", "<="),
                                       (params, self.min_params, "params", ">=")):
            if bound is not None and not (value <= bound if op == "<=" else value >= bound):
                out.append(f"{name} {value:.4g} not {op} {bound:.4g}")
        return out

    def settings(self) -> dict:
        return asdict(self)


@dataclass
class Candidate:
    """One scored architecture: its encoding, fitness, size and the step that made it
    (``flops``/``params`` None where the search had no bound to check them against)."""

    arch: str
    fitness: float | None
    flops: int | None
    params: int | None
    step: int

    @property
    def rank_value(self) -> float:
        """The fitness, or -inf when it is missing or not finite (such a candidate never wins)."""
        return self.fitness if self.fitness is not None and math.isfinite(self.fitness) else -math.inf


@dataclass
class EvolutionResult:
    """Everything a search scored (``history``, in order) and the final population."""

    space: str
    history: list[Candidate]
    population: list[Candidate]
    settings: dict = field(default_factory=dict)

    def best(self, k: int = 1, sizes: Callable[[str], tuple[int, int]] | None = None) -> list[Candidate]:
        """The ``k`` best distinct architectures ever scored, best first (ties: earliest).
        ``sizes`` (an encoding's (FLOPs, params), e.g. :func:`arch_size` of the decoded encoding) fills the sizes
        a search without bounds did not measure."""
        seen, unique = set(), []
        for c in sorted(self.history, key=lambda c: (-c.rank_value, c.step)):
            if c.arch not in seen:
                seen.add(c.arch)
                unique.append(c)
        for c in unique[:k]:
            if sizes is not None and (c.flops is None or c.params is None):
                c.flops, c.params = sizes(c.arch)
        return unique[:k]

    def distinct(self) -> int:
        """How many distinct architectures (canonical strings) were scored."""
        return len({c.arch for c in self.history})

    def to_dict(self, k: int = 10, sizes: Callable[[str], tuple[int, int]] | None = None) -> dict:
        return {"space": self.space, "settings": self.settings, "best": [asdict(c) for c in self.best(k, sizes)],
                "evaluated": len(self.history), "distinct": self.distinct()}


@dataclass(frozen=True)
class EvolutionSettings:
    """The evolution's own parameters (the paper's search: population 128, 2000 steps).

    Parameters
    ----------
    population_size, steps : int
        Members alive at once, and children made after the first population.
    sample_size : int
        Tournament size (members drawn at random; the best is the parent).
    mutation_rate : float or None
        Per-choice probability of a redraw, for spaces whose ``mutate`` takes ``rate``
        (None: the space's default, one choice on average).
    crossover_rate : float
        Probability that a child starts as the crossover of the tournament's two best.
    seed : int
        Seeds the evolution's random choices.
    checkpoint_every : int
        Steps between checkpoints.
    max_tries : int
        Draws allowed to find one architecture within the constraints.

    Raises
    ------
    ValueError
        Naming the bad value.
    """

    population_size: int = 128
    steps: int = 2000
    sample_size: int = 32
    mutation_rate: float | None = None
    crossover_rate: float = 0.25
    seed: int = 0
    checkpoint_every: int = 20
    max_tries: int = 10000

    def __post_init__(self) -> None:
        from xigsnr_naslib.search.settings import check_fraction, check_whole

        for name, minimum in (("population_size", 2), ("steps", 0), ("sample_size", 1), ("seed", 0),
                              ("checkpoint_every", 1), ("max_tries", 1)):
            check_whole("evolution settings", name, getattr(self, name), minimum)
        check_fraction("evolution settings", "mutation_rate", self.mutation_rate, optional=True)
        check_fraction("evolution settings", "crossover_rate", self.crossover_rate)


class RegularizedEvolution:
    """Aging evolution in ``space`` maximising ``fitness`` under ``constraints``.

    Parameters
    ----------
    space : SearchSpace
        Needs ``sample``, ``mutate``, ``crossover``, ``encode``/``decode``.
    fitness : Study or callable
        A :class:`~xigsnr_naslib.scoring.study.Study` (its first proxy's score, through the one
        scoring path: workers, device and results store, so a resumed search never scores
        an architecture twice; its settings go into the checkpoint), or ``arch -> float``;
        higher is better.
    evolution : EvolutionSettings
        Population, steps, tournament, rates, seed (default: the paper's 128 and 2000).
    constraints : Constraints or None
        Hard bounds checked before scoring.
    checkpoint : path or None
        JSON file the state is saved to every ``evolution.checkpoint_every`` steps and resumed from.
    progress : bool
        Show a tqdm progress bar.
    """

    def __init__(self, space: SearchSpace, fitness: "Study | Callable[[Hashable], float]",
                 evolution: EvolutionSettings = EvolutionSettings(), *, constraints: Constraints | None = None,
                 checkpoint: str | os.PathLike | None = None, progress: bool = True):
        self.space = space
        self._study = fitness if hasattr(fitness, "fitness") else None
        self._fitness_settings = fitness.settings() if hasattr(fitness, "fitness") else {}
        self.fitness = fitness.fitness if hasattr(fitness, "fitness") else fitness
        self.evolution = evolution
        self.population_size = evolution.population_size
        self.steps = evolution.steps
        self.sample_size = min(evolution.sample_size, evolution.population_size)
        self.mutation_rate = evolution.mutation_rate
        self.crossover_rate = evolution.crossover_rate
        self.constraints = constraints or Constraints()
        self.seed = evolution.seed
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.checkpoint_every = max(1, evolution.checkpoint_every)
        self.max_tries = evolution.max_tries
        self.progress = progress
        self._mutate_takes_rate = "rate" in _parameters(space.mutate)

    def settings(self) -> dict:
        """What defines the run (a checkpoint resumes only under the same settings, steps aside)."""
        return {"space": self.space.name, "population_size": self.population_size, "sample_size": self.sample_size,
                "mutation_rate": self.mutation_rate, "crossover_rate": self.crossover_rate, "seed": self.seed,
                "constraints": self.constraints.settings(), "fitness": self._fitness_settings}

    # -- constraint-respecting draws ---------------------------------------------------------------
    def _admissible(self, arch: Hashable) -> tuple[int | None, int | None] | None:
        if not self.constraints.bounded:
            return None, None  # nothing to check: no size measured (the reported ones are, later)
        flops, params = arch_size(self.space, arch, self.constraints.resolution, self.constraints.num_classes)
        return None if self.constraints.violations(flops, params) else (flops, params)

    def _draw(self, make: Callable[[], Hashable], what: str) -> tuple[Hashable, int | None, int | None]:
        for _ in range(self.max_tries):
            arch = make()
            size = self._admissible(arch)
            if size is not None:
                return arch, size[0], size[1]
        raise UsageError(f"{self.space.name}: no {what} within the constraints after {self.max_tries} draws "
                         f"({self.constraints.settings()})")

    def _mutate(self, arch: Hashable, rng: random.Random) -> Hashable:
        if self._mutate_takes_rate:
            return self.space.mutate(arch, rng, rate=self.mutation_rate)
        return self.space.mutate(arch, rng)

    def _child(self, parents: list[Candidate], rng: random.Random) -> Hashable:
        first = self.space.decode(parents[0].arch)
        second = self.space.decode(parents[1].arch) if len(parents) > 1 else None

        def make() -> Hashable:
            if second is not None and rng.random() < self.crossover_rate:
                return self._mutate(self.space.crossover(first, second, rng), rng)
            return self._mutate(first, rng)

        try:
            return self._draw(make, "child")
        except ValueError:  # the parent's neighbourhood is exhausted: start afresh
            return self._draw(lambda: self.space.sample(rng), "architecture")

    # -- the run ----------------------------------------------------------------------------------------
    def _score(self, arch: Hashable, flops: int | None, params: int | None, step: int, cache: dict) -> Candidate:
        code = self.space.encode(arch)
        if code not in cache:
            try:  # the canonical form: every spelling of the architecture gets the same score
                value = float(self.fitness(self.space.decode(code)))
            except StoreBusyError:  # the run's results file, not the network: nothing to record, stop
                raise
            except (RuntimeError, ValueError) as exc:  # a broken network must not end the search
                warnings.warn(f"{self.space.name} {code}: fitness failed: {exc}")
                value = math.nan
            cache[code] = value if math.isfinite(value) else None
        return Candidate(code, cache[code], flops, params, step)

    def run(self) -> EvolutionResult:
        """Search (or resume the checkpoint) and return everything scored."""
        rng = random.Random(self.seed)
        population: deque[Candidate] = deque()
        history: list[Candidate] = []
        if self.checkpoint is not None and self.checkpoint.exists():
            history, population = self._load(rng)
            if self._study is not None and self._retry_failed(history):
                self._save(rng, history, population)
        cache: dict[str, float | None] = {}
        for c in history:  # one score per architecture: the first (checkpoints of earlier encodings
            c.fitness = cache.setdefault(c.arch, c.fitness)  # may hold two spellings of one)
        total = self.population_size + self.steps
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=min(len(history), total), desc=f"evolution/{self.space.name}",
                       unit="arch")
        try:
            while len(history) < total:
                n = len(history)
                if n < self.population_size:
                    arch, flops, params = self._draw(lambda: self.space.sample(rng), "architecture")
                else:
                    members = list(population)
                    tournament = rng.sample(members, self.sample_size)
                    tournament.sort(key=lambda c: (-c.rank_value, c.step))
                    arch, flops, params = self._child(tournament[:2], rng)
                child = self._score(arch, flops, params, n, cache)
                history.append(child)
                population.append(child)
                if len(population) > self.population_size:
                    population.popleft()
                if bar is not None:
                    best = max(c.rank_value for c in history)
                    bar.set_postfix(best=f"{best:.4g}", refresh=False)
                    bar.update(1)
                if self.checkpoint is not None and (len(history) % self.checkpoint_every == 0
                                                    or len(history) == total):
                    self._save(rng, history, population)
        finally:
            if bar is not None:
                bar.close()
        return EvolutionResult(self.space.name, history, list(population), self.settings())

    # -- checkpoints --------------------------------------------------------------------------------
    def _save(self, rng: random.Random, history: list[Candidate], population: deque[Candidate]) -> None:
        version, state, gauss = rng.getstate()
        data = {"version": CHECKPOINT_VERSION, "settings": self.settings(),
                "rng": [version, list(state), gauss], "history": [asdict(c) for c in history],
                "population": [c.step for c in population]}
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        with writing(self.checkpoint, "checkpoint"):
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.checkpoint)

    def _load(self, rng: random.Random) -> tuple[list[Candidate], deque[Candidate]]:
        try:
            data = json.loads(self.checkpoint.read_text())
            if data.get("version") != CHECKPOINT_VERSION:
                raise UsageError(f"version {data.get('version')!r}, expected {CHECKPOINT_VERSION}")
            saved = data["settings"]
            history = [_candidate(c, i) for i, c in enumerate(data["history"])]
            by_step = {c.step: c for c in history}
            population = deque(by_step[s] for s in data["population"])
            version, state, gauss = data["rng"]
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"checkpoint {self.checkpoint} is not readable: {exc}") from None
        current = json.loads(json.dumps(self.settings()))
        if saved != current:
            fields = _differences(saved, current)
            raise UsageError(f"checkpoint {self.checkpoint} was written with other {', '.join(fields)} "
                             f"({'; '.join(f'{f}: {_at(saved, f)!r} then, {_at(current, f)!r} now' for f in fields)}); "
                             "use another checkpoint file or the same settings")
        for c in history:  # the encodings must still be architectures of this space; earlier
            c.arch = self.space.encode(self.space.decode(c.arch))  # encodings read as canonical
        try:
            rng.setstate((version, tuple(state), gauss))
        except (TypeError, ValueError) as exc:
            raise UsageError(f"checkpoint {self.checkpoint} is not readable: its random state: {exc}") from None
        return history, population

    def _retry_failed(self, history: list[Candidate]) -> bool:
        """Ask the study again for the candidates of a resumed checkpoint that have no fitness:
        its store serves the architectures' facts (not computable, not finite) and scores again
        the failures of the run that was interrupted (an error record is never served).
        Returns whether a candidate got a fitness."""
        changed = False
        for c in history:
            if c.fitness is None:
                value = float(self.fitness(self.space.decode(c.arch)))
                c.fitness = value if math.isfinite(value) else None
                changed = changed or c.fitness is not None
        return changed


def _candidate(entry, position: int) -> Candidate:
    """A checkpoint's history entry as a :class:`Candidate`; ``ValueError`` naming the entry
    and what is wrong with it otherwise."""
    types = {"arch": (str,), "fitness": (int, float, type(None)), "flops": (int, float, type(None)),
             "params": (int, float, type(None)),
             "step": (int,)}
    if not isinstance(entry, dict):
        raise UsageError(f"history entry {position} is {json.dumps(entry)[:60]}, not a candidate object")
    missing = [k for k in types if k not in entry]
    if missing:
        raise UsageError(f"history entry {position} lacks {', '.join(missing)}")
    for key, allowed in types.items():
        if isinstance(entry[key], bool) or not isinstance(entry[key], allowed):
            raise UsageError(f"history entry {position}: {key} is {json.dumps(entry[key])[:60]}")
    return Candidate(**{k: entry[k] for k in types})


def _differences(a, b, prefix: str = "") -> list[str]:
    """Dotted names of the fields in which two nested dicts differ."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [prefix.rstrip(".") or "settings"] if a != b else []
    out = []
    for key in dict.fromkeys([*a, *b]):
        out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
    return out


def _at(data, dotted: str):
    for key in dotted.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _parameters(fn: Callable) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()
