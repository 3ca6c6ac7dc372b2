"""A few-shot accuracy predictor from zero-cost proxy scores and graph features.

The label-free rules (:mod:`xigsnr_naslib.proxies.ensemble`, the ``aggregate`` sources of the
leaderboard) combine proxies by a fixed formula. :class:`ZeroCostPredictor` instead learns the
combination from a few trained architectures: a tree-ensemble regressor (XGBoost, LightGBM or
scikit-learn) on

* the scores of any proxies, read from a score table (a leaderboard's ``scores.csv``, a
  :class:`~xigsnr_naslib.analysis.score_tables.ProxyTable` such as NAS-Bench-Suite-Zero's) or computed
  and stored through a :class:`~xigsnr_naslib.scoring.study.Study`, and
* graph features computed from the architecture alone (:mod:`xigsnr_naslib.analysis.graph_features`).

It is a scikit-learn estimator (``fit(archs, accuracies)``, ``predict(archs)``, ``get_params``;
validation at the door; the inputs are never changed) and a NASLib predictor
(``fit(xtrain, ytrain, info)``, ``query(xtest, info)``, ``pre_process``, ``get_data_reqs``...):
NASLib's predictor runner can hold it in its ``supported_predictors`` table, and it accepts
NASLib's graphs (their ``get_hash()`` read through the card's NASLib codec).

Usage::

    from xigsnr_naslib.analysis.predictor import ZeroCostPredictor, read_score_table
    table = read_score_table("evaluation/leaderboard/nb201_cifar10_zoo/scores.csv", "nb201")
    model = ZeroCostPredictor("nb201", proxies=["meco", "swap", "xi_gsnr"], source=table)
    model.fit(train_archs, train_accuracies)
    predicted = model.predict(test_archs)

Targets: with ``target="quantile"`` (the default) the learner fits each training
architecture's empirical quantile of accuracy (in (0, 1)) instead of the accuracy itself, so
that a few failed networks (10% on CIFAR-10) do not dominate the squared error; predictions
are mapped back to accuracies through the training accuracies' quantile function (monotone,
so every ranking is the learner's). ``target="raw"`` fits the accuracies.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Hashable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone

from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.analysis.graph_features import feature_names as graph_feature_names
from xigsnr_naslib.analysis.graph_features import graph_feature_table, graph_spaces

__all__ = ["ZeroCostPredictor", "LEARNERS", "TARGETS", "NON_FEATURES", "read_score_table", "proxy_frame",
           "ranking_metrics", "draw_split", "evaluate_split", "make_learner"]

#: learner name -> (package, what it is)
LEARNERS = {
    "xgboost": ("xgboost", "XGBoost gradient-boosted trees (XGBRegressor)"),
    "lightgbm": ("lightgbm", "LightGBM gradient-boosted trees (LGBMRegressor)"),
    "random_forest": ("sklearn", "scikit-learn RandomForestRegressor"),
}
#: what the learner fits (module documentation)
TARGETS = ("quantile", "raw")
#: columns of a score table that are never features: keys, accuracies and label-selected or
#: population-ranked combinations (``ensemble`` was chosen with other cells' accuracies;
#: ``aznas`` and ``vkdnw_agg`` rank within the table's whole population)
NON_FEATURES = frozenset({"index", "arch", "sample", "accuracy", "test_accuracy", "naslib_val", "naslib_test",
                          "val_accs", "test_acc", "val_accuracy", "net", "net_str", "arch_str", "nb201_index",
                          "ensemble", "aznas", "vkdnw_agg"})


def make_learner(name: str, random_state: int = 0, params: Mapping[str, Any] | None = None):
    """A fresh regressor ``name`` (:data:`LEARNERS`) with the defaults below updated by ``params``.

    Defaults, fixed before any measurement: 500 trees for the forests and boosters, learning
    rate 0.05, depth 6 (boosters), 1 thread (the scores do not depend on it); LightGBM reports
    gain importances (total loss reduction per feature, not split counts).
    """
    if name not in LEARNERS:
        raise UsageError(f"unknown learner {name!r}; known: {', '.join(LEARNERS)}")
    params = dict(params or {})
    try:
        if name == "xgboost":
            from xgboost import XGBRegressor

            return XGBRegressor(**{"n_estimators": 500, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.8,
                                   "colsample_bytree": 0.8, "n_jobs": 1, "random_state": random_state, **params})
        if name == "lightgbm":
            from lightgbm import LGBMRegressor

            return LGBMRegressor(**{"n_estimators": 500, "learning_rate": 0.05, "num_leaves": 31, "max_depth": 6,
                                    "min_child_samples": 5, "subsample": 0.8, "subsample_freq": 1,
                                    "colsample_bytree": 0.8, "n_jobs": 1, "verbose": -1, "importance_type": "gain",
                                    "random_state": random_state, **params})
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(**{"n_estimators": 500, "max_features": 0.5, "n_jobs": 1,
                                        "random_state": random_state, **params})
    except ImportError as exc:
        raise ImportError(f"learner {name!r} needs the package {LEARNERS[name][0]!r} ({exc}); install it with "
                          "pip install 'xigsnr-naslib[predictor]'") from None


# --- architectures and proxy scores ------------------------------------------------------------------

def _codec(space: str):
    from xigsnr_naslib.benchmarks.card import get_card

    card = get_card(space)
    return card, card.create_space()


def _canonical(space_obj, card, arch: Any) -> str:
    """An architecture's canonical string: from the string itself, a decoded architecture, or a
    NASLib graph (``get_spec()`` of matrix and ops, else ``get_hash()`` through the card's codec)."""
    if hasattr(arch, "get_hash") and not isinstance(arch, str):
        spec = arch.get_spec() if hasattr(arch, "get_spec") else None
        if isinstance(spec, Mapping) and "matrix" in spec and "ops" in spec:
            arch = {"matrix": np.asarray(spec["matrix"]).tolist(), "ops": list(spec["ops"])}
        else:
            key = arch.get_hash()
            arch = card.naslib.from_naslib(key) if card.naslib is not None else key
    return space_obj.encode(space_obj.decode(arch) if isinstance(arch, (str, Mapping)) else arch)


def read_score_table(path: str | Path, space: str, arch_column: str = "arch") -> pd.DataFrame:
    """A score CSV (e.g. a leaderboard's ``scores.csv``) as proxy columns indexed by canonical
    architecture string; accuracy, key and label-selected columns (:data:`NON_FEATURES`) are dropped.

    Errors: a missing file (``FileNotFoundError``), a missing ``arch_column``, an architecture
    listed twice (``ValueError`` naming it).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"score table {path} not found")
    frame = pd.read_csv(path)
    if arch_column not in frame.columns:
        raise UsageError(f"{path}: no {arch_column!r} column; columns: {', '.join(frame.columns)}")
    card, space_obj = _codec(space)
    codes = [_canonical(space_obj, card, a) for a in frame[arch_column]]
    twice = pd.Index(codes)[pd.Index(codes).duplicated()]
    if len(twice):
        raise UsageError(f"{path}: architecture {twice[0]!r} is listed more than once")
    columns = [c for c in frame.columns if c not in NON_FEATURES and c != arch_column]
    values = frame[columns].apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
    return values.set_axis(pd.Index(codes, name="arch"), axis=0)


def _table_of(source) -> pd.DataFrame | None:
    from xigsnr_naslib.analysis.score_tables import ProxyTable

    if isinstance(source, ProxyTable):
        return source.scores
    if isinstance(source, pd.DataFrame):
        return source
    return None


def source_proxies(source) -> list[str] | None:
    """The proxies a source offers (a table's feature columns); ``None`` for a Study (any registered)."""
    table = _table_of(source)
    if table is None:
        return None
    return [c for c in table.columns if c not in NON_FEATURES]


def proxy_frame(source, codes: Sequence[str], proxies: Sequence[str]) -> pd.DataFrame:
    """The scores of ``proxies`` for the architectures ``codes`` (canonical strings), one row each;
    a non-finite or not computable score is NaN (the learners treat it as missing).

    ``source``: a DataFrame indexed by canonical string, a ProxyTable, or a Study (the
    architectures are scored through it: read from its store, else computed and stored).
    An architecture missing from a table is an error naming it: its scores are not known.
    """
    table = _table_of(source)
    if table is None:
        from xigsnr_naslib.scoring.results import record_score
        from xigsnr_naslib.scoring.study import Study

        if not isinstance(source, Study):
            raise UsageError(f"a proxy source is a score table (DataFrame, ProxyTable) or a Study, got "
                             f"{type(source).__name__}")
        study = Study(source.card, source.dataset_card, list(proxies), source.protocol, source.execution,
                      source.store, source.data_root, source.images, dict(source.space_options))
        records = study.score((None, c) for c in codes)
        by_key = {(r["arch"], r["proxy"]): record_score(r) for r in records}
        return pd.DataFrame([[by_key[(c, p)] for p in proxies] for c in codes], index=list(codes),
                            columns=list(proxies), dtype=float)
    missing = pd.Index(codes).difference(table.index)
    if len(missing):
        raise UsageError(f"{len(missing)} architecture(s) are not in the score table, e.g. {missing[0]!r}")
    frame = table.loc[list(codes), list(proxies)].astype(float)
    return frame.replace([np.inf, -np.inf], np.nan).set_axis(list(codes), axis=0)


# --- the estimator ------------------------------------------------------------------------------------

class _NASLibPredictor:
    """NASLib's ``Predictor`` interface (naslib/predictors/predictor.py), without importing NASLib."""

    def set_ss_type(self, ss_type):
        self.ss_type = ss_type

    def pre_process(self):
        """Nothing to prepare before the search."""

    def pre_compute(self, xtrain, xtest, unlabeled=None):
        """Nothing to precompute: features are computed (and cached) per architecture."""

    def query(self, xtest, info=None, **kwargs) -> np.ndarray:
        """NASLib's name for :meth:`predict`."""
        return self.predict(xtest)

    def get_data_reqs(self) -> dict:
        return {"requires_partial_lc": False, "metric": None, "requires_hyperparameters": False,
                "hyperparams": {}, "unlabeled": False, "unlabeled_factor": 0}

    def set_hyperparams(self, hyperparams):
        self.hyperparams = hyperparams

    def get_hyperparams(self):
        return getattr(self, "hyperparams", None)

    def reset_hyperparams(self):
        self.hyperparams = None

    def get_hpo_wrapper(self):
        return False

    def get_model(self):
        return getattr(self, "model_", None)


class ZeroCostPredictor(_NASLibPredictor, RegressorMixin, BaseEstimator):
    """Accuracy from proxy scores and graph features, learned from a few trained architectures.

    Parameters
    ----------
    space : str
        The search space (a registered card with graph features when ``graph`` is true).
    proxies : sequence of str
        Proxy scores used as features ("all": every proxy column of a table ``source``).
    graph : bool
        Add the graph features of :mod:`xigsnr_naslib.analysis.graph_features`.
    source : DataFrame, ProxyTable, Study or None
        Where proxy scores come from (:func:`proxy_frame`); required when ``proxies`` is not empty.
    learner : str
        One of :data:`LEARNERS`; default ``lightgbm``, the most accurate whose fit is cheap on the
        development runs of ``evaluation/predictor/evaluate_predictor.py --stage develop``.
    learner_params : mapping or None
        Overrides of the learner's defaults (:func:`make_learner`).
    target : str
        ``"quantile"`` or ``"raw"`` (module documentation).
    random_state : int
        Seeds the learner.

    Attributes
    ----------
    feature_names_in_, n_features_in_, model_, feature_importances_, fit_seconds_
        Set by ``fit`` (``feature_importances_``: a Series by feature name).
    """

    def __init__(self, space: str = "nb201", proxies: Sequence[str] | str = (), graph: bool = True, source=None,
                 learner: str = "lightgbm", learner_params: Mapping[str, Any] | None = None,
                 target: str = "quantile", random_state: int = 0):
        self.space = space
        self.proxies = proxies
        self.graph = graph
        self.source = source
        self.learner = learner
        self.learner_params = learner_params
        self.target = target
        self.random_state = random_state

    # -- validation ----------------------------------------------------------------------------------
    def _proxy_names(self) -> list[str]:
        offered = source_proxies(self.source)
        names = list(offered or []) if isinstance(self.proxies, str) and self.proxies == "all" else (
            [self.proxies] if isinstance(self.proxies, str) else list(self.proxies))
        if names and self.source is None:
            raise UsageError(f"proxies {names} need a source of scores (a score table or a Study)")
        bad = [p for p in names if p in NON_FEATURES]
        if bad:
            raise UsageError(f"{bad[0]!r} is not a feature (an accuracy, a key or a label-selected combination)")
        if offered is not None:
            unknown = [p for p in names if p not in offered]
            if unknown:
                raise UsageError(f"proxy {unknown[0]!r} is not in the score table; it has: {', '.join(offered)}")
        else:
            from xigsnr_naslib.proxies import list_proxies

            unknown = [p for p in names if p not in list_proxies()]
            if unknown:
                raise UsageError(f"unknown proxy {unknown[0]!r}; registered: {', '.join(list_proxies())}")
        return names

    def _check_params(self) -> list[str]:
        if self.learner not in LEARNERS:
            raise UsageError(f"unknown learner {self.learner!r}; known: {', '.join(LEARNERS)}")
        if self.target not in TARGETS:
            raise UsageError(f"unknown target {self.target!r}; known: {', '.join(TARGETS)}")
        if self.graph and self.space not in graph_spaces():
            raise UsageError(f"no graph features for space {self.space!r} (graph=True); spaces with them: "
                             f"{', '.join(graph_spaces())}")
        names = self._proxy_names()
        if not names and not self.graph:
            raise UsageError("no features: give proxies, or graph=True")
        return names

    def _codes(self, X) -> list[str]:
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise UsageError(f"X must be a sequence of architectures, got {type(X).__name__}")
        card, space_obj = _codec(self.space)
        return [_canonical(space_obj, card, a) for a in list(X)]

    # -- features ---------------------------------------------------------------------------------------
    def feature_frame(self, X) -> pd.DataFrame:
        """The features of architectures ``X``: one row each, columns proxies (as
        ``sign(s) log(1 + |s|)``) then graph features."""
        names = self._check_params()
        codes = self._codes(X)
        # proxy scores on a signed log scale: monotone, so no tree split changes, and within float32
        # (the learners' type; synflow reaches 1e40)
        parts = [np.sign(frame) * np.log1p(np.abs(frame)) for frame in
                 [proxy_frame(self.source, codes, names).set_axis(range(len(codes)), axis=0)]] if names else []
        if self.graph:
            parts.append(graph_feature_table(self.space, codes))
        return pd.concat(parts, axis=1)

    def fit(self, X, y, info=None) -> "ZeroCostPredictor":
        """Fit on architectures ``X`` and their accuracies ``y`` (NASLib: ``fit(xtrain, ytrain, info)``)."""
        y = np.array(y, dtype=float)  # a copy: the caller's array is never changed
        if y.ndim != 1 or not np.all(np.isfinite(y)):
            raise UsageError(f"y must be a 1-d sequence of finite accuracies, got shape {y.shape} with "
                             f"{int(np.sum(~np.isfinite(y))) if y.ndim == 1 else 'some'} non-finite value(s)")
        if len(y) < 2:
            raise UsageError(f"fit needs at least 2 architectures, got {len(y)}")
        features = self.feature_frame(X)
        if len(features) != len(y):
            raise UsageError(f"X has {len(features)} architectures but y has {len(y)} accuracies")
        started = time.perf_counter()
        self.y_sorted_ = np.sort(y)
        target = (pd.Series(y).rank(method="average").to_numpy() - 0.5) / len(y) if self.target == "quantile" else y
        self.model_ = make_learner(self.learner, self.random_state, self.learner_params)
        self.model_.fit(features.to_numpy(dtype=float), target)
        self.fit_seconds_ = time.perf_counter() - started
        self.feature_names_in_ = np.array(features.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted accuracies of architectures ``X``."""
        if not hasattr(self, "model_"):
            raise UsageError("this ZeroCostPredictor is not fitted yet: call fit(archs, accuracies) first")
        features = self.feature_frame(X)
        if list(features.columns) != list(self.feature_names_in_):
            raise UsageError("the features differ from those the predictor was fitted on (the source changed?)")
        raw = np.asarray(self.model_.predict(features.to_numpy(dtype=float)), dtype=float)
        if self.target == "raw":
            return raw
        return np.quantile(self.y_sorted_, np.clip(raw, 0.0, 1.0))

    @property
    def feature_importances_(self) -> pd.Series:
        """The learner's feature importances by feature name, largest first."""
        if not hasattr(self, "model_"):
            raise AttributeError("feature_importances_ exists after fit")
        values = getattr(self.model_, "feature_importances_", None)
        return pd.Series(values, index=self.feature_names_in_, dtype=float).sort_values(ascending=False)


# --- evaluation ---------------------------------------------------------------------------------------

def ranking_metrics(predicted, accuracy, ndcg_k: int = 10) -> dict[str, float]:
    """Kendall tau, Spearman rho, P@Top5%, P@Top10% (the project's metrics module) and
    scikit-learn's nDCG@``ndcg_k`` with relevance the accuracy's percentile rank among the
    evaluated cells (0 the worst, 1 the best; accuracy in percent as the gain would score every
    ranking above 0.97, the good cells being within a few points)."""
    from sklearn.metrics import ndcg_score

    from xigsnr_naslib.analysis.metrics import kendall_tau, precision_at_top, spearman_rho

    s, a = np.asarray(predicted, dtype=float), np.asarray(accuracy, dtype=float)
    relevance = (pd.Series(a).rank(method="average").to_numpy() - 1) / max(len(a) - 1, 1)
    return {"n": int(len(a)), "tau": kendall_tau(s, a), "rho": spearman_rho(s, a),
            f"ndcg@{ndcg_k}": float(ndcg_score(relevance[None, :], s[None, :], k=ndcg_k)) if len(a) > 1 else math.nan,
            "p_at_top5%": precision_at_top(s, a, 0.05), "p_at_top10%": precision_at_top(s, a, 0.10)}


def draw_split(n_cells: int, n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint seeded positions: a permutation of ``range(n_cells)`` by ``default_rng(seed)``,
    the first ``n_train`` for training and the last ``n_test`` for testing (so that the test
    cells of one seed are the same whatever ``n_train`` is)."""
    for name, value, least in (("n_train", n_train, 2), ("n_test", n_test, 2)):
        if isinstance(value, bool) or int(value) != value or value < least:
            raise UsageError(f"{name} must be a whole number >= {least}, got {value!r}")
    if n_train + n_test > n_cells:
        raise UsageError(f"{n_train} training + {n_test} test cells exceed the {n_cells} cells available")
    order = np.random.default_rng(seed).permutation(n_cells)
    return np.sort(order[:n_train]), np.sort(order[n_cells - n_test:])


def evaluate_split(predictor: ZeroCostPredictor, archs: Sequence[Hashable], accuracy, train, test) -> dict:
    """Fit a clone of ``predictor`` on ``archs[train]`` and score its predictions on ``archs[test]``.

    Only the training cells' accuracies reach the model; ``accuracy[test]`` is read after the
    predictions exist, to compute the metrics. Returns the metrics, the fit and predict
    seconds, and ``predicted`` (the test predictions).
    """
    acc = np.asarray(accuracy, dtype=float)
    train, test = np.asarray(train, dtype=int), np.asarray(test, dtype=int)
    if np.intersect1d(train, test).size:
        raise UsageError("training and test cells overlap")
    archs = list(archs)
    model = clone(predictor)
    started = time.perf_counter()
    model.fit([archs[i] for i in train], acc[train].copy())
    fitted = time.perf_counter()
    predicted = model.predict([archs[i] for i in test])
    done = time.perf_counter()
    return {**ranking_metrics(predicted, acc[test]), "fit_seconds": fitted - started,
            "predict_seconds": done - fitted, "predicted": predicted, "model": model}


def graph_feature_count(space: str) -> int:
    """How many graph features ``space`` has."""
    return len(graph_feature_names(space))
