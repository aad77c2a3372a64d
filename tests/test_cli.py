"""The real `tuneship` command, run as users run it: subprocesses, files on disk, JSON on stdout."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, ticket_rows, write_csv
from tuneship.data.records import read_records

TUNESHIP = str(Path(sys.executable).with_name("tuneship"))


def run(*args: str, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([TUNESHIP, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_help_lists_subcommands_without_importing_torch():
    code = (
        "import sys; from tuneship.cli import build_parser; build_parser();"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    help_text = run("--help").stdout
    for command in ("train", "evaluate", "predict"):
        assert command in help_text


def test_train_evaluate_predict_from_the_command_line(tiny_model, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 0.001\nnum_train_epochs: 2\nmax-length: 48\nlogging_steps: 5\n")
    output = tmp_path / "tickets"
    result = run(
        "train", "--base-model", str(tiny_model), "--train", str(EXAMPLES / "tickets/train.csv"),
        "--validation", str(EXAMPLES / "tickets/validation.csv"), "--output", str(output),
        "--config", str(config), "--epochs", "1", "--batch-size", "32",
    )
    assert "columns: text='text', label='label'" in result.stdout
    assert f"Model saved to {output}" in result.stdout and "tuneship predict --model" in result.stdout
    saved = json.loads((output / "train_config.json").read_text())
    assert (saved["learning_rate"], saved["num_train_epochs"], saved["max_length"]) == (0.001, 1.0, 48), "flags override the file"

    metrics_file = tmp_path / "out" / "metrics.json"
    printed = json.loads(run("evaluate", "--model", str(output), "--data", str(EXAMPLES / "tickets/validation.csv"),
                             "--output", str(metrics_file)).stdout)
    assert {"accuracy", "f1", "precision", "recall", "per_class"} <= set(printed)
    assert printed == json.loads(metrics_file.read_text()) and printed["num_examples"] == len(read_records(EXAMPLES / "tickets/validation.csv"))

    prediction = json.loads(run("predict", "--model", str(output), "--text", "The export button crashes").stdout)
    assert prediction["label"] in prediction["probabilities"] and not prediction["truncated"]


def test_bad_input_is_one_clear_line_and_exit_code_2(tmp_path):
    rows = ticket_rows(10)
    rows[3]["label"] = ""
    bad = write_csv(tmp_path / "bad.csv", rows)
    result = run("train", "--train", str(bad), "--output", str(tmp_path / "m"), check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"error: {bad}: 1 row(s) with empty or missing values (column 'label': 1 empty or missing (rows 4))" in result.stderr
    assert not (tmp_path / "m").exists()

    result = run("train", "--train", str(tmp_path / "missing.csv"), check=False)
    assert result.returncode == 2 and "missing.csv: no such file" in result.stderr
    result = run("train", "--base-model", str(tmp_path / "nope"), "--train", str(EXAMPLES / "tickets/train.csv"),
                 "--output", str(tmp_path / "n"), check=False)
    assert result.returncode == 2 and f"--base-model {tmp_path / 'nope'}: no such folder" in result.stderr
    result = run("evaluate", "--model", str(tmp_path), "--data", str(bad), check=False)
    assert result.returncode == 2 and "not a model checkpoint (no config.json)" in result.stderr


def test_a_mistyped_choice_or_command_gets_did_you_mean_not_the_whole_usage():
    result = run("train", "--task", "text-clasification", "--train", "x.csv", check=False)
    assert result.returncode == 2 and "did you mean 'text-classification'?" in result.stderr
    assert len(result.stderr.splitlines()) == 2 and "usage:" not in result.stderr
    result = run("trian", check=False)
    assert result.returncode == 2 and "did you mean 'train'?" in result.stderr


def test_a_bundle_and_a_checkpoint_given_for_each_other_are_named(pair_bundle, pair_checkpoint, tmp_path):
    data = write_csv(tmp_path / "d.csv", ticket_rows(4))
    result = run("evaluate", "--model", str(pair_bundle), "--data", str(data), check=False)
    assert result.returncode == 2 and "this is an ONNX bundle (it has tuneship.json), not a checkpoint; pass it as " \
        "--bundle" in result.stderr
    result = run("evaluate", "--bundle", str(pair_checkpoint), "--data", str(data), check=False)
    assert result.returncode == 2 and "this is a checkpoint, not a bundle; pass it as --model" in result.stderr
    result = run("evaluate", "--bundle", str(tmp_path / "nowhere"), "--data", str(data), check=False)
    assert result.returncode == 2 and "nowhere: no such bundle folder" in result.stderr


def test_unknown_config_option_is_named(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"learning_rate": 1e-4, "epochz": 3}))
    result = run("train", "--config", str(config), "--train", "x.csv", check=False)
    assert result.returncode == 2 and "unknown option(s) epochz" in result.stderr


@pytest.mark.slow
def test_two_process_data_parallel_training_saves_one_model(tiny_model, tmp_path):
    output = tmp_path / "ddp"
    train = write_csv(tmp_path / "train.csv", ticket_rows(30))  # 24 training rows after the split
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "tuneship.cli",
        "train", "--base-model", str(tiny_model), "--train", str(train), "--output", str(output),
        "--epochs", "2", "--batch-size", "8", "--learning-rate", "1e-3", "--logging-steps", "1",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("columns: text='text'") == 2, "both ranks ran"
    assert result.stdout.count("Model saved to") == 1, "only rank 0 saves"
    history = json.loads((output / "log_history.json").read_text())
    # 24 rows, 8 per process and 2 processes: 2 steps per epoch (one process would take 3).
    assert max(e["step"] for e in history) == 4
    metrics = json.loads((output / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["num_examples"] == 6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".ddp")] == [], "no staging folders left"


@pytest.mark.slow
def test_default_model_beats_the_majority_class_on_the_bundled_examples(relevance_checkpoint):
    data = str(EXAMPLES / "relevance/validation.csv")
    metrics = json.loads(run("evaluate", "--model", str(relevance_checkpoint), "--data", data).stdout)
    baseline = 0.5  # the validation set is balanced
    assert metrics["accuracy"] >= baseline + 0.25, metrics
    assert metrics["f1"] >= 0.7, metrics


def test_one_spelling_per_concept_across_every_subcommand():
    """The flags of every subcommand, listed from the parser: one concept has one spelling everywhere."""
    import argparse

    from tuneship.cli import RENAMED_FLAGS, build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    flags = {name: {s: a for a in sub._actions for s in a.option_strings if s.startswith("--")}
             for name, sub in commands.items()}
    refused = {  # a second spelling of a concept that has its own flag
        "--checkpoint": "--model", "--ckpt": "--model", "--bundle-dir": "--bundle", "--onnx": "--bundle",
        "--out": "--output", "--output-dir": "--output", "--output-file": "--output", "--input-file": "--data",
        "--input": "--data", "--data-file": "--data", "--eval-data": "--data", "--validation-data": "--validation",
        "--calibration-data": "--calibration", "--batch": "--batch-size", "--bs": "--batch-size",
        "--num-threads": "--threads", "--dtype": "--precision", "--backend-engine": "--engine",
    }
    for name, given in flags.items():
        for flag, instead in refused.items():
            assert flag not in given, f"tuneship {name} spells {instead} as {flag}"
    assert {"--base-model", "--output"} <= set(flags["train"]) and {"--model", "--output"} <= set(flags["export"])
    assert "--model" not in flags["train"], "a command's --model is a checkpoint it reads; train starts from --base-model"
    for name in ("predict", "evaluate", "serve", "space"):
        assert "--bundle" in flags[name], name
    for name in ("predict", "evaluate", "bench"):
        assert "--model" in flags[name], f"tuneship {name}: a checkpoint is --model"
        assert "--data" in flags[name], f"tuneship {name}: input data is --data"
    for name in ("train", "export"):
        assert "--validation" in flags[name], f"tuneship {name}: validation rows are --validation"
    assert "--calibration" in flags["export"]
    for name, renamed in RENAMED_FLAGS.items():  # an old spelling is taken, never listed: the help shows one
        for old, new in renamed.items():
            assert old not in flags[name] and new in flags[name], f"tuneship {name}: {old} -> {new}"
    assert flags["predict"]["--batch-size"].default == flags["evaluate"]["--batch-size"].default == 32


def test_a_renamed_flag_still_works_with_a_deprecation_note_and_a_mistyped_one_names_the_closest(capsys):
    from tuneship.cli import RENAMED_FLAGS, main, renamed_flags

    assert renamed_flags(["bench", "--checkpoint", "m", "--bundle=b"], {"--checkpoint": "--model"}, "tuneship bench") \
        == ["bench", "--model", "m", "--bundle=b"]
    assert renamed_flags(["--checkpoint=m"], {"--checkpoint": "--model"}, "p") == ["--model=m"]
    assert "--checkpoint is deprecated and will be removed; use --model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # bench gets --model: its next complaint is the missing --bundle
        main(["bench", "--checkpoint", "runs/m"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "use --model" in err and "required: --bundle" in err, err
    with pytest.raises(SystemExit) as exited:  # train's --checkpoint is no alias of anything
        main(["train", "--checkpoint", "runs/m"])
    assert "deprecated" not in capsys.readouterr().err
    assert renamed_flags(["train", "--model", "default"], RENAMED_FLAGS["train"], "tuneship train") == \
        ["train", "--base-model", "default"]
    assert "--model is deprecated and will be removed; use --base-model" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--bundle", "b", "--text", "a", "--outptu", "x.csv"])
    assert exited.value.code == 2 and "did you mean --output?" in capsys.readouterr().err


def test_the_old_spellings_of_input_data_still_work_with_a_deprecation_note(capsys):
    """export --validation-data/--calibration-data and predict --input, renamed for one vocabulary (#24): taken for
    one release, with a note, and given to the option under its new name."""
    from tuneship.cli import RENAMED_FLAGS, build_parser, config_from_args, main, renamed_flags
    from tuneship.export.config import ExportConfig

    argv = ["export", "--model", "m", "--output", "o", "--validation-data", "dev.csv", "--calibration-data=train.csv"]
    args = build_parser().parse_args(renamed_flags(argv, RENAMED_FLAGS["export"], "tuneship export"))
    config = config_from_args(ExportConfig, args)
    assert (config.validation_data, config.calibration_data) == ("dev.csv", "train.csv")
    err = capsys.readouterr().err
    assert "--validation-data is deprecated and will be removed; use --validation" in err, err
    assert "--calibration-data is deprecated and will be removed; use --calibration" in err, err
    argv = ["predict", "--bundle", "b", "--input", "in.csv", "--output", "out.csv"]
    args = build_parser().parse_args(renamed_flags(argv, RENAMED_FLAGS["predict"], "tuneship predict"))
    assert (args.data, args.output) == ("in.csv", "out.csv")
    assert "--input is deprecated and will be removed; use --data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # through main: renamed, then the missing --bundle/--model is the error
        main(["predict", "--input", "in.csv"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "use --data" in err and "unrecognized" not in err, err
    with pytest.raises(SystemExit) as exited:  # evaluate always spelled it --data: no alias there
        main(["evaluate", "--bundle", "b", "--input", "in.csv"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "deprecated" not in err, err
