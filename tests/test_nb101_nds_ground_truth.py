"""NAS-Bench-101 and NDS ground truth: the real file layouts (written here), the reference files."""
import base64
import json
import pickle
import struct

import numpy as np
import pandas as pd
import pytest

from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.benchmarks.nb101.ground_truth import (
    model_metrics_message,
    nb101_ground_truth,
    paper_sample,
    read_nb101_full_metrics_csv,
    read_nb101_pickle,
    read_nb101_sample_csv,
    read_nb101_tfrecord,
)
from xigsnr_naslib.benchmarks.nds.ground_truth import nds_ground_truth, read_nds_file
from xigsnr_naslib.benchmarks.nb101.space import graph_hash, make_cell

CONV3, CONV1, POOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
CELLS = [
    ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", CONV3, "output"]),
    ([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", CONV1, POOL, "output"]),
    ([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", CONV3, POOL, "output"]),
    ([[0, 1], [0, 0]], ["input", "output"]),
]
# per cell: (test, valid) accuracy of each of 3 seeds
RUNS = [[(0.90, 0.91), (0.92, 0.90), (0.91, 0.93)],
        [(0.80, 0.81), (0.79, 0.85), (0.82, 0.80)],
        [(0.70, 0.75), (0.74, 0.71), (0.72, 0.73)],
        [(0.10, 0.11), (0.12, 0.10), (0.11, 0.10)]]
PARAMS = [1000, 2000, 3000, 4000]


def _frame_record(data: bytes) -> bytes:
    """A TFRecord frame: length, masked CRC32C of it, data, masked CRC32C of the data."""
    from tfrecord.writer import TFRecordWriter

    length = struct.pack("<Q", len(data))
    return length + TFRecordWriter.masked_crc(length) + data + TFRecordWriter.masked_crc(data)


def _metrics(params, test, valid) -> str:
    message = model_metrics_message()()
    message.trainable_parameters = params
    message.total_time = 123.0
    for epoch, scale in ((0, 0.1), (54, 0.5), (108, 1.0)):
        e = message.evaluation_data.add()
        e.current_epoch, e.training_time = epoch, epoch * 10.0
        e.train_accuracy, e.validation_accuracy, e.test_accuracy = scale, valid * scale, test * scale
    return base64.b64encode(message.SerializeToString()).decode()


def _expected(definition, seed=0):
    def acc(runs):
        return 100 * max(t for t, _ in runs) if definition == "released" else 100 * runs[seed][1]
    rows = sorted((graph_hash(make_cell(m, o)), acc(r)) for (m, o), r in zip(CELLS, RUNS))
    return [h for h, _ in rows], [a for _, a in rows]


@pytest.fixture
def tfrecord_file(tmp_path):
    pytest.importorskip("tfrecord")
    pytest.importorskip("google.protobuf")
    path = tmp_path / "nasbench_only108.tfrecord"
    frames = []
    for (matrix, ops), runs, params in zip(CELLS, RUNS, PARAMS):
        h = graph_hash(make_cell(matrix, ops))
        bits = "".join(str(b) for row in matrix for b in row)
        for test, valid in runs:
            frames.append(json.dumps([h, 108, bits, ",".join(ops), _metrics(params, test, valid)]).encode())
        frames.append(json.dumps([h, 36, bits, ",".join(ops), _metrics(params, 0.5, 0.5)]).encode())  # other budget
    frames.append(json.dumps(["feedbeef" * 4, 108, "0100", "input,output", "not base64!"]).encode())
    frames.append(json.dumps(["0123abcd" * 4, 108, "011001000", "input,conv5x5,output",
                              _metrics(5, 0.5, 0.5)]).encode())
    path.write_bytes(b"".join(_frame_record(f) for f in frames))
    return path


@pytest.mark.parametrize("definition", ["released", "naslib"])
def test_tfrecord_layout(tfrecord_file, definition):
    with pytest.warns(UserWarning, match="skipped 2 invalid record"):
        df = read_nb101_tfrecord(tfrecord_file, definition, verify_hash=True)
    hashes, accuracy = _expected(definition)
    assert list(df["hash"]) == hashes and list(df.index) == [0, 1, 2, 3]
    assert np.allclose(df["accuracy"], accuracy)
    assert sorted(df["params"]) == PARAMS
    assert ("maximum over the 3 seeds" in df.attrs["definition"]) == (definition == "released")
    skipped = dict(df.attrs["skipped"])
    assert any("conv5x5" in why for why in skipped.values()) and len(skipped) == 2
    # the data root prefers the tfrecord and passes the definition on
    via_root = get_card("nb101").load_ground_truth("cifar10", tfrecord_file.parent, definition)
    assert via_root.attrs["source"] == str(tfrecord_file) and np.allclose(via_root["accuracy"], accuracy)


def test_tfrecord_naslib_seed_choice(tfrecord_file):
    with pytest.warns(UserWarning):
        df = read_nb101_tfrecord(tfrecord_file, "naslib", seed=2)
    assert np.allclose(df["accuracy"], _expected("naslib", seed=2)[1])
    with pytest.raises(ValueError, match="unknown NAS-Bench-101 accuracy definition"):
        read_nb101_tfrecord(tfrecord_file, "best")


def test_naslib_pickle_layout(tmp_path):
    data = {}
    for (matrix, ops), runs, params in zip(CELLS, RUNS, PARAMS):
        fixed = {"module_adjacency": np.array(matrix, dtype=np.int8), "module_operations": list(ops),
                 "trainable_parameters": params}
        computed = {108: [{"final_test_accuracy": t, "final_validation_accuracy": v, "final_training_time": 1.0,
                           "halfway_test_accuracy": t / 2} for t, v in runs]}
        data[graph_hash(make_cell(matrix, ops))] = (fixed, computed)
    data["bad"] = ({"module_adjacency": np.ones((2, 2))}, {})
    path = tmp_path / "nasbench_only108.pkl"
    path.write_bytes(pickle.dumps(data))
    for definition in ("released", "naslib"):
        with pytest.warns(UserWarning, match="skipped 1"):
            df = read_nb101_pickle(path, definition, verify_hash=True)
        hashes, accuracy = _expected(definition)
        assert list(df["hash"]) == hashes and np.allclose(df["accuracy"], accuracy)
    with pytest.warns(UserWarning):
        assert nb101_ground_truth("cifar10", tmp_path).attrs["source"] == str(path)


def test_paper_sample_is_first_hashes_in_sorted_order(tfrecord_file):
    with pytest.warns(UserWarning):
        df = read_nb101_tfrecord(tfrecord_file)
    first = paper_sample(df, 2)
    assert list(first["hash"]) == sorted(df["hash"])[:2] and list(first.index) == [0, 1]
    with pytest.raises(ValueError, match="first 4500"):
        paper_sample(df)


@pytest.mark.slow  # validates the 2,500 cells twice; the 30-cell file's readers stay in the fast loop
def test_reference_sample_csv(data_root):
    df = read_nb101_sample_csv(data_root / "nb101" / "nb101_sample2500.csv")
    assert len(df) == 2500 and list(df["hash"]) == sorted(df["hash"])
    assert 80 < df["accuracy"].median() < 95 and "ONE seed" in df.attrs["definition"]
    assert get_card("nb101").load_ground_truth("cifar10", data_root).attrs["source"].endswith("nb101_sample2500.csv")
    with pytest.raises(MissingDataError, match="nasbench_only108.tfrecord"):
        get_card("nb101").load_ground_truth("cifar10", data_root, "naslib")
    with pytest.raises(ValueError, match="CIFAR-10"):
        nb101_ground_truth("cifar100", data_root)


def test_reference_full_metrics_definitions(data_root):
    path = data_root / "nb101" / "nb101_30_fullmetrics.csv"
    raw = pd.read_csv(path).set_index("nb101_hash")
    released = read_nb101_full_metrics_csv(path, "released", verify_hash=True).set_index("hash")
    naslib = read_nb101_full_metrics_csv(path, "naslib", seed=1).set_index("hash")
    for h in released.index:
        row = raw.loc[h]
        row = row.iloc[0] if isinstance(row, pd.DataFrame) else row
        assert released.at[h, "accuracy"] == pytest.approx(100 * max(row[f"test_acc_seed{s}"] for s in range(3)))
        assert naslib.at[h, "accuracy"] == pytest.approx(100 * row["val_acc_seed1"])


def test_bad_csv_rows_are_skipped_and_named(tmp_path, data_root):
    table = pd.read_csv(data_root / "nb101" / "nb101_sample2500.csv").head(3)
    ops = json.loads(table.loc[1, "ops"])
    table.loc[1, "ops"] = json.dumps(ops[:1] + ["conv5x5"] + ops[2:])
    table.loc[2, "matrix"] = json.dumps(np.array(json.loads(table.loc[2, "matrix"])).T.tolist())
    table.to_csv(tmp_path / "s.csv", index=False)
    with pytest.warns(UserWarning, match="skipped 2"):
        df = read_nb101_sample_csv(tmp_path / "s.csv")
    assert len(df) == 1
    reasons = " ".join(why for _, why in df.attrs["skipped"])
    assert "row 1" in reasons and "unknown operation" in reasons and "row 2" in reasons and "upper-triangular" in reasons


# --- NDS ---------------------------------------------------------------------------------

def test_nds_imagenet_records(data_root):
    df = nds_ground_truth("nds_darts_in", "imagenet", data_root)
    raw = json.loads((data_root / "nds" / "DARTS_in.json").read_text())
    assert len(df) == len(raw) == 121
    assert df.at[0, "accuracy"] == pytest.approx(100 - raw[0]["test_ep_top1"][-1])
    assert "100 - test_ep_top1[-1]" in df.attrs["definition"]
    with pytest.raises(ValueError, match="imagenet"):
        nds_ground_truth("nds_darts_in", "cifar10", data_root)
    with pytest.raises(MissingDataError, match="DARTS.json"):
        nds_ground_truth("nds_darts", "cifar10", data_root)


def test_nds_dict_layout_and_bad_records(tmp_path, data_root):
    raw = json.loads((data_root / "nds" / "ENAS_in.json").read_text())[:4]
    broken = json.loads(json.dumps(raw[1]))
    broken["net"]["genotype"]["normal"][0][0] = "conv_11x11"
    no_accuracy = {k: v for k, v in raw[2].items() if k != "test_ep_top1"}
    path = tmp_path / "nds" / "ENAS.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"top": [raw[0], broken], "mid": [no_accuracy, raw[3]]}))
    with pytest.warns(UserWarning, match="skipped 2"):
        df = get_card("nds_enas").load_ground_truth("cifar10", tmp_path)
    assert list(df.index) == [0, 3]
    assert df.at[3, "accuracy"] == pytest.approx(100 - raw[3]["test_ep_top1"][-1])
    reasons = dict(df.attrs["skipped"])
    assert "conv_11x11" in reasons["ENAS.json[1]"] and "test_ep_top1" in reasons["ENAS.json[2]"]
    path.write_text(json.dumps({"records": []}))
    with pytest.raises(ValueError, match="top"):
        read_nds_file(path)
