"""Training-free pruning search (the TE-NAS procedure) with any zero-cost proxy as the indicator.

TE-NAS (Chen, Gong, Wang, "Neural Architecture Search on ImageNet in Four GPU Hours: A
Theoretically Inspired Perspective", ICLR 2021; the released ``prune_tenas.py`` of
VITA-Group/TENAS) prunes a supernet (:mod:`xigsnr_naslib.benchmarks.supernet`):

1. Start with every candidate operation on every edge.
2. Each round, score the supernet with each remaining operation of each edge removed
   (one state per (edge, operation), every other edge as it is), and the supernet itself.
   On every edge with more than one operation left, prune the operation whose removal
   costs the indicator least. Repeat until one operation per edge is left.
3. Spaces whose nodes keep two inputs (DARTS): node by node, score the supernet with each
   of the node's live edges removed and prune all but the two whose removal costs most.

**The indicator.** TE-NAS ranks each removal by two indicators, the change of the
condition number of the NTK (lower is better) and of the number of linear regions (higher
is better), and prunes per edge the operation of the best summed rank. Here one registered
proxy replaces both: the cost of a removal is the relative drop of the proxy's score,
``(s(supernet) - s(supernet without op)) / |s(supernet)|``, averaged over ``repeats``
initialisations (TE-NAS: 3), and the operation of least cost is pruned. With one indicator,
pruning per edge the least-cost operation is what TE-NAS's per-edge minimum of the summed
rank reduces to. Higher proxy scores are better (as for every registered proxy). Costs are
not rounded (TE-NAS rounds them to 3 significant figures, creating ties); a tie is broken
by the space's operation order (edges: the earlier one is kept).

Every state is scored by ``score(states) -> list of float`` functions, one per repeat
(:func:`study_scorer`: the one scoring path, so a resumed search never scores a state
twice). States are identified by the supernet's canonical string (``supernet.encode``): a
state met again (the state after a round that removed one operation was a candidate of that
round) is not scored again by :func:`prune`, whatever the scorer.
Repeat ``r`` initialises every network with ``init_seed + r * REPEAT_SEED_STRIDE``.
A score that is not a finite number (an error, ``not computable``, NaN) stops the search
with a ``ValueError`` naming the state and the reason: a pruning decision is never taken on
a missing value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Hashable, Sequence

from xigsnr_naslib.scoring.results import Status
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.benchmarks.supernet import State, SupernetSpace

if TYPE_CHECKING:  # pragma: no cover
    from xigsnr_naslib.scoring.study import Study

__all__ = ["REPEAT_SEED_STRIDE", "PruneStep", "PruneResult", "prune", "removal_costs", "study_scorer", "StudyScorer"]

#: repeat r of a pruning search initialises its networks with init_seed + r * REPEAT_SEED_STRIDE
REPEAT_SEED_STRIDE = 1000

Scorer = Callable[[Sequence[State]], list]


@dataclass
class PruneStep:
    """One pruning decision round: the state scored, and per candidate removal its cost.

    ``kind`` is ``"operation"`` (candidates ``(edge name, operation)``) or ``"edge"``
    (candidates ``(edge name, None)``: the whole edge); ``pruned`` lists the removals made.
    """

    kind: str
    state: str
    costs: list[tuple[str, str | None, float]]
    pruned: list[tuple[str, str | None]]


@dataclass
class PruneResult:
    """The final state, the base space's architecture it is, and every round."""

    state: State
    arch: Hashable
    steps: list[PruneStep] = field(default_factory=list)
    networks: int = 0  # distinct (state, repeat) networks scored or read from the store


def removal_costs(supernet: SupernetSpace, state: State, candidates: Sequence[tuple[int, str | None]],
                  scorers: Sequence[Scorer]) -> list[float]:
    """Mean relative drop of the indicator when each candidate is removed from ``state``.

    ``candidates``: ``(edge index, operation)`` pairs (operation None: the whole edge).
    Returns one cost per candidate. Errors: ``ValueError`` when a score is not finite or the
    supernet's own score is 0 (the relative change is undefined).
    """
    states = [state] + [supernet.without(state, e, op) for e, op in candidates]
    totals = [0.0] * len(candidates)
    for scorer in scorers:
        values = scorer(states)
        for s, v in zip(states, values):
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise UsageError(f"the indicator gave no finite score for the {supernet.name} state "
                                 f"{supernet.encode(s)}: {v}")
        base = values[0]
        if base == 0:
            raise UsageError(f"the indicator is 0 on the {supernet.name} state {supernet.encode(state)}: "
                             "the relative change of a removal is undefined")
        for i, v in enumerate(values[1:]):
            totals[i] += (base - v) / abs(base)
    return [t / len(scorers) for t in totals]


def prune(supernet: SupernetSpace, scorers: Sequence[Scorer], progress: Callable[[str], None] | None = None
          ) -> PruneResult:
    """Prune ``supernet`` down to one architecture of its base space (module documentation).

    ``scorers``: one ``score(states) -> list of float`` per repeat (higher is better).
    ``progress(message)`` is told each decision.
    """
    if not scorers:
        raise UsageError("pruning needs at least one scorer (repeat)")
    scorers = [_Memo(supernet, scorer) for scorer in scorers]
    state = supernet.full()
    steps: list[PruneStep] = []
    seen: set = set()

    def note(states):
        seen.update(supernet.encode(s) for s in states)

    while not supernet.is_single_path(state):
        candidates = [(e, op) for e, ops in enumerate(state) if len(ops) > 1 for op in ops]
        costs = removal_costs(supernet, state, candidates, scorers)
        note([state] + [supernet.without(state, e, op) for e, op in candidates])
        best: dict[int, tuple[float, int, str]] = {}
        for (e, op), cost in zip(candidates, costs):
            key = (cost, supernet.operations.index(op), op)
            if e not in best or key < best[e]:
                best[e] = key
        pruned = [(e, best[e][2]) for e in sorted(best)]
        steps.append(PruneStep("operation", supernet.encode(state),
                               [(supernet.edge_names[e], op, c) for (e, op), c in zip(candidates, costs)],
                               [(supernet.edge_names[e], op) for e, op in pruned]))
        for e, op in pruned:
            state = supernet.without(state, e, op)
        if progress is not None:
            progress("pruned " + ", ".join(f"{supernet.edge_names[e]}: {op}" for e, op in pruned))
    for group in supernet.node_groups:
        live = [e for e in group if state[e]]
        if len(live) <= supernet.keep_inputs:
            continue
        candidates = [(e, None) for e in live]
        costs = removal_costs(supernet, state, candidates, scorers)
        note([state] + [supernet.without(state, e) for e in live])
        # keep the keep_inputs edges whose removal costs most (ties: the earlier edge)
        order = sorted(range(len(live)), key=lambda i: (-costs[i], i))
        drop = sorted(live[i] for i in order[supernet.keep_inputs:])
        steps.append(PruneStep("edge", supernet.encode(state),
                               [(supernet.edge_names[e], None, c) for e, c in zip(live, costs)],
                               [(supernet.edge_names[e], None) for e in drop]))
        for e in drop:
            state = supernet.without(state, e)
        if progress is not None:
            progress("removed edges " + ", ".join(supernet.edge_names[e] for e in drop))
    return PruneResult(state, supernet.final(state), steps, len(seen) * len(scorers))


class _Memo:
    """``scorer`` calling its wrapped scorer only for states (by canonical string) it has not
    scored yet."""

    def __init__(self, supernet: SupernetSpace, scorer: Scorer):
        self.supernet, self.scorer, self.values = supernet, scorer, {}

    def __call__(self, states: Sequence[State]) -> list:
        codes = [self.supernet.encode(s) for s in states]
        new = {}
        for code, state in zip(codes, states):
            if code not in self.values:
                new.setdefault(code, state)
        if new:
            self.values.update(zip(new, self.scorer(list(new.values()))))
        return [self.values[code] for code in codes]


class StudyScorer:
    """``score(states)`` through a study (its first proxy): every state scored once, through
    the store, workers and device of the study. ``records`` keeps each state's record (code ->
    record). A record that is not ``ok`` raises ``ValueError`` with its status and reason."""

    def __init__(self, study: "Study"):
        self.study = study
        self.proxy = study.proxies[0].name
        self.records: dict[str, dict] = {}

    def __call__(self, states: Sequence[State]) -> list[float]:
        records = [r for r in self.study.score([(None, s) for s in states]) if r["proxy"] == self.proxy]
        out = []
        for record in records:
            self.records[record["arch"]] = record
            if record.get("status", Status.OK) not in (Status.OK, Status.NONFINITE):
                why = record.get("reason") or record.get("error") or record.get("status")
                raise UsageError(f"proxy {self.proxy!r} failed on the {self.study.card.name} state {record['arch']}: "
                                 f"{record.get('status')} ({why})")
            out.append(float("nan") if record.get("score") is None else float(record["score"]))
        return out


def study_scorer(study: "Study") -> StudyScorer:
    """The :class:`StudyScorer` of ``study``."""
    return StudyScorer(study)
