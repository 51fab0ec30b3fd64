"""The CLI explains itself: every option has help text, `run` comes first, `config show` names each value's source,
the seed report's old model names still work with a note."""
import argparse
import json

import pytest

from mnistlab.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (command path, parser) pair below `parser`, the top level included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))


def test_every_option_of_every_command_has_help_with_its_default():
    parsers = list(walk(build_parser()))
    assert len(parsers) > 15  # every command and sub-command was reached
    for path, parser in parsers:
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)):
                continue
            where = f"mnistlab {' '.join(path)} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{where} has no help text"
            has_default = action.default not in (None, False, argparse.SUPPRESS) and action.option_strings
            if has_default:
                assert "default" in action.help, f"{where}: its help does not give its default ({action.default!r})"


def test_run_comes_first_and_the_help_ends_with_examples(cli):
    code, out, _ = cli("--help")
    assert code == 0
    commands = [line.split()[0] for line in out.split("COMMAND\n", 1)[1].splitlines()
                if line.startswith("    ") and not line.startswith("     ")]
    assert commands[0] == "run"
    examples = out.split("examples:\n", 1)[1].strip().splitlines()
    assert len(examples) == 5 and all(e.strip().startswith("mnistlab ") for e in examples)


def test_stage_help_names_the_stages(cli):
    from mnistlab.pipeline import ordered_stages

    code, out, _ = cli("run", "--help")
    flat = " ".join(out.split())
    assert code == 0 and all(name in flat for name in ordered_stages())


def test_config_show_gives_each_fields_source(cli, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"weight_decay": 0.01}))
    code, out, err = cli("config", "show", "fewlabel", "--dataset", "fashion-mnist", "--budget", "smoke",
                         "--config", cfg, "--set", "lr=0.05", "--json")
    assert code == 0, err
    res = json.loads(out)
    c = res["config"]
    assert res["method"] == "freematch"  # the clothes' recipe
    assert c["epochs"]["source"] == "recipe" and c["epochs"]["value"] == 15.0
    assert c["weight_decay"] == {"value": 0.01, "source": "file"}
    assert c["lr"] == {"value": 0.05, "source": "flag"} and c["dataset"]["source"] == "flag"
    assert c["train_subset"]["source"] == "budget"  # the smoke preset trains on a subset
    assert c["seed"]["source"] == "default"
    code, out, _ = cli("config", "show", "supervised", "--budget", "full")
    assert code == 0 and "epochs" in out and "budget" in out
    code, _, err = cli("config", "show", "gan", "--method", "fixmatch")
    assert code == 2 and "unknown gan method 'fixmatch'" in err


@pytest.mark.parametrize("old,new", [("seed-mlp", "report-mlp"), ("seed-cnn", "report-cnn"),
                                     ("seed-rotnet", "report-rotnet")])
def test_old_report_model_names_still_work_with_a_deprecation_note(old, new, capsys):
    from mnistlab.api import resolve_config
    from mnistlab.models import MODELS

    method = {"seed-mlp": "mlp-features", "seed-cnn": "cnn", "seed-rotnet": "rotnet"}[old]
    assert new in MODELS.names() and old not in MODELS.names()
    assert MODELS.get(old) is MODELS.get(new)
    capsys.readouterr()
    cfg = resolve_config(method, overrides={"model": old})
    assert cfg.model == new
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and old in err[0] and new in err[0] and "deprecated" in err[0]


def test_gan_eval_without_classifier_says_what_it_trains_before_it_starts(cli, tmp_path, monkeypatch):
    import mnistlab.api as api
    from mnistlab.errors import MnistlabError

    run = tmp_path / "gan"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"dataset": "mnist"}))
    monkeypatch.setattr(api, "classifier_cache_root", lambda: tmp_path / "cache")  # empty: it will train
    monkeypatch.setattr(api, "calibrate", lambda batch: 0.5)  # 0.5 s a step

    def stop(*a, **k):
        raise MnistlabError("training would start here")

    monkeypatch.setattr(api, "cached_classifier", stop)
    code, _, err = cli("gan", "eval", "--run", run)
    lines = err.strip().splitlines()
    assert code == 2 and "training would start here" in lines[-1]
    assert "no --classifier: training a supervised cnn on mnist" in lines[0]
    steps = int(lines[0].split(" steps of")[0].rsplit(" ", 1)[1])
    assert steps == 1407 and f"≈ {steps * 0.5 / 60:.0f} min" in lines[0]  # 3 epochs × 60000 / 128
