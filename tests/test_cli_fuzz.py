"""Command-line fuzz harness: generated bad invocations across every command.

For each bad invocation: exit status 2 (usage) or 1 (data), one short line on stderr that
names the bad value (and the valid choices where there is a list), no Python traceback, and
the results file given to it unchanged. Every case fails at the door, before any scoring.
The README quotes how many cases run (``len(CASES)``).
"""
import itertools
import json
from pathlib import Path

import pytest

from xigsnr_naslib.cli import main

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
SCORING = ["correlate", "score", "leaderboard", "search"]
#: what each scoring command needs besides the option under test
BASE = {"correlate": ["--first", "2"], "score": [NB201], "leaderboard": ["--sample", "2", "--no-figures"],
        "search": ["--space", "burgerformer", "--synthetic-images", "--population", "2", "--steps", "0"]}

# (option, bad value, text the message must contain); the value itself must appear too
UNKNOWN_NAMES = [
    ("--space", "nb999", "choose one of"), ("--space", "NB201", "choose one of"), ("--space", "", "choose one of"),
    ("--dataset", "mnist", "choose one of"), ("--dataset", "imagenet", "choose one of"),
    ("--proxy", "xi_gnsr", "choose one of"), ("--proxy", "synflo", "choose one of"),
    ("--strategy", "fast", "choose from"), ("--backend", "mpi", "choose from"),
    ("--device", "gpu9", "choose one of"), ("--device", "cuda", "choose one of"),
    ("--space", "nds_dart", "choose one of"), ("--dataset", "cifar-1000", "choose one of"),
    ("--strategy", "VMAP", "choose from"), ("--backend", "dask", "choose from"), ("--device", "cuda:0", "choose one of"),
]
NUMBERS = [
    ("--n-batches", "0"), ("--n-batches", "-2"), ("--n-batches", "x"), ("--n-batches", "1.5"), ("--n-batches", ""),
    ("--batch-size", "0"), ("--batch-size", "-1"), ("--batch-size", "eight"), ("--batch-size", "1e3"),
    ("--data-seed", "-1"), ("--data-seed", "seed"), ("--init-seed", "-3"), ("--init-seed", "0.5"),
    ("--workers", "-1"), ("--workers", "many"), ("--workers", "2.5"), ("--threads", "0"), ("--threads", "two"),
    ("--batch-size", "1.0"), ("--n-batches", "1e9x"), ("--data-seed", "1.5"), ("--threads", "-1"),
]
PER_COMMAND = {
    "correlate": [("--first", "0"), ("--first", "abc"), ("--sample-seed", "-1"), ("--accuracy", "valid")],
    "leaderboard": [("--sample", "0"), ("--sample-seed", "-1"), ("--n-boot", "-5"), ("--level", "1.5"),
                    ("--level", "high"), ("--table", "suitezer"), ("--exclude", "nothing.here"),
                    ("--naslib-k", "0"), ("--ndcg-k", "x"), ("--sample", "999999")],
    "search": [("--population", "1"), ("--population", "x"), ("--steps", "-1"), ("--sample-size", "0"),
               ("--mutation-rate", "2"), ("--crossover-rate", "-0.5"), ("--crossover-rate", "x"),
               ("--search-seed", "-1"), ("--resolution", "0"), ("--num-classes", "0"), ("--top-k", "0"),
               ("--max-images", "0"), ("--max-flops", "lots"), ("--space-option", "nokey"),
               ("--space-option", "width"), ("--constraint-resolution", "-224")],
    "score": [("--proxy", "nope"), ("--n-batches", "0")],
}
NB201_SEARCH = ["--space", "nb201", "--algorithm"]
#: (arguments, bad value, text the message must contain) of the zero-shot search's flags
ZERO_SHOT = [
    ([*BASE["search"], "--algorithm", "prune"], "prune", "it offers: evolution"),
    ([*BASE["search"], "--samples", "5"], "--samples", "prune or sample"),
    ([*BASE["search"], "--supernet-option", "channels=2"], "--supernet-option", "prune or sample"),
    ([*NB201_SEARCH, "anneal"], "anneal", "choose one of"),
    (["--space", "darts", "--algorithm", "evolution"], "evolution", "it offers: prune, sample"),
    ([*NB201_SEARCH, "prune", "--repeats", "0"], "0", ""),
    ([*NB201_SEARCH, "prune", "--repeats", "three"], "three", ""),
    ([*NB201_SEARCH, "sample", "--samples", "0"], "0", ""),
    ([*NB201_SEARCH, "sample", "--samples", "x"], "x", ""),
    ([*NB201_SEARCH, "sample", "--samples", "20000"], "20000", "15625"),
    ([*NB201_SEARCH, "prune", "--supernet-option", "colour=3"], "colour", "choose one of"),
    ([*NB201_SEARCH, "prune", "--supernet-option", 'operations=["none"]'], "none", "choose among"),
    ([*NB201_SEARCH, "prune", "--supernet-option", "channels"], "channels", ""),
    (["--space", "darts", "--algorithm", "prune", "--supernet-option", "width=3"], "3", "even width"),
    ([*NB201_SEARCH, "sample", "--supernet-option", "channels=3"], "--supernet-option", "prune"),
    ([*NB201_SEARCH, "prune", "--samples", "5"], "--samples", "for --algorithm sample, not prune"),
    ([*NB201_SEARCH, "sample", "--repeats", "2"], "--repeats", "for --algorithm prune, not sample"),
    ([*NB201_SEARCH, "sample", "--population", "5"], "--population", "for --algorithm evolution, not sample"),
    ([*NB201_SEARCH, "prune", "--steps", "3"], "--steps", "for --algorithm evolution, not prune"),
    ([*NB201_SEARCH, "prune", "--search-seed", "4"], "--search-seed", "for --algorithm sample or evolution, not prune"),
    ([*NB201_SEARCH, "evolution", "--samples", "5"], "--samples", "for --algorithm sample, not evolution"),
    ([*NB201_SEARCH, "prune", "--proxy", "xi_gsnr", "--proxy", "zico"], "zico", "one --proxy"),
    ([*NB201_SEARCH, "prune", "--max-flops", "100M"], "--max-flops", "evolution"),
    ([*NB201_SEARCH, "sample", "--paper-constraints"], "nb201", "no constraints"),
    ([*NB201_SEARCH, "prune", "--proxy", "xi_gsnx"], "xi_gsnx", "choose one of"),
    ([*NB201_SEARCH, "sample", "--dataset", "imagenet"], "imagenet", "choose one of"),
]
#: pairs of flags that contradict each other
CONTRADICTIONS = {
    "correlate": [["--first", "2", "--sample", "3"], ["--first", "2", "--archs", "0:2"], ["--sample", "2", "--archs", "1,2"]],
    "leaderboard": [["--all", "--sample", "3"]],
}


def _cases():
    cases = []
    for command, (option, value, expect) in itertools.product(SCORING, UNKNOWN_NAMES):
        if command == "search" and option in ("--dataset",) and value == "imagenet":
            continue  # imagenet is the search spaces' dataset
        base = [a for a in BASE[command] if not (option == "--space" and command == "search")]
        base = ["--space", "burgerformer", *base[2:]] if command == "search" and option != "--space" else base
        cases.append((command, [*base, option, value], value, expect))
    for command, (option, value) in itertools.product(SCORING, NUMBERS):
        cases.append((command, [*BASE[command], option, value], value, ""))
    for command, items in PER_COMMAND.items():
        for option, value in items:
            args = [*BASE[command], option, value if value != "width" else "width=3"]
            cases.append((command, args, value, ""))
    # options of the selection group (it excludes --first): each alone
    for option, value in [("--sample", "-4"), ("--sample", "x"), ("--archs", "a:b"), ("--archs", "1,x"),
                          ("--archs", "99999999"), ("--sample", "99999")]:
        cases.append(("correlate", [option, value], value, ""))
    for command, items in CONTRADICTIONS.items():
        for flags in items:
            cases.append((command, flags, "not allowed with", ""))
    for command in SCORING:
        cases.append((command, [*BASE[command], "--no-such-flag"], "--no-such-flag", ""))
    cases.append(("naslib-run", ["--config", "c.yaml", "--no-such-flag"], "--no-such-flag", ""))
    cases.append(("naslib-run", ["--config", "c.yaml", "--engine", "fast"], "fast", "choose from"))
    cases.append(("naslib-run", ["--config", "c.yaml", "--zc-fill", "--bogus"], "--bogus", ""))
    cases.append(("cifar10-layout", ["--out", "o", "--no-such-flag"], "--no-such-flag", ""))
    cases.append(("cifar10-layout", [], "--out", ""))
    cases.append(("cifar10-layout", ["--out", "o", "--image-folder", "no/such/folder"], "no/such/folder", ""))
    cases.append(("bogus", [], "bogus", "choose from"))
    # zero-shot search (prune, sample) on the benchmark spaces
    for args, value, expect in ZERO_SHOT:
        cases.append(("search", args, value, expect))
    return cases


CASES = _cases()


@pytest.fixture
def results(tmp_path):
    path = tmp_path / "kept.jsonl"
    path.write_text(json.dumps({"space": "nb201", "arch": "x", "proxy": "xi_gsnr", "score": 1.0}) + "\n")
    return path


def _run(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    return code, capsys.readouterr().err


def _check(code, err, value, expect):
    assert code in (1, 2), (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one short line
    assert "Traceback" not in err and "error:" in lines[0]
    assert len(lines[0]) < 800, lines[0]
    assert value in lines[0], (value, lines[0])  # names the bad value
    assert expect in lines[0], (expect, lines[0])  # and the valid choices where there is a list


def test_the_harness_tries_at_least_200_bad_invocations():
    assert len(CASES) >= 200


# every fourth case runs in the fast loop (-m "not slow"), all of them in the full suite
@pytest.mark.parametrize("command,args,value,expect",
                         [pytest.param(*case, marks=() if i % 4 == 0 else pytest.mark.slow) for i, case in enumerate(CASES)],
                         ids=[f"{c}-{i}" for i, (c, *_rest) in enumerate(CASES)])
def test_bad_invocation(command, args, value, expect, results, data_root, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XIGSNR_DATA_ROOT", str(data_root))
    before = results.read_text()
    extra = ["--results", str(results)] if command in SCORING and "--results" not in args else []
    code, err = _run([command, *args, *extra], capsys)
    _check(code, err, value, expect)
    assert results.read_text() == before  # no existing results file changed
    assert not (tmp_path / "results").exists()  # nothing written elsewhere


BAD_FILES = {
    "missing": None,
    "empty": "",
    "truncated": "search_space: nasbench201\ndataset: cif",
    "wrong format": "[1, 2, 3]\n",
    "not yaml": "{{{:::",
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_naslib_config_files(kind, tmp_path, capsys):
    path = tmp_path / "config.yaml"
    if BAD_FILES[kind] is not None:
        path.write_text(BAD_FILES[kind])
    code, err = _run(["naslib-run", "--config", str(path), "--engine", "standalone"], capsys)
    _check(code, err, str(path), "")


@pytest.mark.parametrize("kind", ["missing", "empty", "not json"])
def test_bad_zc_json_for_the_leaderboard(kind, tmp_path, data_root, capsys):
    path = tmp_path / "zc.json"
    if kind != "missing":
        path.write_text("" if kind == "empty" else "a,b\n1,2\n")
    code, err = _run(["leaderboard", "--sample", "2", "--no-figures", "--proxy", "none", "--table", "none",
                      "--zc-json", str(path), "--data-root", str(data_root), "--out", str(tmp_path / "lb")], capsys)
    _check(code, err, str(path), "")


@pytest.mark.parametrize("where", ["--results", "--report"])
def test_unwritable_output_folders(where, tmp_path, data_root, capsys):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    target = str(blocked / "out.json")
    args = ["correlate", "--first", "2", "--data-root", str(data_root), "--no-progress", "--workers", "0",
            "--n-batches", "2", "--batch-size", "2"]
    if where == "--report":
        args += ["--results", str(tmp_path / "ok.jsonl")]
    code, err = _run([*args, where, target], capsys)
    _check(code, err, str(blocked), "")


@pytest.mark.parametrize("root", ["missing", "a file", "empty folder"])
def test_bad_data_roots(root, tmp_path, capsys):
    path = tmp_path / "root"
    if root == "a file":
        path.write_text("x")
    elif root == "empty folder":
        path.mkdir()
    code, err = _run(["correlate", "--first", "2", "--data-root", str(path), "--results", str(tmp_path / "r.jsonl")],
                     capsys)
    _check(code, err, str(path), "")
    assert code == (1 if root == "empty folder" else 2)


# --- malformed benchmark and image files under a data root ----------------------------------------
# Every reader of a benchmark's files: the file exists but is empty, cut short, another
# format, or lacks the columns the reader needs. Each must end in one line naming the file,
# exit status 1 (a data error), no traceback.
REFERENCE_NB201 = "nb201/nb201_groundtruth_all15625.csv"
MALFORMED = {
    "empty": b"",
    "truncated": b"nb201_index,arch_str,cifar10_ori_test\n0,|none~0|+|no",
    "wrong format": b"\x80\x04\x95garbage-bytes\x00\x01",
    "other columns": b"a,b\n1,2\n",
    "json list": b"[1, 2, 3]\n",
}
FILE_CASES = [
    ("nb201", "cifar10", REFERENCE_NB201),
    ("nb201", "cifar10", "NAS-Bench-201-v1_1-096897.pth"),
    ("nb101", "cifar10", "nb101/nb101_sample2500.csv"),
    ("nb101", "cifar10", "nasbench_only108.tfrecord"),
    ("nb101", "cifar10", "nasbench_only108.pkl"),
    ("nds_darts", "cifar10", "nds/DARTS.json"),
    ("nds_darts_in", "imagenet", "nds/DARTS_in.json"),
    ("nb201", "cifar10", "images/cifar10_jpeg_train5000_test10000.npz"),  # the images, ground truth intact
]


@pytest.mark.parametrize("kind", list(MALFORMED))
@pytest.mark.parametrize("space,dataset,rel", FILE_CASES, ids=[f"{s}-{Path(r).name}" for s, _, r in FILE_CASES])
def test_malformed_benchmark_files_are_named_as_data_errors(space, dataset, rel, kind, tmp_path, data_root, capsys):
    root = tmp_path / "root"
    (root / "nb201").mkdir(parents=True)
    if rel.startswith("images/"):
        (root / REFERENCE_NB201).symlink_to(data_root / REFERENCE_NB201)
    bad = root / rel
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(MALFORMED[kind])
    code, err = _run(["correlate", "--space", space, "--dataset", dataset, "--first", "2", "--data-root", str(root),
                      "--results", str(tmp_path / "r.jsonl"), "--no-progress", "--workers", "0",
                      "--n-batches", "2", "--batch-size", "2"], capsys)
    _check(code, err, str(bad), "")
    assert len(err.split(str(bad), 1)[1].strip()) > 10  # and says what is wrong with it
    assert code == 1


NASLIB_CONFIG = ("search_space: nasbench201\ndataset: cifar10\npredictor: xi_gsnr\nseed: 0\ntest_size: 2\n"
                 "batch_size: 8\nout_dir: {out}\nxigsnr: {{n_batches: 2, batch_size: 4}}\n")
ZC_FILES = {  # zc file content -> the extra flags, the value the message must name, what else it must say
    "not json": ("{x", [], "not JSON"),
    "not a dataset mapping": ("[1, 2]", [], "not a zc_<space>.json"),
    "half filled": (json.dumps({"cifar10": {f"({i}, 0, 0, 0, 0, 0)": {"snip": {"score": 1.0, "time": 0.0}}
                                            for i in range(5)}}), [], "--zc-fill"),
    "nothing to fill": (json.dumps({"cifar100": {}}), ["--zc-fill"], "no architectures of 'cifar10'"),
}


@pytest.mark.parametrize("kind", list(ZC_FILES) + ["fill without a file"])
def test_bad_zc_files_for_naslib_run(kind, tmp_path, data_root, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(NASLIB_CONFIG.format(out=tmp_path / "run"))
    args = ["naslib-run", "--config", str(config), "--engine", "standalone", "--data-root", str(data_root)]
    if kind == "fill without a file":
        code, err = _run([*args, "--zc-fill"], capsys)
        _check(code, err, "--zc-fill", "--zc-json")
        return
    text, flags, expect = ZC_FILES[kind]
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(text)
    code, err = _run([*args, "--zc-json", str(path), *flags], capsys)
    _check(code, err, str(path), expect)
    assert code == 2 and path.read_text() == text and not (tmp_path / "run").exists()  # refused before scoring


@pytest.mark.parametrize("argv,value,expect", [
    (["run", "--n-batches", "x", "s.py"], "'x'", ""), (["run", "--batch-size", "-3", "s.py"], "'-3'", ""),
    (["bogus"], "bogus", "choose from"), (["run"], "target", ""), (["run", "--frobnicate", "s.py"], "--frobnicate", ""),
])
def test_bad_launcher_invocations(argv, value, expect, capsys):
    from xigsnr_naslib.naslib import main as launcher

    try:
        code = launcher(argv)
    except SystemExit as exit_:
        code = exit_.code
    _check(code, capsys.readouterr().err, value, expect)
