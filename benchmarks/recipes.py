"""Compare training recipes honestly: on a dev split carved out of the *training* file, never on held-out data.

    python benchmarks/recipes.py --train ../shared/data/mrpc/train.csv --output runs/recipes-mrpc --seeds 1,2,3 \
        --baseline plain --recipe "plain: --learning-rate 2e-5 --epochs 3 --early-stopping-patience 0 --refit no" \
        --recipe "defaults:" --recipe "average 3: --average-checkpoints 3"

The training file is split once (stratified by label, seed 7, `--dev-fraction` held out as "dev"); each recipe
(`NAME: tuneship train flags`) trains on the rest with the defaults plus its flags, once per seed (`--seed`:
the head's initial weights, the data order and the selection split inside the fit rows), and is scored on dev.
A run already in `OUTPUT/results.jsonl` (same recipe and seed) is not run again, so an interrupted comparison
resumes. The table printed at the end (mean and standard deviation over the seeds, and against `--baseline`:
the mean difference and whether it exceeds the larger spread of the two) is what picks a default; the validation
file of a data set is then scored once, by the chosen default, and never takes part in the choice.

`{dev}` in a recipe's flags is the dev file: the tutorial's plain recipe trains on every fit row for a fixed number
of epochs and keeps the last, which `--validation {dev}` with evaluation off and no best-epoch loading gives (dev
then only scores the model, as for every recipe):

    --recipe "plain: --validation {dev} --learning-rate 2e-5 --epochs 3 --warmup-ratio 0 --early-stopping-patience 0
              --refit no --training-arg eval_strategy=no --training-arg save_strategy=no
              --training-arg load_best_model_at_end=false"
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from pathlib import Path


def split(train: str, output: Path, fraction: float) -> tuple[Path, Path]:
    """`fit.csv` and `dev.csv` under `output/split/`: the training file's rows, stratified by label."""
    import csv

    from tuneship.data.classification import stratified_split
    from tuneship.data.columns import detect_columns, label_text
    from tuneship.data.records import column_names, read_records

    folder = output / "split"
    fit, dev = folder / "fit.csv", folder / "dev.csv"
    if fit.is_file() and dev.is_file():
        return fit, dev
    records = read_records(train)
    names = column_names(records)
    columns = detect_columns(names, train)
    labels = [label_text(r.values[columns.label]) for r in records]
    ids = {name: i for i, name in enumerate(sorted(set(labels)))}
    kept, held = stratified_split([ids[label] for label in labels], fraction, seed=7)
    folder.mkdir(parents=True, exist_ok=True)
    for path, rows in ((fit, kept), (dev, held)):
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, names)
            writer.writeheader()
            writer.writerows(records[i].values for i in rows)
    return fit, dev


def run_recipe(name: str, flags: str, fit: Path, dev: Path, output: Path, extra: str, seed: int) -> dict:
    from tuneship.cli import build_parser, config_from_args
    from tuneship.serving import evaluate
    from tuneship.trainer import TorchClassifier, TrainConfig, train

    folder = output / f"{name.replace(' ', '-')}-seed{seed}"
    argv = ["train", "--train", str(fit), "--output", str(folder), "--overwrite", "--seed", str(seed),
            *shlex.split(extra.replace("{dev}", str(dev))), *shlex.split(flags.replace("{dev}", str(dev)))]
    args = build_parser().parse_args(argv)
    config = config_from_args(TrainConfig, args, getattr(args, "config", None))
    started = time.perf_counter()
    result = train(config)
    minutes = (time.perf_counter() - started) / 60
    scores = evaluate(TorchClassifier.from_checkpoint(result.output_dir), dev)
    return {"recipe": name, "seed": seed, "flags": flags, "dev_accuracy": scores["accuracy"], "dev_f1": scores["f1"],
            "split_accuracy": result.metrics["accuracy"], "split_f1": result.metrics["f1"], "minutes": minutes,
            "refit": result.metrics.get("refit"), "averaged": result.metrics.get("averaged_epochs"),
            "learning_rate": result.config.learning_rate}


def summary(runs: list[dict]) -> dict:
    """Mean and standard deviation (over seeds) of a recipe's dev accuracy and F1."""
    import statistics

    out = {"seeds": len(runs), "minutes": sum(r["minutes"] for r in runs) / len(runs)}
    for key in ("dev_accuracy", "dev_f1"):
        values = [r[key] for r in runs]
        out[key] = statistics.fmean(values)
        out[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="the training file (the held-out validation file stays out)")
    parser.add_argument("--output", required=True, help="folder for the split, the runs and results.jsonl")
    parser.add_argument("--recipe", action="append", required=True, help='"NAME: tuneship train flags"')
    parser.add_argument("--seeds", default="42", help="comma-separated seeds; each recipe trains once per seed")
    parser.add_argument("--baseline", help="the recipe the others are compared with (the tutorial's plain recipe)")
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--common", default="", help="flags every recipe gets (e.g. --max-length 128)")
    args = parser.parse_args()
    output = Path(args.output)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    fit, dev = split(args.train, output, args.dev_fraction)
    results_file = output / "results.jsonl"
    done = {}
    if results_file.is_file():
        for line in results_file.read_text().splitlines():
            run = json.loads(line)
            done[(run["recipe"], run.get("seed", 42))] = run
    recipes = {name.strip(): flags.strip() for name, _, flags in (r.partition(":") for r in args.recipe)}
    for seed in seeds:  # seed by seed, so that an interrupted study has every recipe at the first seeds
        for name, flags in recipes.items():
            if (name, seed) not in done:
                done[name, seed] = run_recipe(name, flags, fit, dev, output, args.common, seed)
                with open(results_file, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(done[name, seed]) + "\n")
    table = {name: summary([done[name, seed] for seed in seeds]) for name in recipes}
    print(f"\n{args.train}: fit {fit} / dev {dev} (seed 7, {args.dev_fraction:.0%} held out as dev); "
          f"seeds {', '.join(map(str, seeds))}\n")
    print("| recipe | flags | dev accuracy (mean ± sd) | dev F1 (mean ± sd) | against the baseline (F1) | minutes per run |")
    print("|---|---|---|---|---|---|")
    base = table.get(args.baseline) if args.baseline else None
    for name, row in table.items():
        against = ""
        if base is not None and name != args.baseline:
            gain, spread = row["dev_f1"] - base["dev_f1"], max(row["dev_f1_sd"], base["dev_f1_sd"])
            against = f"{gain:+.4f} ({'beyond' if abs(gain) > spread else 'within'} the spread {spread:.4f})"
        print(f"| {name} | `{recipes[name]}` | {row['dev_accuracy']:.4f} ± {row['dev_accuracy_sd']:.4f} | "
              f"{row['dev_f1']:.4f} ± {row['dev_f1_sd']:.4f} | {against} | {row['minutes']:.1f} |")


if __name__ == "__main__":
    main()
