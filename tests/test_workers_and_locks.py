"""Workers die with their parent; two runs never write one results file at once."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from xigsnr_naslib.scoring.results import ResultsStore

PARENT = textwrap.dedent("""
    import sys, time
    from xigsnr_naslib import Execution, Protocol, Study
    from xigsnr_naslib.data.image_folder import synthetic_images

    def slow(results):
        time.sleep(600)  # a worker busy for far longer than the test
        return 0.0

    from xigsnr_naslib.proxies import Proxy
    study = Study("nb201", proxies=[Proxy("slow", slow, needs_data=False)],
                  execution=Execution(workers=2, threads=1), space_options={"channels": 4, "cells_per_stage": 1})
    archs = [(i, study.space.sample(__import__("random").Random(i))) for i in range(4)]
    print("started", flush=True)
    study.score(archs)
""")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


@pytest.mark.slow  # a parent with two workers in a fresh interpreter, killed (about 4 s)
@pytest.mark.skipif(sys.platform != "linux", reason="uses ps and fork")
def test_workers_exit_when_their_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "started"
    workers = []
    for _ in range(100):  # the workers start within a few seconds
        workers = _children(parent.pid)
        if len(workers) >= 2:
            break
        time.sleep(0.2)
    assert len(workers) >= 2, workers
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:  # leave nothing behind, even when the test fails
        os.kill(w, signal.SIGKILL)
    assert not survivors, "a worker outlived its parent by 10 s"


@pytest.mark.slow  # two fresh interpreters (about 5 s)
def test_a_second_writer_is_refused_and_nothing_is_lost(tmp_path):
    store = ResultsStore(tmp_path / "r.jsonl")
    code = textwrap.dedent(f"""
        from xigsnr_naslib.scoring.results import ResultsStore, StoreBusyError
        try:
            with ResultsStore({str(tmp_path / "r.jsonl")!r}).writing():
                pass
        except StoreBusyError as exc:
            print("refused:", exc)
        else:
            print("not refused")
    """)
    with store.writing():
        store.append({"arch": "a", "score": 1.0})
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert other.stdout.startswith("refused: results file") and "another run" in other.stdout
        store.append({"arch": "b", "score": 2.0})
    after = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert after.stdout.strip() == "not refused"  # the lock is released with the run
    assert [json.loads(line)["arch"] for line in (tmp_path / "r.jsonl").read_text().splitlines()] == ["a", "b"]


@pytest.mark.slow  # a command in a fresh interpreter (about 4 s)
def test_the_command_line_refuses_a_busy_results_file(tmp_path, data_root, capsys):

    results = tmp_path / "busy.jsonl"
    results.write_text("")
    with ResultsStore(results).writing():
        code = subprocess.run([sys.executable, "-m", "xigsnr_naslib.cli", "correlate", "--first", "2",
                               "--results", str(results), "--data-root", str(data_root), "--no-progress"],
                              capture_output=True, text=True)
    assert code.returncode == 2 and "is being written by another run" in code.stderr
    assert "Traceback" not in code.stderr and results.read_text() == ""


ONE_WORKER_TWO_THREADS = textwrap.dedent("""
    import torch
    from xigsnr_naslib import Execution, Protocol, Study
    from xigsnr_naslib.data.image_folder import synthetic_images

    torch.set_num_threads(2)
    torch.ones(512, 512) @ torch.ones(512, 512)  # the parent's OpenMP pool now has threads
    study = Study("nb201", "cifar10", ["xi_gsnr"], Protocol(2, 8), Execution(workers=1, threads=2),
                  images=synthetic_images(64, 32, 10), space_options={"channels": 4, "cells_per_stage": 1})
    records = study.score([(0, "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")])
    print(records[0]["status"])
""")


@pytest.mark.slow  # a spawned worker in a fresh interpreter (about 5 s)
def test_a_worker_of_several_threads_does_not_deadlock_after_the_parent_used_openmp():
    """A forked child inherits OpenMP's state without its threads and waits for ever at its
    first parallel operator; workers of several threads are spawned instead."""
    done = subprocess.run([sys.executable, "-c", ONE_WORKER_TWO_THREADS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok"
