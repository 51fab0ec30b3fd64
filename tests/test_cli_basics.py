"""The CLI contract of the foundation: data stats, list, error lines, a smoke training run."""
import json

import pytest

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_mnist_stats(cli):
    code, out, _ = cli("data", "stats", "--dataset", "mnist", "--json")
    s = json.loads(out)
    assert code == 0 and s["train_size"] == 60000 and s["test_size"] == 10000
    assert s["test_class_counts"] == MNIST_TEST_COUNTS
    assert abs(sum(s["priors"]["all"]) - 1) < 1e-4


def test_fashion_stats(cli):
    code, out, _ = cli("data", "stats", "--dataset", "fashion-mnist", "--json")
    s = json.loads(out)
    assert (s["train_size"], s["test_size"]) == (60000, 10000)
    assert s["train_class_counts"] == [6000] * 10 and s["test_class_counts"] == [1000] * 10


def test_unknown_names_are_one_line_errors(cli):
    code, out, err = cli("data", "stats", "--dataset", "nope")
    assert code == 2 and "unknown dataset 'nope'" in err and "mnist" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("supervised", "--budget", "smoke", "--model", "resnet9000")
    assert code == 2 and "unknown model" in err


@pytest.mark.slow
def test_supervised_smoke_writes_run_folder(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli("supervised", "--budget", "smoke", "--out", out, "--json")
    assert code == 0, err
    m = json.loads(stdout)
    assert 0 <= m["test_accuracy"] <= 1 and m["wall_seconds"] > 0
    for name in ("config.json", "env.json", "metrics.jsonl", "metrics.json", "splits.npz", "model.safetensors",
                 "model.json", "confusion.png", "learning_curves.png", "classification_report.json"):
        assert (out / name).exists(), name
    assert not (out / "checkpoint.safetensors").exists()
    env = json.loads((out / "env.json").read_text())
    assert "git_sha" in env and env["versions"]["torch"].startswith("2.13")
    # a finished run folder is not overwritten
    code, _, err = cli("supervised", "--budget", "smoke", "--out", out)
    assert code == 2 and "finished run" in err
