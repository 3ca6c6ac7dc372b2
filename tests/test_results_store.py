"""The JSON-lines results store: append, key, resume, repair."""
import json
import math

import pytest

from xigsnr_naslib.results import ResultsStore, record_key, record_score, score_fields


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
