"""The JSON-lines results store: append, key, resume, repair."""
import json
import math
from pathlib import Path

import pytest

from xigsnr_naslib.scoring.results import ResultsStore, record_key, record_score, score_fields


def rec(arch, score=1.0, **kw):
    return {"space": "nb201", "dataset": "cifar10", "arch": arch, "proxy": "xi_gsnr", "settings": {"xi": 1e-8},
            "protocol": {"seed": 1}, **score_fields(score), **kw}


def test_append_and_read_back(tmp_path):
    store = ResultsStore(tmp_path / "r.jsonl")
    store.append(rec("a", 2.5))
    store.append(rec("b", float("nan")))
    store.append(rec("c", float("-inf")))
    got = ResultsStore(tmp_path / "r.jsonl").records()
    assert [r["status"] for r in got] == ["ok", "nonfinite", "nonfinite"]
    assert got[0]["score"] == 2.5 and got[1]["value"] == "nan" and got[2]["value"] == "-inf"
    assert math.isnan(record_score(got[1])) and record_score(got[2]) == float("-inf")
    # strict JSON on disk: no NaN literals
    for line in (tmp_path / "r.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


FULL = {"space": "nb101", "space_options": {"stem_channels": 16, "num_stacks": 3}, "dataset": "cifar10",
        "images": "b7187bf375047033", "arch": "x", "proxy": "xi_gsnr_per_sample",
        "settings": {"mode": "per_sample", "xi": 1e-8, "variant": "xi_gsnr", "params": "conv_linear"},
        "protocol": {"n_batches": 1, "batch_size": 8, "data_seed": 1, "init_seed": 1, "normalization": None,
                     "bn_mode": "train"}}
NESTED = ("space_options", "settings", "protocol")


def reordered(record: dict) -> dict:
    """The same record with every mapping's keys in reverse order."""
    out = {k: record[k] for k in reversed(list(record))}
    for field in NESTED:
        out[field] = {k: record[field][k] for k in reversed(list(record[field]))}
    return out


def test_key_ignores_key_order_and_the_score_fields():
    assert list(reordered(FULL)["protocol"]) != list(FULL["protocol"])
    assert record_key(reordered(FULL)) == record_key(FULL)
    assert record_key(dict(FULL, score=3.0, status="ok", seconds=1.5)) == record_key(FULL)


@pytest.mark.parametrize("field", ["space", "dataset", "images", "arch", "proxy"])
def test_key_changes_with_every_top_level_field(field):
    assert record_key(dict(FULL, **{field: "other"})) != record_key(FULL)


@pytest.mark.parametrize("field,key", [(f, k) for f in NESTED for k in FULL[f]])
def test_key_changes_with_every_nested_field(field, key):
    changed = dict(FULL, **{field: {**FULL[field], key: "changed"}})
    assert record_key(changed) != record_key(FULL)


def test_truncated_last_line_is_dropped(tmp_path):
    path = tmp_path / "r.jsonl"
    store = ResultsStore(path)
    store.append(rec("a"))
    with open(path, "a") as f:
        f.write('{"space": "nb201", "arch": "b", "sc')  # an interrupted write
    with pytest.warns(UserWarning, match="incomplete last line"):
        store = ResultsStore(path)
    assert [r["arch"] for r in store] == ["a"]
    store.append(rec("c"))
    assert [r["arch"] for r in ResultsStore(path)] == ["a", "c"]


# --- what a resume reuses: facts about architecture and protocol, never failures of a run ----------
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
#: parameters of ARCH's CIFAR-10 network: params_MB = 0.802426 in the reference ground truth (index 1)
ARCH_PARAMS = 802_426
#: another cell, in no test file: 0.587386 M parameters in the reference ground truth (index 99)
OTHER, OTHER_PARAMS = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|skip_connect~2|", 587_386


def params_study(path, **execution):
    from xigsnr_naslib import Execution, Study

    return Study("nb201", "cifar10", ["params"], store=path, execution=Execution(workers=0, **execution))


def stored(study, **fields) -> dict:
    """The record ``study`` would write for ARCH, with ``fields`` in place of the score."""
    scorer = study._prepare()
    record = scorer.base_record(7, ARCH, study.proxies[0])
    record.update(fields)
    return record


def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_an_error_record_is_retried_on_resume_and_the_new_value_recorded(tmp_path):
    path = tmp_path / "r.jsonl"
    failed = stored(params_study(path), score=None, status="error", seconds=None,
                    error="RuntimeError: CPU out of memory (tried to allocate 2.00 GiB)")
    write_lines(path, [failed])
    [record] = params_study(path).score([(7, ARCH)])
    assert record["status"] == "ok" and record["score"] == ARCH_PARAMS and record["device"] == "cpu"
    lines = ResultsStore(path).records()
    assert [r["status"] for r in lines] == ["error", "ok"]  # appended; the old line stays, unused
    # the next resume serves the new value and appends nothing
    before = path.read_text()
    assert params_study(path).score([(7, ARCH)])[0]["score"] == ARCH_PARAMS
    assert path.read_text() == before


def test_a_worker_that_died_is_scored_again_by_the_next_run(tmp_path):
    path = tmp_path / "r.jsonl"
    study = params_study(path)
    write_lines(path, study._prepare().failed(7, study.space.decode(ARCH), ["params"],
                                              "worker process died (exit code -9)"))
    assert params_study(path).score([(7, ARCH)])[0]["score"] == ARCH_PARAMS


def test_a_not_computable_record_is_reused_without_rerunning(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    fact = stored(params_study(path), score=None, status="not computable", seconds=0.1,
                  reason="no path from input to output")
    write_lines(path, [fact])
    before = path.read_text()
    monkeypatch.setattr("xigsnr_naslib.scoring.study.build_model", lambda *a, **k: pytest.fail("rebuilt a stored network"))
    [record] = params_study(path).score([(7, ARCH)])
    assert record["status"] == "not computable" and record["reason"] == "no path from input to output"
    assert path.read_text() == before


def test_a_derived_proxy_with_a_failed_member_is_a_failure_not_a_fact(tmp_path):
    """The ensemble's record, built from stored members, is an error (retried) when a member
    failed, and not computable only when a member is."""
    from xigsnr_naslib import Study
    from xigsnr_naslib.proxies import get_proxy

    study = Study("nb201", "cifar10", ["ensemble"], store=tmp_path / "r.jsonl")
    scorer = study._prepare()
    proxy = get_proxy("ensemble")
    members = {m: {"status": "ok", "score": 1.0} for m in proxy.members}
    first = proxy.members[0]
    failed = scorer._derived_record(0, ARCH, proxy, {**members, first: {"status": "error", "error": "OOM"}}, 0.0)
    undefined = scorer._derived_record(0, ARCH, proxy, {**members, first: {"status": "not computable"}}, 0.0)
    assert failed["status"] == "error" and "OOM" in failed["error"]
    assert undefined["status"] == "not computable"


def test_the_meta_device_is_refused_and_its_records_never_reused(tmp_path):
    from xigsnr_naslib import Execution

    with pytest.raises(ValueError, match="device 'meta' is not available .*hold no values.*choose one of: cpu"):
        Execution(device="meta")
    path = tmp_path / "r.jsonl"
    # a record that claims a value computed on meta (hand-made: no run can write one)
    write_lines(path, [stored(params_study(path), score=1.0, status="ok", seconds=0.0, device="meta")])
    [record] = params_study(path).score([(7, ARCH)])
    assert record["score"] == ARCH_PARAMS and record["device"] == "cpu"
    assert len(ResultsStore(path).records()) == 2


def test_an_old_format_store_with_a_failure_resumes_and_retries_only_the_failure(tmp_path, monkeypatch):
    """Records of release 0.1.0 (no device, one protocol seed, no space options or images):
    its stored scores are served; its error record is scored again."""
    from xigsnr_naslib import Execution, Protocol, Study

    release = Path(__file__).parent / "data" / "records_release_0.1.0.jsonl"
    old = [json.loads(line) for line in release.read_text().splitlines()]
    params = next(r for r in old if r["proxy"] == "params")
    broken = {**params, "score": None, "status": "error", "error": "RuntimeError: out of memory", "index": 99,
              "arch": OTHER}
    path = tmp_path / "old.jsonl"
    path.write_text(release.read_text() + json.dumps(broken) + "\n")
    study = Study("nb201", "cifar10", ["params"], Protocol(n_batches=3, batch_size=16), Execution(workers=0), path)
    records = study.score([(params["index"], params["arch"]), (99, OTHER)])
    assert records[0] == params  # served from the old file as it is
    assert records[1]["status"] == "ok" and records[1]["score"] == OTHER_PARAMS
    assert len(ResultsStore(path).records()) == len(old) + 2  # the failure and its new record
