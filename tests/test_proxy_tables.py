"""Readers of precomputed proxy tables: the real files, and small files in the same layouts."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from xigsnr_naslib.benchmarks.nb201.space import from_naslib_key as naslib_nb201_key_to_arch
from xigsnr_naslib.analysis.score_tables import (SUITEZERO_PROXIES, ProxyTableWarning,
                                                   read_naslib_subset_csv, read_naswot_csv, read_suitezero_csv,
                                                   read_zc_json)
from xigsnr_naslib.benchmarks.nb201.space import arch_to_str

A = arch_to_str(("nor_conv_3x3",) * 6)
B = arch_to_str(("skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3", "nor_conv_3x3", "skip_connect"))
C = arch_to_str(("avg_pool_3x3", "skip_connect", "none", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_1x1"))
D = arch_to_str(("nor_conv_1x1",) * 6)
E = arch_to_str(("none",) * 6)
#: NASLib's op-index key of C (checked against the real files below)
C_KEY = "(4, 0, 3, 1, 4, 3)"


def _suitezero_rows(rows):
    """Rows in the real file's column order: net, net_str, 13 proxies, arch_str, nb201_index, test_acc, val_accs."""
    out = []
    for i, (arch, score, val) in enumerate(rows):
        row = {"net": "()", "net_str": arch}
        row.update({p: score for p in SUITEZERO_PROXIES})
        row.update({"arch_str": arch, "nb201_index": i, "test_acc": val + 3, "val_accs": val})
        out.append(row)
    return pd.DataFrame(out)


def test_suitezero_layout_drops_and_says_why(tmp_path):
    frame = _suitezero_rows([(A, 1.0, 90.0), (B, 2.0, 80.0), (C, 3.0, 85.0), (D, 4.0, 70.0),
                             (D, 4.0, 70.0),                         # identical repeat: collapsed
                             (E, 5.0, 10.0), (E, 6.0, 10.0),         # conflicting repeat: dropped
                             ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", 7.0, 50.0)])
    frame.loc[1, "synflow"] = np.nan                                  # NaN score: kept as NaN, counted
    frame["zen"] = frame["zen"].astype(object)
    frame.loc[2, "zen"] = "failed"                                    # not a number
    path = tmp_path / "suitezero_cifar10.csv"
    frame.to_csv(path, index=False)
    with pytest.warns(ProxyTableWarning) as caught:
        table = read_suitezero_csv(path)
    assert list(table.scores.index) == [A, B, C, D]
    assert table.proxies == list(SUITEZERO_PROXIES)
    assert table.scores.at[A, "snip"] == 1.0 and math.isnan(table.scores.at[B, "synflow"])
    assert math.isnan(table.scores.at[C, "zen"])
    assert table.targets.at[C, "naslib_val"] == 85.0 and table.targets.at[C, "naslib_test"] == 88.0
    notes = "\n".join(table.notes)
    assert "1 row(s) whose architecture is not a nb201 architecture" in notes and "conv_5x5" in notes
    assert "1 architecture(s) listed more than once with different values" in notes and E in notes
    assert "1 repeated row(s) with identical values collapsed" in notes
    assert "proxy synflow: 1 NaN" in notes and "non-numeric value(s) in column 'zen'" in notes
    assert len(caught) == len(table.notes)


def test_missing_columns(tmp_path):
    frame = _suitezero_rows([(A, 1.0, 90.0), (B, 2.0, 80.0)])
    frame.drop(columns=["arch_str"]).to_csv(tmp_path / "no_arch.csv", index=False)
    with pytest.raises(ValueError, match="no architecture column 'arch_str'"):
        read_suitezero_csv(tmp_path / "no_arch.csv")
    frame.drop(columns=["zen", "val_accs"]).to_csv(tmp_path / "no_zen.csv", index=False)
    with pytest.warns(ProxyTableWarning):
        table = read_suitezero_csv(tmp_path / "no_zen.csv")
    assert any("zen missing" in n for n in table.notes)
    assert "zen" not in table.proxies and len(table.proxies) == 12
    assert list(table.targets.columns) == ["naslib_test"]
    assert any("'val_accs' missing" in n for n in table.notes)
    frame[["arch_str", "test_acc"]].to_csv(tmp_path / "no_proxy.csv", index=False)
    with pytest.raises(ValueError, match="none of the proxy columns"):
        read_suitezero_csv(tmp_path / "no_proxy.csv")


def _zc_entry(score, val, *proxies):
    entry = {"id": 0, "val_accuracy": val}
    entry.update({p: {"score": score, "time": 0.1} for p in proxies})
    return entry


def test_zc_json_layout(tmp_path):
    data = {
        "cifar10": {
            C_KEY: _zc_entry(3.0, 85.0, "synflow", "jacov"),
            "(2, 2, 2, 2, 2, 2)": _zc_entry(9.0, 91.0, "synflow", "jacov"),
            "(1, 1, 1, 1, 1, 1)": {"id": 2, "val_accuracy": 10.0, "synflow": {"score": 0.0, "time": 0.1}},
            "(7, 0, 0, 0, 0, 0)": _zc_entry(1.0, 50.0, "synflow", "jacov"),    # op index 7 does not exist
        },
        "cifar100": {C_KEY: _zc_entry(1.0, 60.0, "synflow")},
    }
    path = tmp_path / "zc_nasbench201.json"
    path.write_text(json.dumps(data))
    with pytest.warns(ProxyTableWarning):
        table = read_zc_json(path, "nb201", "cifar10")
    assert table.name == "zc_nasbench201"
    assert set(table.scores.index) == {C, A, E}          # NASLib's op 2 is nor_conv_3x3, op 1 is none
    assert table.scores.at[A, "synflow"] == 9.0 and table.targets.at[C, "naslib_val"] == 85.0
    assert math.isnan(table.scores.at[E, "jacov"])        # entry without a jacov score
    notes = "\n".join(table.notes)
    assert "'(7, 0, 0, 0, 0, 0)'" in notes and "proxy jacov: 1 NaN" in notes
    assert read_zc_json(path, "nb201", "cifar100").scores.at[C, "synflow"] == 1.0
    with pytest.raises(ValueError, match="no dataset 'ImageNet16-120'; it has cifar10, cifar100"):
        read_zc_json(path, "nb201", "ImageNet16-120")
    (tmp_path / "flat.json").write_text(json.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="layout"):
        read_zc_json(tmp_path / "flat.json")


def test_naslib_key_conversion():
    assert naslib_nb201_key_to_arch(C_KEY) == C
    assert naslib_nb201_key_to_arch((0, 0, 0, 0, 0, 0)) == arch_to_str(("skip_connect",) * 6)
    for bad in ("(0, 0, 0)", "(5, 0, 0, 0, 0, 0)", "nonsense", "(0, 0, 0, 0, 0, x)"):
        with pytest.raises(ValueError):
            naslib_nb201_key_to_arch(bad)


def test_naslib_subset_layout_filters_the_dataset(tmp_path):
    frame = pd.DataFrame({"dataset": ["cifar10", "cifar100", "cifar10"], "op_indices": [C_KEY] * 3,
                          "arch_str": [C, C, A], "nb201_index": [1, 1, 2], "naslib_idx": [0, 0, 1],
                          "val_accuracy": [85.0, 60.0, 90.0], "test_accuracy": [88.0, 61.0, 93.0],
                          "synflow": [1.0, 2.0, 3.0], "snip": [4.0, 5.0, 6.0]})
    path = tmp_path / "subset.csv"
    frame.to_csv(path, index=False)
    table = read_naslib_subset_csv(path, dataset="cifar100")
    assert list(table.scores.index) == [C] and table.proxies == ["synflow", "snip"]
    assert table.targets.at[C, "naslib_val"] == 60.0 and not table.notes
    with pytest.raises(ValueError, match="no rows for dataset 'ImageNet16-120'"):
        read_naslib_subset_csv(path, dataset="ImageNet16-120")


def test_real_tables(data_root):
    nb201 = data_root / "nb201"
    raw = pd.read_csv(nb201 / "suitezero_cifar10_9445.csv")
    assert (raw["net"].map(naslib_nb201_key_to_arch) == raw["arch_str"]).all()   # the key order, on 9,445 archs
    subset = pd.read_csv(nb201 / "naslib_zc_subset_725x3.csv")
    assert (subset["op_indices"].map(naslib_nb201_key_to_arch) == subset["arch_str"]).all()
    with pytest.warns(ProxyTableWarning, match="NASLib's failure marker"):
        suitezero = read_suitezero_csv(nb201 / "suitezero_cifar10_9445.csv")
    assert len(suitezero) == 9445 and suitezero.proxies == list(SUITEZERO_PROXIES)
    assert suitezero.targets["naslib_val"].max() == pytest.approx(91.57, abs=0.01)
    with pytest.warns(ProxyTableWarning, match="naswot: 341 NaN"):
        naswot = read_naswot_csv(nb201 / "naswot_scores_all15625.csv")
    assert len(naswot) == 15625 and int(naswot.scores["naswot"].isna().sum()) == 341
