"""Ground-truth readers: the reference CSV and the real NAS-Bench-201 .pth layout."""
import pandas as pd
import pytest
import torch

from xigsnr_naslib.data.data_root import MissingDataError
from xigsnr_naslib.benchmarks.card import get_card
from xigsnr_naslib.benchmarks.nb201.ground_truth import nb201_benchmark_file, nb201_ground_truth, nb201_reference

ARCHS = [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
]


def _results_count(dataset, seed, accs_by_set, epochs=200):
    """A ResultsCount state dict as the benchmark file stores it."""
    eval_acc1es = {f"{name}@{e}": (acc if e == epochs - 1 else 10.0) for name, acc in accs_by_set.items() for e in range(epochs)}
    return {"name": dataset, "dataset": dataset, "seed": seed, "epochs": epochs, "eval_names": list(accs_by_set),
            "eval_acc1es": eval_acc1es, "eval_losses": {k: 1.0 for k in eval_acc1es}, "params": 0.1, "flop": 1.0}


def _arch_results(index, arch, per_dataset):
    all_results, dataset_seed = {}, {}
    for dataset, seeds in per_dataset.items():
        dataset_seed[dataset] = sorted(seeds)
        for seed, accs in seeds.items():
            all_results[(dataset, seed)] = _results_count(dataset, seed, accs)
    return {"arch_index": index, "arch_str": arch, "all_results": all_results, "dataset_seed": dataset_seed,
            "clear_net_done": True}


@pytest.fixture
def benchmark_file(tmp_path):
    infos = {}
    for i, arch in enumerate(ARCHS):
        full = _arch_results(i, arch, {
            "cifar10": {777: {"ori-test": 50.0 + i}, 888: {"ori-test": 52.0 + i}},
            "cifar100": {777: {"x-test": 20.0 + i, "x-valid": 1.0, "ori-test": 2.0}},
            "ImageNet16-120": {777: {"x-test": 10.0 + i}, 888: {"x-test": 12.0 + i}, 999: {"x-test": 14.0 + i}},
        })
        infos[i] = {"less": full, "full": full}
    path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
    torch.save({"meta_archs": ARCHS, "arch2infos": infos, "evaluated_indexes": [0, 1], "total_archs": 2}, path)
    return path


def test_benchmark_file_layout(benchmark_file):
    c10 = nb201_benchmark_file(benchmark_file, "cifar10")
    assert list(c10["arch"]) == ARCHS
    assert list(c10["accuracy"]) == [51.0, 52.0]  # mean over seeds at epoch 199
    assert list(nb201_benchmark_file(benchmark_file, "cifar100")["accuracy"]) == [20.0, 21.0]  # x-test, not x-valid
    assert list(nb201_benchmark_file(benchmark_file, "ImageNet16-120")["accuracy"]) == [12.0, 13.0]
    # the data root prefers the benchmark file when it is there
    assert nb201_ground_truth("cifar10", benchmark_file.parent).attrs["source"] == str(benchmark_file)


def test_benchmark_file_errors(tmp_path):
    with pytest.raises(MissingDataError, match="NAS-Bench-201-v1_0-e61699.pth"):
        nb201_benchmark_file(tmp_path / "missing.pth")
    torch.save({"something": 1}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="not a NAS-Bench-201 file"):
        nb201_benchmark_file(tmp_path / "x.pth")


def test_reference_csv(data_root):
    c10 = nb201_reference("cifar10", data_root)
    assert len(c10) == 15625
    assert c10["accuracy"].idxmax() == 6111 and c10["accuracy"].max() == pytest.approx(94.37, abs=0.01)
    assert nb201_reference("cifar100", data_root)["accuracy"].idxmax() == 9930
    assert nb201_reference("ImageNet16-120", data_root)["accuracy"].idxmax() == 857
    assert "ori-test" in c10.attrs["definition"]
    assert get_card("nb201").load_ground_truth("cifar10", data_root).attrs["source"].endswith("nb201_groundtruth_all15625.csv")


def test_reference_csv_errors(tmp_path):
    with pytest.raises(MissingDataError, match="nb201_groundtruth_all15625.csv"):
        nb201_reference("cifar10", tmp_path)
    pd.DataFrame({"nb201_index": [0], "arch_str": [ARCHS[0]]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match="missing column"):
        nb201_reference("cifar10", path=tmp_path / "t.csv")
    with pytest.raises(ValueError, match="unknown search space 'nb999'; choose one of: .*nb201"):
        get_card("nb999").load_ground_truth("cifar10", tmp_path)


def test_a_miss_lists_every_location_tried_and_where_each_file_comes_from(tmp_path):
    from xigsnr_naslib.data.data_root import MissingDataError
    from xigsnr_naslib.benchmarks.nb201.ground_truth import BENCHMARK_FILES, NATS_FILES, REFERENCE_CSV

    with pytest.raises(MissingDataError) as error:
        get_card("nb201").load_ground_truth("cifar10", tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    for rel in [*BENCHMARK_FILES, *NATS_FILES, REFERENCE_CSV]:
        assert rel in message
    assert "NAS-Bench-201 release" in message and "NATS-Bench release" in message and "reference data" in message


def test_a_nats_topology_file_is_tried_before_the_reference_csv(tmp_path, monkeypatch):
    import xigsnr_naslib.benchmarks.nb201.ground_truth as gt

    (tmp_path / "NATS-tss-v1_0-3ffb9-simple").mkdir()
    seen = []
    monkeypatch.setattr(gt, "nats_topology", lambda path, dataset: seen.append((path, dataset)) or "from nats")
    assert get_card("nb201").load_ground_truth("cifar100", tmp_path) == "from nats"
    assert seen == [(tmp_path / "NATS-tss-v1_0-3ffb9-simple", "cifar100")]
