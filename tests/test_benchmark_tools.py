"""The benchmark helpers that count and plan: FLOPs per image, a run's training FLOPs, the GPU script's commands."""
import subprocess
import sys
from pathlib import Path

import pytest

from mnistlab import api
from mnistlab.cli import build_parser

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import flops  # noqa: E402
import gpu  # noqa: E402


def test_cnn_costs_what_the_issue_measured():
    fwd, both = flops.per_image_flops("cnn")
    assert both == pytest.approx(174.3e6, rel=0.01)  # torch.utils.flop_counter, forward + backward
    assert both == pytest.approx(3 * fwd, rel=0.01)  # backward ≈ twice the forward
    assert flops.per_image_flops("cnn-small")[1] < both / 3.5  # a quarter of the compute


@pytest.mark.slow
def test_run_flops_counts_every_stage_and_skipping_saves(tmp_path):
    runs = {}
    for skip in (False, True):
        out, _ = api.train("fixmatch", command="fewlabel", budget="smoke", out=tmp_path / f"s{skip}",
                           overrides={"threshold": 0.3, "skip_unconfident": skip, "threads": 1})
        runs[skip] = flops.run_flops(out)
    full, skipped = runs[False], runs[True]
    assert full["total"] == pytest.approx(full["ssl"] + full["refine"])
    assert full["refine"] > 0 and full["ssl"] > 0
    assert skipped["ssl"] < full["ssl"]  # fewer strong views went through the student
    assert skipped["refine"] == pytest.approx(full["refine"])


def test_gpu_script_says_so_without_a_gpu_and_exits_0():
    res = subprocess.run([sys.executable, str(BENCH / "gpu.py")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0
    assert res.stdout.strip().splitlines() == ["benchmarks/gpu.py: no CUDA device here; nothing to measure"]


def test_gpu_script_commands_are_valid_cli_commands(tmp_path):
    args = type("A", (), {"runs": str(tmp_path), "draws": 5, "only": list(gpu.JOBS)})()
    table = gpu.jobs(args, "cuda:0")
    assert len(table["fewlabel"]) == 5
    parser = build_parser()
    for cmds in table.values():
        for cmd in cmds:
            ns = parser.parse_args(cmd)  # an unknown flag would exit 2 here
            assert getattr(ns, "device", None) == "cuda:0"


def test_pinned_old_recipe_is_a_valid_fixmatch_config():
    import time_to_accuracy

    from mnistlab.config import merge
    from mnistlab.methods.fixmatch import FixMatchConfig

    cfg = merge(FixMatchConfig, {k: str(v) for k, v in time_to_accuracy.FIXMATCH_V1.items()})  # as --set passes them
    assert cfg.model == "cnn" and cfg.refine_rounds == 3 and cfg.skip_unconfident is False


def test_time_to_accuracy_refuses_a_run_folder_made_for_another_candidate(tmp_path, monkeypatch):
    import argparse
    import json

    import time_to_accuracy as tta

    monkeypatch.setattr(tta, "git_info", lambda: {"git_sha": "abc", "git_dirty": False})
    out = tmp_path / "new-l100-d0"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    (out / "env.json").write_text(json.dumps({"git_sha": "abc"}))
    (out / "bench_record.json").write_text(json.dumps({"command": "mnistlab fewlabel --set model=cnn-small"}))
    assert tta.recorded_sets(out) == ["model=cnn-small"]
    args = argparse.Namespace(runs=str(tmp_path), labels=100, seed=0, threads=1, new_set=["mu=5"])
    with pytest.raises(SystemExit, match="another --runs folder"):
        tta.run_arm(args, "new", 0)


def test_reselect_commands_parse_and_the_rule_needs_a_clear_margin(tmp_path):
    import argparse

    import reselect

    args = argparse.Namespace(threads=1, model="cnn-small", steps=1000, labels=0, grid="detector")
    grid = reselect.GRIDS["detector"]
    for name in grid.candidates:  # every candidate's command is one the CLI accepts
        words = reselect.command(args, grid, name, 3, tmp_path / name)
        parsed = build_parser().parse_args(words)
        assert parsed.seed == 3 and words[:2] == ["detect", "train"]
    assert "near_share=0.5" in reselect.command(args, grid, "near-0.5-cnn", 0, tmp_path)
    row = lambda c, v, d=0: {"candidate": c, "split_seed": d, "val_hard": v}  # noqa: E731
    assert reselect.decide({"even-small": [row("even-small", 0.90)], "even-cnn": [row("even-cnn", 0.904)]},
                           grid).count("even-small stays")  # 0.4 point < the 0.5-point margin
    won = reselect.decide({"even-small": [row("even-small", 0.90)], "even-cnn": [row("even-cnn", 0.91)]}, grid)
    assert "even-cnn" in won and "stays" not in won


def test_robustness_base_runs_do_not_inherit_the_robust_recipe():
    """MNIST's supervised recipe sets robust=0.5, so robustness.py's base runs must say robust=0 or they would
    silently be the robust runs again."""
    import argparse

    import robustness
    from mnistlab.methods.recipes import resolve_config

    args = argparse.Namespace(
        cnn_model="cnn", cnn_epochs=1.0, seed=0, det_epochs=1.0, positives=100, lofo_epochs=0.5, det_near_share=None,
        det_model=None, smoke=False)
    todo = robustness.jobs(args)
    for name, method, want in (("cnn-base", "supervised", 0.0), ("cnn-robust", "supervised", 0.5),
                               ("det-base", "detector", 0.0), ("det-robust", "detector", 0.5)):
        sets = dict(v.split("=", 1) for k, v in zip(todo[name], todo[name][1:]) if k == "--set")
        assert resolve_config(method, overrides={"dataset": "mnist", **sets}).robust == want, name


def test_results_name_each_runs_device_and_precision_once(tmp_path):
    """The device line of a results file comes from the runs' own env.json: each device once, '?' when unknown."""
    from _machine import run_devices

    for name, env in (("a", '{"device": "cpu", "precision": "bf16"}'), ("b", '{"device": "cpu", "precision": "bf16"}'),
                      ("c", '{"device": "cuda:0", "precision": "fp16"}'), ("d", "not json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "env.json").write_text(env)
    assert run_devices(tmp_path / n for n in "abcd") == "cpu (bf16), cuda:0 (fp16)"
    assert run_devices([tmp_path / "d", tmp_path / "missing"]) == "?"


def test_restarts_keeps_the_most_even_run_per_draw_by_a_label_free_score():
    import numpy as np
    import restarts
    from mnistlab.evaluate.metrics import smallest_class_share

    assert smallest_class_share(np.array([0, 0, 1, 2]), 3) == pytest.approx(0.75)  # 1 of 4 is a third of even
    assert smallest_class_share(np.array([0, 0, 1, 2]), 4) == 0.0  # class 3 is never predicted
    assert smallest_class_share(np.arange(10).repeat(5), 10) == pytest.approx(1.0)
    rows = [{"labels": 10, "split_seed": d, "seed": s, "balance": b, "ulb_accuracy": a}
            for d, s, b, a in [(0, 0, 0.2, 0.80), (0, 2, 0.9, 0.99), (0, 1, 0.9, 0.97), (1, 0, 0.5, 0.90),
                               (1, 1, 0.1, 0.95)]]
    kept = restarts.keep(rows)
    assert kept[(10, 0)]["seed"] == 1  # the tie at 0.9 goes to the lower seed, whatever the pool says
    assert kept[(10, 1)]["seed"] == 0  # the more even run, though its pool accuracy is lower
    assert restarts.keep(rows, "ulb_accuracy")[(10, 1)]["seed"] == 1  # the oracle reads the pool labels
    gain, two_se, draws = restarts.paired({0: 0.97, 1: 0.90, 2: 0.5}, {0: 0.93, 1: 0.92})
    assert draws == [0, 1] and gain == pytest.approx(0.01) and two_se == pytest.approx(0.06)
    assert restarts.verdict(gain, two_se) == "not passed"
    assert restarts.verdict(0.02, 0.01) == "passed" and restarts.verdict(0.0005, 0.0001) == "not passed"
    assert restarts.verdict(0.5, float("nan")) == "not passed"  # one draw: no SE, no decision


def test_cluster_naming_gives_the_tenth_name_by_elimination():
    import numpy as np
    import cluster_naming

    centroids = np.eye(3)  # three clusters along the axes
    # labelled images: class 0 near axis 0; classes 1 AND 2 both nearest axis 1 (an atypical "2")
    emb = np.array([[1.0, 0.1, 0.0], [0.1, 1.0, 0.0], [0.0, 0.9, 0.5]])
    names = cluster_naming.name_clusters(centroids, emb, np.array([0, 1, 2]))
    assert names.tolist() == [0, 1, 2]  # one-to-one: axis 2 is left for class 2, though it is not its nearest
    assert cluster_naming.name_clusters(centroids, emb[:2], np.array([0, 1])).tolist() == [0, 1, -1]
