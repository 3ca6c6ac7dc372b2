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


def test_key_depends_on_settings_not_on_dict_order():
    a = rec("x")
    b = dict(rec("x"), settings={"xi": 1e-8})
    c = dict(rec("x"), settings={"xi": 1e-6})
    assert record_key(a) == record_key(b) != record_key(c)


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
