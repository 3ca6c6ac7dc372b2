"""The whole-space job (evaluation/whole_space): its shard grid, the chunks that carry its store
between machines, its NASLib zero-cost file (read back by the project's reader), and the
replay of the authors' search protocol. Quick: no network is scored (records are made up)."""
import gzip
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "evaluation" / "whole_space"))

import job  # noqa: E402
import report  # noqa: E402

# NAS-Bench-201 string: edges 0->1 | 0->2 1->2 | 0->3 1->3 2->3; NASLib's op-index tuple: edges
# (1,2) (1,3) (1,4) (2,3) (2,4) (3,4) of nodes 1..4, ops skip, none, conv3, conv1, pool (data README)
NASLIB_OPS = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]


def naslib_key(arch: str) -> str:
    """An independent NB201 string -> NASLib key (the data README's mapping)."""
    ops = [token.split("~")[0] for token in arch.strip("|").replace("|+|", "|").split("|")]
    e01, e02, e12, e03, e13, e23 = ops
    return str(tuple(NASLIB_OPS.index(o) for o in (e01, e02, e03, e12, e13, e23)))


def record(index, proxy, status="ok", score=1.0):
    r = {"space": "nb201", "space_options": {}, "dataset": "cifar10", "images": "img", "index": index,
         "arch": f"arch{index}", "proxy": proxy, "settings": {}, "protocol": {"n_batches": 8}, "status": status,
         "score": score if status == "ok" else None, "seconds": 0.5}
    if status == "error":
        r["error"] = "worker process died (exit code -9)"
    return r


def test_the_shard_grid_is_the_same_for_every_run():
    assert job.shards(0, 15625, 200)[-1] == (15600, 15625)
    assert job.shards(400, 1000, 200) == [(400, 600), (600, 800), (800, 1000)]
    assert job.shard_of(15610, 200) == (15600, 15625) and job.shard_of(399, 200) == (200, 400)
    with pytest.raises(ValueError, match="multiples of the shard size 200.*got 250"):
        job.shards(0, 250, 200)
    with pytest.raises(ValueError, match="0 <= start < stop <= 15625"):
        job.shards(0, 16000, 200)


def test_chunks_carry_a_store_to_another_machine_and_a_rerun_adds_nothing(tmp_path):
    names = ["a", "b"]
    here, there = job.Layout(tmp_path / "here"), job.Layout(tmp_path / "there")
    store = here.shard_store(0, 4)
    records = [record(i, p) for i in range(4) for p in names if (i, p) != (3, "b")] + [record(3, "b", "error")]
    job.atomic_write(store, records, compress=False)
    assert job.shard_progress(records, 0, 4, names) == (3, 1)
    # incomplete shard: a partial chunk, without the error record (a failure is not a fact)
    partial = job.export_shard(here, 0, 4, complete=False)
    assert partial.name == "nb201_cifar10_00000-00004.partial.jsonl.gz"
    assert len(job.read_jsonl(partial)) == 7 and not list(partial.parent.glob("*.tmp"))
    # another machine loads the chunk, then the error is scored again and the shard completes
    (there.chunks).mkdir(parents=True)
    (there.chunks / partial.name).write_bytes(partial.read_bytes())
    assert job.import_chunks(there, 4) == 7 and job.import_chunks(there, 4) == 0
    moved = there.shard_store(0, 4)
    job.merge_into_store(moved, [record(3, "b")])
    assert job.shard_progress(job.read_jsonl(moved), 0, 4, names) == (4, 0)
    complete = job.export_shard(there, 0, 4, complete=True)
    assert not there.chunk(0, 4, partial=True).exists()  # the complete chunk replaced it
    assert complete.name == "nb201_cifar10_00000-00004.jsonl.gz"
    first = complete.read_bytes()
    job.export_shard(there, 0, 4, complete=True)
    assert complete.read_bytes() == first  # sorted records, gzip without a time stamp: same bytes
    # a run cut on another grid finds the records under its own shard
    assert job.import_chunks(job.Layout(tmp_path / "there"), 2) == 8
    assert len(job.read_jsonl(there.shard_store(2, 4))) == 4


def test_an_error_record_gives_way_to_a_computed_one_and_is_dropped_for_a_retry(tmp_path):
    path = tmp_path / "s.jsonl"
    job.atomic_write(path, [record(0, "a", "error"), record(1, "a")], compress=False)
    assert job.merge_into_store(path, [record(0, "a", "ok", 2.0), record(1, "a", "ok", 9.0)]) == 1
    assert {r["index"]: r["score"] for r in job.read_jsonl(path)} == {0: 2.0, 1: 1.0}
    job.atomic_write(path, [record(0, "a", "error"), record(1, "a")], compress=False)
    assert job.drop_errors(path) == 1 and [r["index"] for r in job.read_jsonl(path)] == [1]


def test_status_report_and_crosscheck_read_one_record_per_cell_by_the_same_rule(tmp_path, monkeypatch):
    layout = job.Layout(tmp_path)
    monkeypatch.setattr(job, "proxy_names", lambda: ["a", "b"])
    # a chunk with cells 0, 1 (b of cell 1 missing); the store: an error for (1, b) and (2, a),
    # a later score of (0, a) that must not replace the chunk's, and (1, b) computed after its error
    job.atomic_write(layout.chunk(0, 200, partial=True), [record(0, "a"), record(0, "b"), record(1, "a")], True)
    job.atomic_write(layout.shard_store(0, 200), [record(1, "b", "error"), record(2, "a", "error"),
                                                 record(0, "a", "ok", 7.0), record(1, "b", "ok", 3.0)], False)
    paths = [layout.chunk(0, 200, partial=True), layout.shard_store(0, 200)]
    seen = []
    best = job.cell_records(paths, lambda path, r: seen.append(path))
    assert len(seen) == 7 and {k: (r["status"], r["score"]) for k, r in best.items()} == {
        (0, "a"): ("ok", 1.0), (0, "b"): ("ok", 1.0), (1, "a"): ("ok", 1.0), (1, "b"): ("ok", 3.0),
        (2, "a"): ("error", None)}
    assert set(job.chunk_records(layout)) == {(0, "a"), (0, "b"), (1, "a")}  # the chunks alone, no error
    text = job.status(layout)
    assert text.startswith("2 of 15625 cells done") and "1 error records waiting for a retry" in text
    assert "0-200      2/200 cells  (partial chunk + store" in text
    long = report.load_long(layout).set_index(["index", "proxy"])
    assert long.loc[(1, "b"), "score"] == 3.0 and long.loc[(0, "a"), "score"] == 1.0
    assert long.loc[(2, "a"), "status"] == "error" and math.isnan(long.loc[(2, "a"), "score"])


@pytest.fixture(scope="module")
def truth(data_root):
    from xigsnr_naslib.benchmarks.card import get_card

    return get_card("nb201").load_ground_truth("cifar10", str(data_root))


def test_the_zc_json_round_trips_through_the_projects_reader(tmp_path, truth):
    from xigsnr_naslib.analysis.score_tables import NASLIB_FAILED, read_zc_json

    names = ["xi_gsnr", "meco"]
    cells = truth.index[[5, 50, 500, 5000, 15000]]
    table = pd.DataFrame({"arch": truth.arch[cells], "xi_gsnr": [1.5e6, 2.25, 3.0, math.nan, 7.0],
                          "meco": [0.1, 0.2, 0.3, 0.4, 0.5]}, index=cells)
    table["status"] = ["scored", "scored", "scored", "scored", "partial"]
    long = pd.DataFrame([(i, n, 1.25) for i in cells for n in names], columns=["index", "proxy", "seconds"])
    validation = truth.accuracy - 3.5  # stands in for the validation accuracy (copied, never computed)
    path = tmp_path / "zc_nasbench201.json.gz"
    assert report.write_zc_json(table, long, validation, truth.accuracy, names, path) == 4
    raw = json.loads(gzip.decompress(path.read_bytes()))
    assert list(raw) == ["cifar10"]
    key = naslib_key(truth.arch[cells[0]])
    assert raw["cifar10"][key] == {"xi_gsnr": {"score": 1.5e6, "time": 1.25}, "meco": {"score": 0.1, "time": 1.25},
                                   "val_accuracy": float(validation[cells[0]]),
                                   "test_accuracy": float(truth.accuracy[cells[0]])}
    assert raw["cifar10"][naslib_key(truth.arch[cells[3]])]["xi_gsnr"]["score"] == NASLIB_FAILED
    with pytest.warns(UserWarning):
        back = read_zc_json(path)
    assert back.name == "zc_nasbench201" and sorted(back.proxies) == sorted(names)
    expected = table[table.status == "scored"].set_index("arch")
    got = back.scores.loc[expected.index]
    assert np.array_equal(got.meco.to_numpy(), expected.meco.to_numpy())
    assert got.xi_gsnr.iloc[3] == NASLIB_FAILED and np.array_equal(got.xi_gsnr.iloc[:3], expected.xi_gsnr.iloc[:3])
    assert np.array_equal(back.targets.loc[expected.index, "naslib_test"], truth.accuracy[cells[:4]].to_numpy())


def test_the_wide_table_says_what_is_scored_partly_or_not_and_what_is_not_computable(truth):
    long = pd.DataFrame([(0, "a", truth.arch[0], "ok", 1.0, 0.1),
                         (0, "b", truth.arch[0], "not computable", math.nan, 0.1),
                         (1, "a", truth.arch[1], "ok", 2.0, 0.1), (2, "a", truth.arch[2], "error", math.nan, None)],
                        columns=["index", "proxy", "arch", "status", "score", "seconds"])
    table = report.wide_table(long, truth, ["a", "b"])
    assert len(table) == 15625
    assert list(table.status[:4]) == ["scored", "partial", "not scored", "not scored"]
    assert table.not_computable[0] == "b" and table.a[1] == 2.0 and math.isnan(table.b[0])


def authors_loop(metric, accs, n_runs=500, n_samples=100):
    """The authors' gradnoise_search_201.py loop, as written there (global NumPy generator)."""
    np.random.seed(1)
    chosen = []
    for _ in range(n_runs):
        indices = np.random.randint(0, 15625, n_samples)
        scores = [metric[uid] for uid in indices]
        chosen.append(accs[indices[np.nanargmax(scores)]])
    return np.mean(chosen), np.std(chosen)


def test_the_report_says_so_far_until_every_cell_is_scored_and_then_speaks_of_the_whole_space(truth):
    """While the job runs, the report names its prefix and says its cells are not a uniform sample;
    once all 15,625 are scored it says the figures are over the whole space, with no prefix left."""
    rng = np.random.default_rng(0)
    names = ["xi_gsnr", "xi_gsnr_paper", "ensemble", "meco", "swap"]
    table = pd.DataFrame({n: rng.normal(size=15625) for n in names}, index=truth.index)
    table["status"] = "scored"
    running = pd.DataFrame({"n_cells": [15625], "kendall_tau": [0.6], "authors_kendall_tau": [0.66]})
    done = report.report_markdown(table, truth, [], running, 15625, 15625, names, ([], 1.0, False))
    assert done.startswith("# NAS-Bench-201 CIFAR-10, the whole space\n")
    assert "Every cell is scored, so the figures below are over the whole space." in done
    assert "draw for draw" in done and "so far" not in done and "prefix" not in done
    assert "| xi_gsnr | 500 / 500 | 500 |" in done  # every run's 100 draws are scored: the script exactly
    table.loc[15624, "status"] = "not scored"
    running = pd.DataFrame({"n_cells": [15624], "kendall_tau": [0.6], "authors_kendall_tau": [math.nan]})
    partway = report.report_markdown(table, truth, [], running, 15624, 15624, names, ([], 1.0, False))
    assert partway.startswith("# NAS-Bench-201 CIFAR-10, the whole space (so far)\n")
    assert "the scored prefix is 15,624 cells" in partway and "not a uniform sample" in partway
    assert "Exact once every cell is scored" in partway and "draw for draw" not in partway


def test_published_figures_stand_beside_the_board_of_the_cells_they_were_measured_on():
    """The paper's xi-GSNR tau ranks all 15,625; VKDNW's reproductions rank NAS-Bench-Suite-Zero's
    9,445 (their released notebook): each stands beside that board only."""
    row = {"kendall_tau": 0.6, "kendall_tau_low": 0.5, "kendall_tau_high": 0.7, "spearman_rho": 0.8,
           "spearman_rho_low": 0.7, "spearman_rho_high": 0.9, "kendall_tau_last": 0.61, "p_at_top5%": 0.3,
           "not_computable": 1}
    frame = pd.DataFrame([row, row], index=["xi_gsnr", "flops"])
    boards = {key: report.board_markdown(key, frame, 10, key) for key in ("all", "non-isomorphic", "suitezero")}
    assert "published τ / ρ on all 15,625 cells" in boards["all"]
    assert "0.661 / 0.845 (xi-GSNR, the paper (Table 1))" in boards["all"] and "VKDNW" not in boards["all"]
    assert "published τ / ρ on NAS-Bench-Suite-Zero's 9,445 cells" in boards["suitezero"]
    assert "0.623 / 0.799 (FLOPs (VKDNW Table 1))" in boards["suitezero"] and "0.661" not in boards["suitezero"]
    assert "(none on these cells)" in boards["non-isomorphic"] and "0.6" not in boards["non-isomorphic"].split("|")[-2]
    assert {on for *_, on, _ in report.PUBLISHED} == set(report.PUBLISHED_ON)
    assert {t for *_, t in report.PUBLISHED} == set(report.TREATMENT)


def test_the_search_replay_is_the_authors_loop():
    rng = np.random.default_rng(3)
    scores, accs = rng.normal(size=15625), rng.uniform(80, 95, 15625)
    got = report.authors_search(scores, accs)
    mean, std = authors_loop(scores, accs)
    assert got["runs_choosing"] == got["runs_all_scored"] == 500
    assert got["mean"] == mean and got["std"] == std
    # NaN (not yet scored) is passed over by nanargmax, as in the authors' loop
    scores[::3] = np.nan
    assert report.authors_search(scores, accs)["mean"] == authors_loop(scores, accs)[0]


def test_the_authors_running_tau_is_read_from_their_log(tmp_path):
    log = tmp_path / "log"
    log.write_text("2022-10-28 22:55:07,033 args = Namespace(...)\n"
                   "2022-10-28 22:55:43,052 0 kendalltau = nan\n2022-10-28 22:55:43,053 0 spearmanr = nan\n"
                   "2022-10-28 22:55:43,987 1 kendalltau = 1.0\n2022-10-28 22:55:43,989 1 spearmanr = 0.99\n"
                   "2022-10-28 22:55:45,552 2 kendalltau = 0.33333333333333337\n")
    out = tmp_path / "tau.csv"
    report.extract_authors_log(log, out)
    frame = pd.read_csv(out)
    # stored with 10 significant digits: within 5e-11 of the logged value
    assert list(frame.n_cells) == [1, 2, 3] and frame.kendall_tau[2] == pytest.approx(1 / 3, abs=1e-10)
    assert math.isnan(frame.kendall_tau[0]) and math.isnan(frame.spearman_rho[2])


def test_the_crosscheck_measures_moves_and_status_changes_cell_by_cell():
    committed = {(0, "a"): record(0, "a", score=2.0), (1, "a"): record(1, "a", score=-4.0),
                 (2, "a"): record(2, "a", "not computable"), (3, "a"): record(3, "a", score=1.0)}
    new = [record(0, "a", score=2.0), record(1, "a", score=-4.004), record(2, "a", score=1.0),
           record(3, "a", score=1.01), record(9, "a", score=5.0), record(3, "a", "error")]
    (row,) = job.compare(committed, new, ["a"])
    # cells 0, 1, 3 compared by score (9 is not committed, the error record is no score);
    # cell 2's status differs; moves 0, 1e-3 (within 2e-3) and 0.01/1.01 (beyond)
    assert (row["cells"], row["status_differs"], row["beyond_bound"], row["bound"]) == (4, 1, 1, 2e-3)
    assert row["median_move"] == pytest.approx(0.004 / 4.004) and row["max_move"] == pytest.approx(0.01 / 1.01)
    assert row["tau"] == pytest.approx(1.0)


@pytest.mark.slow  # two NB201 cells with all 19 proxies at 8 x 64 (about 20 s on a core)
def test_a_crosscheck_on_this_cpu_reproduces_committed_cells_within_the_cross_machine_bound(tmp_path, data_root):
    """Committed records were computed on another machine, or another session of this one: scored
    again here, every proxy's score stays within float32 rounding of them (job.bound: the moves
    measured across kernel sets and CPUs, with their margins, are written beside it)."""
    layout = job.Layout(tmp_path)
    layout.chunks.mkdir()
    chunk = REPO / "evaluation" / "whole_space" / "chunks" / "nb201_cifar10_00200-00400.jsonl.gz"
    (layout.chunks / chunk.name).write_bytes(chunk.read_bytes())
    path, rows = job.crosscheck(layout, job.RunSettings(workers=0, data_root=str(data_root)), cells=2, seed=3)
    assert {r["proxy"] for r in rows} == set(job.proxy_names()) and all(r["cells"] == 2 for r in rows)
    assert all(r["status_differs"] == 0 and r["beyond_bound"] == 0 for r in rows), rows
    assert "2 cells scored on `cpu`" in path.read_text()


def test_one_run_per_folder_and_bad_values_are_one_line_before_anything_is_read(tmp_path, capsys):
    layout = job.Layout(tmp_path)
    with job.exclusive(layout):
        with pytest.raises(ValueError, match="another run of the job holds .*job.lock"):
            with job.exclusive(layout):
                pass
        assert job.main(["import", "--root", str(tmp_path)]) == 2  # an import would rewrite the stores too
    with job.exclusive(layout):  # released by the block's end
        pass
    for argv, named in ((["run", "--start", "250"], "got 250"), (["run", "--device", "gpu"], "unknown device 'gpu'"),
                        (["crosscheck", "--cells", "0"], "got 0"), (["status", "--shard-size", "0"], "got 0")):
        capsys.readouterr()
        assert job.main([*argv, "--root", str(tmp_path)]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and named in err, (argv, err)
    assert job.main(["crosscheck", "--root", str(tmp_path)]) == 1  # no chunk to compare with: missing data
    for command in ("status", "export", "import"):  # a wrong --root is named, not reported as 0 cells done
        capsys.readouterr()
        assert job.main([command, "--root", str(tmp_path / "nowhere")]) == 1
        assert "is not the job's folder" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "chunks").exists() and not list((tmp_path / "store").glob("*.jsonl"))


def test_a_stopped_shard_still_logs_its_time_and_exports_what_it_scored(tmp_path, monkeypatch):
    """`kill` (SIGTERM, turned into SystemExit) or Ctrl-C mid-shard: the shard's line says
    interrupted, with the records and wall time it had, and its records are exported."""
    layout = job.Layout(tmp_path)
    names = job.proxy_names()

    def scored_two_then_stopped(layout_, settings, truth, start, stop, images=None):
        job.atomic_write(layout.shard_store(start, stop), [record(i, p) for i in (0, 1) for p in names], compress=False)
        raise SystemExit(143)

    monkeypatch.setattr(job, "score_shard", scored_two_then_stopped)
    with pytest.raises(SystemExit):
        job.run_shard(layout, job.RunSettings(memory_seconds=3600), None, 0, 200)
    (row,) = job.read_jsonl(layout.chunks / "shards.jsonl")
    assert (row["interrupted"], row["complete"], row["cells_done"], row["new_records"]) == (True, False, 2, 2 * len(names))
    assert row["wall_s"] >= 0 and layout.chunk(0, 200, partial=True).exists()
    with pytest.raises(SystemExit) as stopped:  # the run's SIGTERM handler
        job._terminated(15, None)
    assert stopped.value.code == 128 + 15


def test_status_gives_the_time_left_at_the_mean_rate_and_at_the_last_runs(tmp_path):
    layout = job.Layout(tmp_path)
    job.atomic_write(layout.chunk(0, 200, partial=True), [record(0, p) for p in job.proxy_names()], True)
    # 7 runs: two slow ones (10 s a cell, beside other work), then five at 2 s a cell
    runs = [{"start": 0, "stop": 200, "cells_scored_now": 100, "wall_s": wall, "workers": 2, "threads": 1,
             "peak_rss_parent_mib": 400, "peak_rss_worker_mib": 800, "host": "h", "cpu": "c", "finished": "t"}
            for wall in (1000, 1000, 200, 200, 200, 200, 200)]
    job.atomic_write(layout.chunks / "shards.jsonl", runs, compress=False)
    lines = job.status(layout).splitlines()
    left = 15625 - 1  # one cell done
    assert f"mean: 4.3 wall s per cell over 700 cells; {left} cells left (about {left * 3000 / 700 / 3600:.1f} h" \
        in "\n".join(lines)
    assert f"the last 5 runs: 2.0 wall s per cell over 500 cells; {left} cells left (about {left * 2 / 3600:.1f} h" \
        in "\n".join(lines)


def test_the_memory_summary_reads_first_last_and_peak(tmp_path):
    log = tmp_path / "memory.log"
    rows = [{"time": "t0", "parent_rss_mib": 400, "parent_peak_mib": 410, "workers_rss_mib": [], "workers_peak_mib": []},
            {"time": "t1", "parent_rss_mib": 430, "parent_peak_mib": 470, "workers_rss_mib": [800, 900],
             "workers_peak_mib": [1000, 1100]},
            {"time": "t2", "parent_rss_mib": 420, "parent_peak_mib": 470, "workers_rss_mib": [850, 820],
             "workers_peak_mib": [1050, 1150]}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (line,) = job.memory_summary(log)
    assert "3 samples t0 to t2" in line and "job RSS 400 MiB first, 420 last, 470 peak" in line
    assert "workers' RSS 900 MiB first, 850 last, 1150 peak" in line
    assert job.memory_summary(tmp_path / "absent.log") == []


def test_the_running_tau_agreement_names_the_largest_difference():
    running = pd.DataFrame({"n_cells": [5, 10, 100, 200, 225, 230],
                            "kendall_tau": [0.9, 0.60, 0.70, 0.70, 0.66, 0.65],
                            "authors_kendall_tau": [0.1, 0.64, 0.69, 0.71, 0.66, np.nan]})
    text = report.running_agreement(running)
    # n = 5 is left out (too few cells to mean anything), n = 230 has no authors' value; the
    # differences at n = 10, 100, 200, 225 are -0.04, +0.01, -0.01, 0
    assert "n >= 10 (4 values of n): mean -0.0100, largest |difference| 0.0400 (n = 10)" in text
    assert "n >= 200 (2 values of n): mean -0.0050, largest |difference| 0.0100 (n = 200)" in text
    assert report.running_agreement(running.assign(authors_kendall_tau=np.nan)) == ""


def test_the_report_names_a_root_that_is_not_the_jobs_folder(tmp_path, capsys):
    assert report.main(["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "is not the job's folder" in capsys.readouterr().err and not (tmp_path / "out").exists()
