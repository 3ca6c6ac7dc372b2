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

from xigsnr_naslib.cli.app import main

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


# --- every device string torch reads, and malformed ones, in every command taking --device ---------
def _torch_device_types() -> list[str]:
    """The device types this torch reads (its own error message lists them)."""
    import re

    import torch

    try:
        torch.device("no_such_device_type")
    except RuntimeError as exc:
        found = re.search(r"Expected one of (.*?) device type", str(exc))
    assert found, "torch no longer lists its device types in this message: update the harness"
    return [t.strip() for t in found.group(1).split(",")]


MALFORMED_DEVICES = ["cuda:x", "gpu", "GPU", "CPU", "", " cpu", "cuda:-1", "cuda:0:1", "cuda:01", "cpu:", "0", "cuda 0"]
DEVICES = [d for t in _torch_device_types() for d in (t, f"{t}:0", f"{t}:1")] + MALFORMED_DEVICES
DEVICE_COMMANDS = {**{c: BASE[c] for c in SCORING}, "naslib-run": ["--engine", "standalone"]}


def _usable(device: str) -> bool:
    from xigsnr_naslib.scoring.study import check_device

    try:
        check_device(device)
    except ValueError:
        return False
    return True


# the fast loop (-m "not slow") runs every device string once, the commands taking turns; the
# full suite runs every device string in every command
@pytest.mark.parametrize("command,device",
                         [pytest.param(c, d, marks=() if j % len(DEVICE_COMMANDS) == i else pytest.mark.slow)
                          for i, c in enumerate(DEVICE_COMMANDS) for j, d in enumerate(DEVICES)])
def test_every_device_string_runs_or_is_refused_in_one_line(command, device, data_root, tmp_path, capsys, monkeypatch):
    """A device is usable here (cpu, cpu:N and what this machine has: the ``score`` command then
    runs) or refused with exit status 2 and one line naming it and the devices available."""
    from xigsnr_naslib.scoring.study import available_devices

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XIGSNR_DATA_ROOT", str(data_root))
    if _usable(device):
        if command != "score":
            pytest.skip("a usable device: the score command runs it")
        code, err = _run(["score", NB201, "--proxy", "params", "--device", device, "--workers", "0"], capsys)
        assert code == 0, err
        return
    args = [command, *DEVICE_COMMANDS[command], "--device", device]
    if command == "naslib-run":
        config = tmp_path / "c.yaml"
        config.write_text(NASLIB_CONFIG.format(out=tmp_path / "run"))
        args[1:1] = ["--config", str(config)]
    else:
        args += ["--results", str(tmp_path / "r.jsonl")]
    code, err = _run(args, capsys)
    _check(code, err, repr(device), "")
    assert code == 2
    assert "choose one of:" in err and all(d in err for d in available_devices())
    assert not (tmp_path / "r.jsonl").exists() and not (tmp_path / "run").exists()  # refused before any work


# --- malformed lines in every reader of stores: each JSON type, first, middle and last ------------
NOT_RECORDS = {  # a line that is JSON but not a record
    "number": 3, "string": "text", "list": [1, 2], "null": None, "true": True, "empty object": {},
    "object missing keys": {"space": "nb201", "arch": NB201},
    "arch a number": {"space": "nb201", "arch": 7, "proxy": "params", "status": "ok", "score": 1.0},
    "score a string": {"space": "nb201", "arch": NB201, "proxy": "params", "status": "ok", "score": "high"},
    "unknown status": {"space": "nb201", "arch": NB201, "proxy": "params", "status": "fine", "score": 1.0},
    "settings a list": {"space": "nb201", "arch": NB201, "proxy": "params", "status": "ok", "score": 1.0,
                        "settings": [1]},
    "index a string": {"space": "nb201", "arch": NB201, "proxy": "params", "status": "ok", "score": 1.0,
                       "index": "one"},
    "protocol unreadable": {"space": "nb201", "arch": NB201, "proxy": "xi_gsnr", "status": "ok", "score": 1.0,
                            "protocol": {"n_batches": "eight"}},
}
POSITIONS = ("first", "middle", "last")


def _store_with(bad, position: str, good: list[dict]) -> tuple[str, int]:
    """The text of a store holding ``good`` records and the line ``bad`` at ``position``, and
    that line's number."""
    lines = [json.dumps(r) for r in good]
    where = {"first": 0, "middle": len(lines) // 2, "last": len(lines)}[position]
    lines.insert(where, json.dumps(bad))
    return "".join(line + "\n" for line in lines), where + 1


@pytest.fixture(scope="module")
def stored_records(data_root, tmp_path_factory):
    """Two good records of NB201 (params, flops): a real store to damage."""
    path = tmp_path_factory.mktemp("store") / "r.jsonl"
    assert main(["score", NB201, "--proxy", "params", "--proxy", "flops", "--results", str(path), "--workers", "0",
                 "--data-root", str(data_root), "--no-progress"]) == 0
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", list(NOT_RECORDS))
def test_a_line_that_is_not_a_record_is_skipped_with_its_file_and_line(kind, position, stored_records, data_root,
                                                                        tmp_path, capsys):
    """The store's policy for damaged lines (as for lines cut short): skipped with a warning
    naming file, line and what is wrong; the run goes on and the good records are served."""
    path = tmp_path / "r.jsonl"
    text, line = _store_with(NOT_RECORDS[kind], position, stored_records)
    path.write_text(text)
    with pytest.warns(UserWarning) as caught:
        code, err = _run(["score", NB201, "--proxy", "params", "--proxy", "flops", "--results", str(path),
                          "--workers", "0", "--data-root", str(data_root), "--no-progress"], capsys)
    assert code == 0, err
    said = [str(w.message) for w in caught if f"{path}:{line}:" in str(w.message)]
    assert len(said) == 1 and "not a results record" in said[0] and len(said[0].split("skipped: ")[1]) > 8, said
    assert path.read_text() == text  # both good records served: nothing scored, nothing appended


@pytest.mark.slow  # the leaderboard command on two architectures
@pytest.mark.parametrize("position", POSITIONS)
def test_the_leaderboard_cache_skips_a_line_that_is_not_a_record(position, stored_records, data_root, tmp_path,
                                                                 capsys):
    path = tmp_path / "scores.jsonl"
    text, line = _store_with([1, 2], position, stored_records)
    path.write_text(text)
    with pytest.warns(UserWarning, match=f"{path}:{line}: not a results record"):
        code, err = _run(["leaderboard", "--sample", "2", "--no-figures", "--proxy", "params", "--table", "none",
                          "--n-boot", "10", "--results", str(path), "--out", str(tmp_path / "lb"), "--workers", "0",
                          "--data-root", str(data_root), "--no-progress"], capsys)
    assert code == 0, err


@pytest.fixture(scope="module")
def evolution_checkpoint(tmp_path_factory):
    """A real checkpoint of a tiny search (params fitness, no images) to damage."""
    folder = tmp_path_factory.mktemp("search")
    args = ["search", "--space", "burgerformer", "--proxy", "params", "--population", "2", "--steps", "1",
            "--checkpoint", str(folder / "ckpt.json"), "--output", str(folder / "best.json"),
            "--results", str(folder / "scores.jsonl"), "--no-progress", "--workers", "0"]
    assert main(args) == 0
    return args, json.loads((folder / "ckpt.json").read_text())


BAD_CANDIDATES = {**{k: v for k, v in NOT_RECORDS.items() if not isinstance(v, dict)}, "empty object": {},
                  "fitness a string": "fitness", "step a list": "step"}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", list(BAD_CANDIDATES))
def test_a_damaged_search_checkpoint_is_named_in_one_line(kind, position, evolution_checkpoint, tmp_path, capsys):
    """A checkpoint is one JSON document, rewritten whole: a damaged history entry refuses the
    resume (exit status 2) with the file, the entry and what is wrong, and changes nothing."""
    args, data = evolution_checkpoint
    history = [dict(c) for c in data["history"]]
    where = {"first": 0, "middle": len(history) // 2, "last": len(history) - 1}[position]
    bad = BAD_CANDIDATES[kind]
    if bad in ("fitness", "step"):
        history[where][bad] = "high" if bad == "fitness" else [1]
    else:
        history[where] = bad
    path = tmp_path / "ckpt.json"
    text = json.dumps({**data, "history": history})
    path.write_text(text)
    run = [tmp_path / "scores.jsonl" if a.endswith("scores.jsonl") else a for a in args]
    run = [str(path) if str(a).endswith("ckpt.json") else str(a) for a in run]
    code, err = _run(run, capsys)
    _check(code, err, str(path), f"history entry {where}")
    assert code == 2 and path.read_text() == text


ZC_ENTRY_KINDS = {k: v for k, v in NOT_RECORDS.items() if not isinstance(v, dict)}
ZC_SCORE_KINDS = {"score a string": {"score": "high"}, "no score": {"time": 1.0}, "a number": 3.0, "null": None}


def _zc_file(tmp_path, bad_entry=None, bad_score=None, position="middle"):
    keys = [f"({i}, 0, 0, 0, 0, 0)" for i in range(3)]
    entries = {k: {"xi_gsnr": {"score": 1.0, "time": 0.0}} for k in keys}
    key = keys[{"first": 0, "middle": 1, "last": 2}[position]]
    entries[key] = bad_entry if bad_score is None else {"xi_gsnr": bad_score}
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps({"cifar10": entries}))
    return path, key


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", list(ZC_ENTRY_KINDS) + list(ZC_SCORE_KINDS))
def test_a_damaged_zc_entry_for_zc_fill_is_named_before_scoring(kind, position, tmp_path, data_root, capsys):
    """``naslib-run --zc-fill`` rewrites the zc file: a damaged entry refuses the run (exit
    status 2) with the file, the architecture and what is wrong, and the file is unchanged."""
    config = tmp_path / "c.yaml"
    config.write_text(NASLIB_CONFIG.format(out=tmp_path / "run"))
    if kind in ZC_ENTRY_KINDS:
        path, key = _zc_file(tmp_path, bad_entry=ZC_ENTRY_KINDS[kind], position=position)
    else:
        path, key = _zc_file(tmp_path, bad_score=ZC_SCORE_KINDS[kind], position=position)
    text = path.read_text()
    code, err = _run(["naslib-run", "--config", str(config), "--engine", "standalone", "--data-root", str(data_root),
                      "--zc-json", str(path), "--zc-fill"], capsys)
    _check(code, err, str(path), key)
    assert code == 2 and path.read_text() == text and not (tmp_path / "run").exists()


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", list(ZC_ENTRY_KINDS) + list(ZC_SCORE_KINDS))
def test_the_leaderboard_zc_reader_drops_a_damaged_entry_and_says_which(kind, position, tmp_path):
    """The leaderboard reads a zc file without writing it (the policy of its table readers): an
    entry that is not a dict of scores is dropped with a note naming it; a score that is not a
    number reads as NaN, and the note says the architecture leaves the ranked set. The others
    are read."""
    from xigsnr_naslib.analysis.score_tables import read_zc_json

    if kind in ZC_ENTRY_KINDS:
        path, key = _zc_file(tmp_path, bad_entry=ZC_ENTRY_KINDS[kind], position=position)
    else:
        path, key = _zc_file(tmp_path, bad_score=ZC_SCORE_KINDS[kind], position=position)
    table = read_zc_json(path)
    said = key if kind in ZC_ENTRY_KINDS else "1 NaN or infinite score(s)"
    assert any(said in note for note in table.notes), table.notes
    assert int((table.scores["xi_gsnr"] == 1.0).sum()) == 2
