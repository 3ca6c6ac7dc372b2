"""Ensembles (xigsnr_naslib.proxies.ensemble): the fixed rule, its fit, members computed through the
study with shared passes, and what happens when a member cannot be computed."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from xigsnr_naslib import Protocol, Study
from xigsnr_naslib.proxies.ensemble import Member, WeightedSum, ensemble_proxy, fit_members, rank_combine
from xigsnr_naslib.passes import NotComputable

CONNECTED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
DISCONNECTED = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|none~2|"  # node 3 has no input


def test_weighted_sum_is_the_documented_formula():
    members = [Member("a", "log", centre=1.0, scale=2.0, weight=1.0), Member("b", "identity", centre=-3.0, scale=0.5,
                                                                            weight=2.0)]
    value = WeightedSum(members)({"a": math.e ** 5, "b": -1.0})
    # (5 - 1)/2 + 2 * (-1 + 3)/0.5 = 2 + 8, each step exact in binary but log(e**5)
    assert value == pytest.approx(10.0, rel=1e-15)
    with pytest.raises(NotComputable, match="a = -1.0.*positive"):
        WeightedSum(members)({"a": -1.0, "b": 0.0})


def test_members_are_checked_at_the_door():
    with pytest.raises(ValueError, match="unknown proxy 'nope'"):
        ensemble_proxy("e", [Member("nope")])
    with pytest.raises(ValueError, match="appears twice"):
        ensemble_proxy("e", [Member("params"), Member("params")])
    with pytest.raises(ValueError, match="unknown transform 'sqrt'.*log, identity"):
        Member("params", "sqrt")
    with pytest.raises(ValueError, match="scale of member 'params' must be a positive number"):
        Member("params", scale=0.0)


def test_fit_members_uses_the_median_and_the_normal_scaled_iqr():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"wide": np.exp(rng.normal(3, 2, 101)), "narrow": rng.normal(0, 1, 101)})
    wide, narrow = fit_members(frame)
    assert (wide.transform, narrow.transform) == ("log", "identity")  # spans > 10x / has negatives
    logs = np.log(frame["wide"].to_numpy())
    assert wide.centre == np.median(logs)
    q75, q25 = np.percentile(logs, [75, 25])
    assert wide.scale == pytest.approx((q75 - q25) / 1.349, rel=1e-12)  # scipy's iqr vs numpy's percentiles
    with pytest.raises(ValueError, match="one value"):
        fit_members(pd.DataFrame({"flat": [2.0, 2.0, 2.0]}))


def test_rank_combine_adds_average_ranks_or_their_logs():
    frame = pd.DataFrame({"a": [3.0, 1.0, 1.0, np.nan], "b": [0.1, 0.4, 0.2, 0.3]})
    ranks_a = np.array([4.0, 2.5, 2.5, 1.0])  # NaN ranks below all; ties share 2.5
    ranks_b = stats.rankdata(frame["b"])
    np.testing.assert_array_equal(rank_combine(frame, "rank_sum").to_numpy(), ranks_a + ranks_b)
    np.testing.assert_allclose(rank_combine(frame, "log_rank_sum").to_numpy(), np.log(ranks_a) + np.log(ranks_b),
                               rtol=1e-15)
    with pytest.raises(ValueError, match="unknown rank rule 'median'"):
        rank_combine(frame, "median")


@pytest.fixture
def small_study(tmp_path, data_root):
    members = [Member("xi_gsnr", "log", 10.0, 2.0), Member("zico", "identity", 50.0, 10.0, 0.5),
               Member("params", "log", 11.0, 1.0)]
    ensemble = ensemble_proxy("test_ensemble", members)
    return ensemble, Study("nb201", proxies=[ensemble], protocol=Protocol(n_batches=2, batch_size=4),
                           store=tmp_path / "r.jsonl", data_root=data_root)


def test_an_ensemble_is_its_rule_applied_to_its_members_records(small_study):
    ensemble, study = small_study
    returned = study.score([(0, CONNECTED)])
    assert [r["proxy"] for r in returned] == ["test_ensemble"]
    # the members were computed and stored along with the ensemble
    records = study.store.records()
    by_proxy = {r["proxy"]: r for r in records}
    assert set(by_proxy) == {"test_ensemble", "xi_gsnr", "zico", "params"}
    assert all(r["status"] == "ok" for r in records)
    expected = ((math.log(by_proxy["xi_gsnr"]["score"]) - 10.0) / 2.0 + 0.5 * (by_proxy["zico"]["score"] - 50.0) / 10.0
                + (math.log(by_proxy["params"]["score"]) - 11.0) / 1.0)
    assert by_proxy["test_ensemble"]["score"] == pytest.approx(expected, rel=1e-15)
    assert by_proxy["test_ensemble"]["settings"]["members"][1]["weight"] == 0.5
    # resuming rescored nothing: the same records come back from the store
    assert study.score([(0, CONNECTED)])[0] == by_proxy["test_ensemble"]
    assert len(study.store.records()) == 4


def test_an_ensemble_alone_on_a_network_equals_the_study(small_study, one_torch_thread):
    from xigsnr_naslib.scoring.study import build_model
    ensemble, study = small_study
    record = study.score([(0, CONNECTED)])[0]
    model = build_model(study.space, study.space.decode(CONNECTED), 10, study.protocol.init_seed)
    batches = study._prepare().batches
    # same network, same batches, same passes in the same order, one thread as the study's
    # default (DEFAULT_THREADS): the same float
    assert ensemble(model, batches) == record["score"]


def test_a_member_that_is_not_computable_makes_the_ensemble_not_computable_and_says_which(small_study):
    _, study = small_study
    study.score([(0, DISCONNECTED)])
    records = {r["proxy"]: r for r in study.store.records()}
    assert records["test_ensemble"]["status"] == "not computable"
    assert records["test_ensemble"]["score"] is None
    assert "member xi_gsnr is not computable" in records["test_ensemble"]["reason"]
    assert "zico is not computable" in records["test_ensemble"]["reason"]
    assert records["params"]["status"] == "ok"


def test_an_ensemble_whose_members_are_stored_is_derived_without_running_anything(small_study, monkeypatch):
    from xigsnr_naslib.scoring.study import ArchitectureScorer
    ensemble, study = small_study
    fresh = Study("nb201", proxies=[ensemble], protocol=study.protocol, store=None, data_root=study.data_root)
    expected = fresh.score([(0, CONNECTED), (1, DISCONNECTED)])
    members = Study("nb201", proxies=list(ensemble.members), protocol=study.protocol, store=study.store.path,
                    data_root=study.data_root)
    members.score([(0, CONNECTED), (1, DISCONNECTED)])

    def refuse(*args, **kwargs):
        raise AssertionError("a stored member was computed again")

    monkeypatch.setattr(ArchitectureScorer, "records", refuse)
    derived = Study("nb201", proxies=[ensemble], protocol=study.protocol, store=study.store.path,
                    data_root=study.data_root).score([(0, CONNECTED), (1, DISCONNECTED)])
    # the same function of the same (JSON round-tripped, exact) values: the same float, the same status
    assert [r["score"] for r in derived] == [r["score"] for r in expected]
    assert [r["status"] for r in derived] == ["ok", "not computable"]
    assert derived[1]["reason"] == expected[1]["reason"]
    assert all(r["from_stored_members"] and r["seconds"] is None for r in derived)
    assert len(study.store.records()) == 2 * 3 + 2


def test_a_choice_file_is_read_or_named_in_one_line(tmp_path):
    from xigsnr_naslib.data.data_root import DataFileError
    from xigsnr_naslib.proxies.ensemble import load_choice
    good = tmp_path / "choice.json"
    good.write_text('{"name": "mine", "members": [{"proxy": "params", "transform": "log", "centre": 13.0, '
                    '"scale": 2.0}], "tuning": {"n": 7, "space": "nb201", "dataset": "cifar10"}}')
    proxy = load_choice(good)
    assert proxy.name == "mine" and proxy.members == ("params",) and "7 nb201 cifar10" in proxy.description
    assert proxy.compute({"params": math.exp(17.0)}) == pytest.approx(2.0)
    for text in ("{", '{"name": "x"}', '[1, 2]', '{"name": "x", "members": [{"proxy": "params", "scale": 0}]}',
                 '{"name": "x", "members": [{"proxy": "params", "colour": 1}]}'):
        good.write_text(text)
        with pytest.raises(DataFileError) as info:
            load_choice(good)
        assert str(good) in str(info.value) and "\\n" not in str(info.value)
    good.write_text('{"name": "x", "members": [{"proxy": "no_such_proxy"}]}')
    with pytest.raises(ValueError, match="unknown proxy .no_such_proxy.; choose one of: "):
        load_choice(good)
