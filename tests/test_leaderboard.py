"""The leaderboard: one architecture set for every source, seeded samples, resume, outputs."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from xigsnr_naslib.benchmarks.card import UnknownChoiceError, get_card
from xigsnr_naslib.errors import UsageError
from xigsnr_naslib.cli.app import main
from xigsnr_naslib.data.datasets import load_images
from xigsnr_naslib.analysis.leaderboard import Bootstrap, LeaderboardSettings, build_leaderboard
from xigsnr_naslib.analysis.metrics import kendall_tau, ndcg_at_k, standard_metrics
from xigsnr_naslib.analysis.score_tables import TABLE_FORMATS, ProxyTableWarning
from xigsnr_naslib.benchmarks.nb201.space import from_naslib_key as naslib_nb201_key_to_arch
from xigsnr_naslib.data.protocol import Protocol, draw_batches
from xigsnr_naslib.proxies import Proxy, get_proxy
from xigsnr_naslib.registry import registered
from xigsnr_naslib.benchmarks import create_space
from xigsnr_naslib.scoring.study import Study, build_model

TINY = Protocol(n_batches=2, batch_size=8, data_seed=1, init_seed=1)
FEW_METRICS = standard_metrics(naslib_ks=(3,), ndcg_ks=(3,))


def _study(data_root, proxies, **kwargs):
    """The NAS-Bench-201 CIFAR-10 study computing exactly ``proxies`` ([] for none)."""
    study = Study("nb201", "cifar10", proxies, data_root=data_root, **kwargs)
    assert [p.name for p in study.proxies] == list(proxies), "a study computes the proxies asked for, [] for none"
    return study


@pytest.fixture(scope="module")
def truth(data_root):
    return pd.read_csv(data_root / "nb201" / "nb201_groundtruth_all15625.csv").set_index("arch_str")


def _zc_json(path, keys, truth, *, nan_key=None):
    """A NASLib zc_nasbench201.json with two proxies for ``keys``: one follows accuracy, one is noise."""
    rng = np.random.default_rng(0)
    entries = {}
    for key in keys:
        try:
            acc = float(truth.at[naslib_nb201_key_to_arch(key), "cifar10_ori_test"])
        except (ValueError, KeyError):
            acc = 50.0
        entries[key] = {"id": len(entries), "val_accuracy": acc - 3.0,
                        "oracle": {"score": acc, "time": 0.0},
                        "noise": {"score": float(rng.normal()), "time": 0.0}}
    if nan_key is not None:
        entries[nan_key]["noise"]["score"] = float("nan")
    path.write_text(json.dumps({"cifar10": entries}))
    return path


KEYS = ["(0, 1, 2, 3, 4, 0)", "(2, 2, 2, 2, 2, 2)", "(3, 3, 3, 3, 3, 3)", "(4, 0, 3, 1, 4, 3)", "(2, 0, 2, 0, 2, 0)",
        "(1, 2, 0, 3, 2, 4)", "(2, 3, 2, 3, 2, 3)", "(0, 2, 2, 0, 3, 2)", "(2, 4, 0, 0, 3, 2)", "(3, 2, 3, 2, 0, 4)"]


@pytest.mark.slow  # a leaderboard run and its resume (about 2 s)
def test_one_set_for_every_source_and_resume(data_root, truth, tmp_path):
    zc = _zc_json(tmp_path / "zc_nasbench201.json", KEYS + ["(9, 9, 9, 9, 9, 9)"], truth, nan_key=KEYS[1])
    store = tmp_path / "scores.jsonl"
    logged = []
    settings = LeaderboardSettings(tables=[], zc_json=[zc], sample=None, bootstrap=Bootstrap(n_boot=50),
                                   metrics=FEW_METRICS)
    with pytest.warns(ProxyTableWarning):
        board = build_leaderboard(_study(data_root, ["params"], store=store), settings, log=logged.append)
    expected = {naslib_nb201_key_to_arch(k) for k in KEYS} - {naslib_nb201_key_to_arch(KEYS[1])}
    assert set(board.scores["arch"]) == expected and board.n_archs == 9
    # the index is the benchmark index of each architecture
    for index, arch in board.scores["arch"].items():
        assert truth.at[arch, "nb201_index"] == index
    assert list(board.proxies) == ["params", "zc_nasbench201.oracle", "zc_nasbench201.noise"]
    assert board.proxies["params"] == ("params", "computed")
    assert set(board.targets) == {"test_accuracy", "naslib_val"}
    # a proxy equal to the target ranks perfectly against it; metrics agree with the functions
    test = board.metrics["test_accuracy"]
    assert test.at["zc_nasbench201.oracle", "kendall_tau"] == 1.0
    assert board.metrics["naslib_val"].at["zc_nasbench201.oracle", "kendall_tau"] == 1.0
    noise = board.scores["zc_nasbench201.noise"]
    assert test.at["zc_nasbench201.noise", "kendall_tau"] == pytest.approx(kendall_tau(noise, board.scores["test_accuracy"]))
    assert test.at["zc_nasbench201.noise", "ndcg@3"] == pytest.approx(ndcg_at_k(noise, board.scores["test_accuracy"], 3))
    assert test.at["params", "n"] == 9
    # what left the set is said, and the set's size is printed
    notes = "\n".join(board.notes)
    assert "proxy noise: 1 NaN" in notes and "(9, 9, 9, 9, 9, 9)" in notes
    assert any("final set: 9 architectures" in line for line in logged)
    # computed params are the networks' parameter counts
    space = create_space("nb201")
    arch = board.scores["arch"].iloc[0]
    assert board.scores["params"].iloc[0] == sum(p.numel() for p in space.build(arch).parameters())
    # a rerun reuses the stored scores: nothing is recomputed, the numbers are the same
    lines = store.read_text().count("\n")
    assert lines == 9
    assert board.settings["results"] == str(store) and board.settings["computed"] == ["params"]
    with pytest.warns(ProxyTableWarning):
        again = build_leaderboard(_study(data_root, ["params"], store=store), settings, log=logged.append)
    assert store.read_text().count("\n") == lines
    pd.testing.assert_frame_equal(again.metrics["test_accuracy"], test)


@pytest.mark.slow  # reads the precomputed tables for five leaderboards
def test_seeded_sample_of_the_intersection(data_root):
    def board(**kwargs):
        settings = LeaderboardSettings(bootstrap=Bootstrap(n_boot=0), metrics=FEW_METRICS, **kwargs)
        return build_leaderboard(_study(data_root, []), settings, log=lambda s: None)

    _study(data_root, [])  # no computed proxy: the tables alone

    with pytest.warns(ProxyTableWarning):
        a = board(sample=25, seed=3)
        b = board(sample=25, seed=3)
        c = board(sample=25, seed=4)
    assert list(a.scores.index) == list(b.scores.index) != list(c.scores.index)
    assert a.n_archs == 25 and a.settings["n_candidates"] == 9444         # Suite-Zero's 9,445 less NASWOT's NaN
    assert set(a.settings["tables"]) == {"suitezero", "naswot"}
    assert np.isfinite(a.scores.drop(columns="arch").to_numpy()).all()
    assert len(a.metrics["test_accuracy"]) == 14 and "naswot.naswot" in a.proxies
    assert a.settings["computed"] == [] and not any(source == "computed" for _, source in a.proxies.values())
    with pytest.warns(ProxyTableWarning), pytest.raises(ValueError, match="only 9,444 are in every source"):
        board(sample=10_000)
    with pytest.raises(UnknownChoiceError, match="unknown precomputed table 'nope'") as error:
        board(tables=["nope"])
    assert "nb201/cifar10" in str(error.value) and "choose one of: suitezero, naswot, naslib_subset" in str(error.value)
    with pytest.warns(ProxyTableWarning), pytest.raises(UsageError, match="cannot exclude 'suitezero.nope'"):
        board(tables=["naswot"], exclude=["suitezero.nope"])
    # the tables come from the card, each in a format the readers know
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        tables = get_card("nb201").dataset(dataset).score_tables
        assert tables and all(spec.format in TABLE_FORMATS for spec in tables.values()), dataset
    assert {n for n, spec in get_card("nb201").dataset("cifar10").score_tables.items() if spec.default} == \
        {"suitezero", "naswot"}


def test_leaderboard_settings_are_checked_at_the_door_and_leave_the_callers_lists_alone():
    import dataclasses

    exclude, indices = ["xi_gsnr"], [3, 1]
    settings = LeaderboardSettings(exclude=exclude, indices=indices, sample=np.int64(4))
    exclude.append("zico")
    indices.clear()
    assert settings.exclude == ("xi_gsnr",) and settings.indices == (3, 1) and settings.tables is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sample = 3
    for bad, message in [({"sample": 0}, "sample must be a whole number >= 1 or None, got 0"),
                         ({"sample": 2.5}, "got 2.5"), ({"seed": -1}, "seed must be a whole number >= 0, got -1"),
                         ({"exclude": "xi_gsnr"}, "write exclude=['xi_gsnr']"),
                         ({"zc_json": "zc.json"}, "zc_json must be a sequence")]:
        with pytest.raises(ValueError) as error:
            LeaderboardSettings(**bad)
        assert message in str(error.value), (bad, str(error.value))
    with pytest.raises(TypeError, match="bootstrap must be a Bootstrap, got int"):
        LeaderboardSettings(bootstrap=100)
    with pytest.raises(TypeError, match="settings must be a LeaderboardSettings, got dict"):
        build_leaderboard(None, {"sample": 3})


def test_a_failed_computed_score_removes_the_architecture_for_everyone(data_root, truth, tmp_path):
    def small_nets_fail(results):
        n = sum(p.numel() for p in results.model.parameters())
        return float("nan") if n < 300_000 else float(n)

    with registered(Proxy("fails_on_small", small_nets_fail, needs_data=False)):
        zc = _zc_json(tmp_path / "zc.json", KEYS, truth)
        settings = LeaderboardSettings(tables=[], zc_json=[zc], sample=None, bootstrap=Bootstrap(n_boot=0),
                                       metrics=FEW_METRICS)
        board = build_leaderboard(_study(data_root, ["params", "fails_on_small"]), settings, log=lambda s: None)
        assert (board.scores["params"] >= 300_000).all() and 0 < board.n_archs < len(KEYS)
        assert math.isfinite(board.metrics["test_accuracy"].at["zc.oracle", "kendall_tau"])
        note = next(n for n in board.notes if n.startswith("fails_on_small"))
        assert f"{len(KEYS) - board.n_archs} selected architecture(s)" in note and "(nonfinite)" in note


@pytest.mark.slow  # scores six architectures and draws the figures
def test_xi_gsnr_scores_match_direct_scoring_and_figures(data_root, truth, tmp_path, one_torch_thread):
    # the direct call runs at the study's thread count (DEFAULT_THREADS, 1): the same float32
    # reductions in the same order, so the two agree to rounding of the float64 sum. At another
    # thread count a reduction is split differently: 1.9e-4 relative at 2 threads against 1,
    # measured on an AMD EPYC (AVX2) for this 2 x 8 protocol
    pytest.importorskip("matplotlib")
    zc = _zc_json(tmp_path / "zc.json", KEYS[:6], truth)
    settings = LeaderboardSettings(tables=[], zc_json=[zc], sample=None, bootstrap=Bootstrap(n_boot=30),
                                   metrics=FEW_METRICS)
    board = build_leaderboard(_study(data_root, ["xi_gsnr"], protocol=TINY), settings, log=lambda s: None)
    assert board.settings["protocol"] == TINY.settings()
    index = board.scores.index[0]
    space = create_space("nb201")
    batches = draw_batches(load_images("cifar10", data_root), TINY, "cifar10")
    model = build_model(space, space.decode(board.scores.at[index, "arch"]), 10, TINY.init_seed)
    direct = get_proxy("xi_gsnr")(model, batches)
    assert board.scores.at[index, "xi_gsnr"] == pytest.approx(direct, rel=1e-9)
    written = board.write(tmp_path / "out")
    from matplotlib.image import imread

    for name in ("bars_test_accuracy", "bars_naslib_val", "scatter_xi_gsnr"):
        image = imread(written[name])
        assert image.shape[0] > 300 and image.shape[1] > 600 and image[..., :3].std() > 0.05
    markdown = written["markdown"].read_text()
    assert "![scatter_xi_gsnr](scatter_xi_gsnr.png)" in markdown
    csv = pd.read_csv(written["csv"])
    assert set(csv["target"]) == {"test_accuracy", "naslib_val"} and len(csv) == 2 * 3
    assert {"kendall_tau_low", "kendall_tau_high", "ndcg@3_low"} <= set(csv.columns)
    assert pd.read_csv(written["scores"], index_col=0).shape[0] == board.n_archs
    # the protocol line names the batches and the seeds the scores were computed with
    protocol_line = next(line for line in markdown.splitlines() if line.startswith("Computed proxies:"))
    assert "xi_gsnr, with 2 batches of 8 training images" in protocol_line
    assert "None" not in protocol_line, protocol_line


def _markdown_rows(markdown: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return header, rows


@pytest.mark.slow  # the whole command: tables, bootstrap, figures
def test_cli_writes_the_leaderboard_with_the_best_in_bold(data_root, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "board"
    args = ["leaderboard", "--sample", "40", "--sample-seed", "1", "--data-seed", "3", "--init-seed", "4",
            "--proxy", "params", "--table", "naswot",
            "--table", "suitezero", "--exclude", "suitezero.params", "--n-boot", "40", "--out", str(out),
            "--data-root", str(data_root), "--no-progress"]
    with pytest.warns(ProxyTableWarning):
        assert main(args) == 0
    printed = capsys.readouterr().out
    assert "candidates (a finite value in every source): 9,444 architectures" in printed
    for name in ("leaderboard.md", "leaderboard.csv", "scores.csv", "run.json", "scores.jsonl",
                 "bars_test_accuracy.png", "bars_naslib_val.png"):
        assert (out / name).exists(), name
    markdown = (out / "leaderboard.md").read_text()
    header, rows = _markdown_rows(markdown, "| # | proxy (source)")
    assert len(rows) == 14 and "params (computed)" in [r[1] for r in rows]
    assert "params (suitezero)" not in [r[1] for r in rows]
    tau = [float(r[header.index("Kendall τ [CI]")].split()[0].strip("*")) for r in rows]
    assert tau == sorted(tau, reverse=True)
    # rank marks: "=k" for a tie with the row above at 3 decimals, "≈" where the row's tau
    # interval overlaps the leader's; checked against the intervals of leaderboard.csv
    summary = pd.read_csv(out / "leaderboard.csv")
    test_rows = summary[summary["target"] == "test_accuracy"].reset_index(drop=True)
    lead_low, lead_high = test_rows.at[0, "kendall_tau_low"], test_rows.at[0, "kendall_tau_high"]
    for i, r in enumerate(rows):
        tied = i > 0 and tau[i] == tau[i - 1]
        assert r[0].startswith("=") == tied, r
        overlaps = i > 0 and test_rows.at[i, "kendall_tau_high"] >= lead_low and test_rows.at[i, "kendall_tau_low"] <= lead_high
        assert r[0].endswith("≈") == overlaps, (r, test_rows.loc[i].to_dict())
    assert any(r[0].endswith("≈") for r in rows)  # 40 architectures: wide intervals, some overlap
    assert rows[0][header.index("Kendall τ [CI]")].startswith("**")
    for column in ("Pearson r", "nDCG@10", "p_at_top10"):
        cells = [r[header.index(column)] for r in rows]
        values = [float(c.strip("*")) for c in cells]
        assert len(set(values)) > 1
        assert all(c.startswith("**") == (round(v, 3) == round(max(values), 3)) for c, v in zip(cells, values))
    # the computed parameter counts are Suite-Zero's (in millions), architecture by architecture
    scores = pd.read_csv(out / "scores.csv", index_col=0)
    assert not {"test_accuracy", "naslib_val"} & set(scores.columns)  # ground truth stays in the data root
    suitezero = pd.read_csv(data_root / "nb201" / "suitezero_cifar10_9445.csv").set_index("nb201_index")
    assert ((suitezero.loc[scores.index, "params"] * 1e6).round().to_numpy() == scores["params"].to_numpy()).all()
    run = json.loads((out / "run.json").read_text())
    assert run["n_architectures"] == 40 and run["settings"]["seed"] == 1
    assert (run["settings"]["protocol"]["data_seed"], run["settings"]["protocol"]["init_seed"]) == (3, 4)
    assert run["settings"]["computed"] == ["params"] and run["settings"]["results"] == str(out / "scores.jsonl")
    # bad requests are clear errors
    with pytest.warns(ProxyTableWarning):
        assert main(["leaderboard", "--exclude", "nope", "--proxy", "params", "--table", "naswot", "--out", str(out),
                     "--data-root", str(data_root)]) == 2
    assert "cannot exclude 'nope'" in capsys.readouterr().err
    for gone in ("--seed", "--protocol-seed"):  # now --sample-seed, and --data-seed / --init-seed
        with pytest.raises(SystemExit):
            main(["leaderboard", gone, "1", "--proxy", "params", "--out", str(out), "--data-root", str(data_root)])
        assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.slow  # a fresh interpreter importing torch and the package
def test_importing_the_leaderboard_leaves_the_package_correlate_function_alone():
    import subprocess
    import sys

    code = ("import xigsnr_naslib, xigsnr_naslib.analysis.leaderboard, xigsnr_naslib.cli.app as cli; "
            "cli.build_parser(); assert callable(xigsnr_naslib.correlate), type(xigsnr_naslib.correlate)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow  # ten architectures through the command, twice (about 10 s)
def test_archs_file_and_a_proxy_the_space_does_not_suit(data_root, tmp_path, capsys):
    def only_large(results):  # not computable on most NB201 cells: the proxy leaves, the cells stay
        from xigsnr_naslib.passes import NotComputable
        n = sum(p.numel() for p in results.model.parameters())
        if n < 1_000_000:
            raise NotComputable(f"{n} parameters: too few")
        return float(n)

    with registered(Proxy("only_large", only_large, needs_data=False)):
        wanted = [8, 25, 60, 65, 68, 73, 99, 120, 131, 2]
        listing = tmp_path / "indices.txt"
        listing.write_text("8, 25 60\n65 68 73 99\n120\n131\n2\n")
        out = tmp_path / "board"
        assert main(["leaderboard", "--archs-file", str(listing), "--proxy", "params", "--proxy", "only_large",
                     "--table", "none", "--n-boot", "0", "--no-figures", "--out", str(out), "--data-root", str(data_root),
                     "--no-progress"]) == 0
        printed = capsys.readouterr().out
        scores = pd.read_csv(out / "scores.csv", index_col=0)
        assert sorted(scores.index) == sorted(wanted) and "only_large" not in scores.columns
        run = json.loads((out / "run.json").read_text())
        assert run["settings"]["indices"] and run["settings"]["new_records"] == 2 * len(wanted)
        assert run["settings"]["machine"].startswith(tuple("abcdefghijklmnopqrstuvwxyz_"))  # platform.machine()
        markdown = (out / "leaderboard.md").read_text()
        assert "the requested indices" in markdown and "Built on " in markdown
        assert "only_large: no finite score for" in markdown and "too few" in markdown and "it leaves the leaderboard" in printed
        # a bad file is one line naming it; an unknown index names the index and the valid range
        listing.write_text("8, x\n")
        assert main(["leaderboard", "--archs-file", str(listing), "--proxy", "params", "--table", "none",
                     "--out", str(out), "--data-root", str(data_root)]) != 0
        err = capsys.readouterr().err
        assert "indices.txt" in err and "'x'" in err and len(err.strip().splitlines()) == 1
        listing.write_text("8 99999\n")
        assert main(["leaderboard", "--archs-file", str(listing), "--proxy", "params", "--table", "none",
                     "--out", str(out), "--data-root", str(data_root)]) != 0
        err = capsys.readouterr().err
        assert "99999" in err and "0..15624" in err and len(err.strip().splitlines()) == 1


def test_default_proxies_follow_the_card_and_leave_out_what_the_protocol_cannot_give():
    from xigsnr_naslib.analysis.leaderboard import default_proxies, default_proxies_for
    nb101 = get_card("nb101").dataset("cifar10")          # released protocol: one batch of 8
    names, notes = default_proxies_for(nb101, nb101.protocol)
    assert names[0] == "xi_gsnr_per_sample"                # the card's own proxy comes first
    # one cumulative gradient sample has no variance; SWAP reads 16 images of a batch
    left = {n.split()[0] for n in notes}
    assert {"xi_gsnr", "xi_gsnr_paper", "zico", "swap"} <= left and not left & set(names)
    assert set(names) | left == set(default_proxies()) | {"xi_gsnr_per_sample"}
    nb201 = get_card("nb201").dataset("cifar10")
    names, notes = default_proxies_for(nb201, nb201.protocol)
    assert names == default_proxies() and notes == []


#: column names under which a table would carry a benchmark's accuracies (its ground truth)
_ACCURACY_COLUMNS = {"accuracy", "test_accuracy", "val_accuracy", "naslib_val", "naslib_test", "valid_accuracy"}


def test_the_committed_score_tables_carry_no_ground_truth():
    """The boards, the ensemble's scores and the whole-space table hold scores only: the
    accuracies they were ranked against stay in the data root (join them by benchmark index)."""
    from pathlib import Path

    evaluation = Path(__file__).resolve().parents[1] / "evaluation"
    tables = sorted(evaluation.rglob("*.csv")) + sorted(evaluation.rglob("*.csv.gz"))
    scores = [t for t in tables if t.name.startswith("scores.csv")]
    assert len(scores) >= 6, [str(t) for t in scores]  # four boards, the ensemble, the whole space
    for table in scores:
        header = set(pd.read_csv(table, nrows=0).columns)
        assert not header & _ACCURACY_COLUMNS, f"{table} carries {sorted(header & _ACCURACY_COLUMNS)}"
