"""Compare training recipes honestly: on a dev split carved out of the *training* file, never on held-out data.

    python benchmarks/recipes.py --train ../shared/data/mrpc/train.csv --output runs/recipes-mrpc --seeds 1,2,3 \
        --baseline plain-5e-5 --recipe plain-5e-5 --recipe defaults --recipe selection \
        --recipe "my-idea: --learning-rate 3e-5 --warmup-ratio 0.06"

A recipe is a name from `RECIPES` (the tutorial's plain script at 2e-5 and at 5e-5, tuneship's defaults, its
earlier best-epoch selection, and the candidates measured so far), or `NAME: tuneship train flags` for one of your own.

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
import statistics
import sys
import time
from pathlib import Path

from tuneship.errors import TuneshipError

# The tutorial's Trainer script: every fit row, a fixed number of epochs, the last kept (dev only scores it).
PLAIN = ("--validation {dev} --epochs 3 --warmup-ratio 0 --early-stopping-patience 0 --refit no "
         "--training-arg eval_strategy=no --training-arg save_strategy=no --training-arg load_best_model_at_end=false")
RECIPES = {
    "plain": f"{PLAIN} --learning-rate 2e-5",  # the GLUE tutorial's learning rate
    "plain-5e-5": f"{PLAIN} --learning-rate 5e-5",  # TrainingArguments' default learning rate
    "plain-5e-5-warmup": f"{PLAIN} --learning-rate 5e-5 --warmup-ratio 0.1",
    "plain-5e-5-mean": f"{PLAIN} --learning-rate 5e-5 --pooling mean",  # the same, the head on the tokens' mean
    "plain-1e-4": f"{PLAIN} --learning-rate 1e-4",  # the plain script at tuneship's learning rate for MiniLM's size
    "defaults": "",  # `tuneship train` with nothing set (since 2026-12-07: the plain script at the automatic rate)
    "selection": "--keep best",  # the defaults before: the best epoch on a 20% split, early stopping, warm-up, refit
    "no-refit": "--keep best --refit no",
    "average-3": "--keep best --average-checkpoints 3",
}


def parse_recipes(given: list[str]) -> dict[str, str]:
    """`NAME` (from `RECIPES`) or `NAME: flags`, as name -> flags; a clear error for an unknown name or a repeat."""
    recipes = {}
    for text in given:
        name, colon, flags = text.partition(":")
        name = name.strip()
        if not colon and name not in RECIPES:
            raise TuneshipError(f"--recipe {name!r}: no such recipe; known: {', '.join(RECIPES)}, or give "
                                f"'NAME: tuneship train flags'")
        if not name or name in recipes:
            raise TuneshipError(f"--recipe {text!r}: {'a recipe needs a name' if not name else 'given twice'}")
        recipes[name] = flags.strip() if colon else RECIPES[name]
    return recipes


def parse_seeds(text: str) -> list[int]:
    """`1,2,3` as [1, 2, 3]: at least one seed, each a whole number of 0 or more, none twice."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise TuneshipError(f"--seeds {text!r}: give comma-separated whole numbers, e.g. 1,2,3") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise TuneshipError(f"--seeds {text!r}: give at least one seed (0 or more), none twice; 3 or more to compare "
                            "recipes by their spread")
    return seeds


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
    if len(ids) < 2:
        raise TuneshipError(f"{train}: every row has the label {labels[0]!r} (column {columns.label!r}); a recipe "
                            "study needs rows of at least two classes")
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
    out = {"seeds": len(runs), "minutes": sum(r["minutes"] for r in runs) / len(runs)}
    for key in ("dev_accuracy", "dev_f1"):
        values = [r[key] for r in runs]
        out[key] = statistics.fmean(values)
        out[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out


def same_flags(first: str, second: str) -> bool:
    """Whether two flag strings set the same options, in any order (`--a 1 --b 2` and `--b 2 --a 1`)."""
    def options(text: str) -> list[tuple[str, ...]]:
        groups: list[list[str]] = []
        for token in shlex.split(text):
            if token.startswith("--") or not groups:
                groups.append([token])
            else:
                groups[-1].append(token)
        return sorted(map(tuple, groups))

    return options(first) == options(second)


def study(train: str, output: Path, recipes: dict[str, str], seeds: list[int], dev_fraction: float = 0.2,
          common: str = "") -> tuple[Path, Path, dict[str, dict]]:
    """Run each recipe once per seed (skipping runs already in `output/results.jsonl`): the split, and per recipe
    its `summary` over the seeds."""
    fit, dev = split(train, output, dev_fraction)
    results_file = output / "results.jsonl"
    done = {}
    if results_file.is_file():
        for line in results_file.read_text().splitlines():
            run = json.loads(line)
            done[(run["recipe"], run.get("seed", 42))] = run
    for (name, seed), run in done.items():
        if name in recipes and seed in seeds and not same_flags(run["flags"], recipes[name]):
            raise TuneshipError(f"{results_file}: recipe {name!r} (seed {seed}) was run with the flags "
                                f"{run['flags']!r}, not {recipes[name]!r}: give the new recipe another name")
    for seed in seeds:  # seed by seed, so that an interrupted study has every recipe at the first seeds
        for name, flags in recipes.items():
            if (name, seed) not in done:
                done[name, seed] = run_recipe(name, flags, fit, dev, output, common, seed)
                with open(results_file, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(done[name, seed]) + "\n")
    return fit, dev, {name: summary([done[name, seed] for seed in seeds]) for name in recipes}


def table(recipes: dict[str, str], results: dict[str, dict], baseline: str | None) -> str:
    """The Markdown table: mean ± sd per recipe, and against `baseline` the F1 gain and whether it beats the spread."""
    lines = ["| recipe | flags | dev accuracy (mean ± sd) | dev F1 (mean ± sd) | against the baseline (F1) | minutes per run |",
             "|---|---|---|---|---|---|"]
    base = results.get(baseline) if baseline else None
    for name, row in results.items():
        against = ""
        if base is not None and name != baseline:
            gain, spread = row["dev_f1"] - base["dev_f1"], max(row["dev_f1_sd"], base["dev_f1_sd"])
            against = f"{gain:+.4f} ({'beyond' if abs(gain) > spread else 'within'} the spread {spread:.4f})"
        lines.append(f"| {name} | `{recipes[name]}` | {row['dev_accuracy']:.4f} ± {row['dev_accuracy_sd']:.4f} | "
                     f"{row['dev_f1']:.4f} ± {row['dev_f1_sd']:.4f} | {against} | {row['minutes']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="the training file (the held-out validation file stays out)")
    parser.add_argument("--output", required=True, help="folder for the split, the runs and results.jsonl")
    parser.add_argument("--recipe", action="append", required=True,
                        help=f'a known recipe ({", ".join(RECIPES)}) or "NAME: tuneship train flags"')
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds; each recipe trains once per seed")
    parser.add_argument("--baseline", help="the recipe the others are compared with (the tutorial's plain recipe)")
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--common", default="", help="flags every recipe gets (e.g. --max-length 128)")
    args = parser.parse_args(argv)
    try:
        recipes, seeds = parse_recipes(args.recipe), parse_seeds(args.seeds)
        if args.baseline and args.baseline not in recipes:
            raise TuneshipError(f"--baseline {args.baseline!r} is not one of the recipes given: {', '.join(recipes)}")
        if not 0 < args.dev_fraction < 1:
            raise TuneshipError(f"--dev-fraction {args.dev_fraction}: give a fraction between 0 and 1")
        fit, dev, results = study(args.train, Path(args.output), recipes, seeds, args.dev_fraction, args.common)
    except TuneshipError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\n{args.train}: fit {fit} / dev {dev} (seed 7, {args.dev_fraction:.0%} held out as dev); "
          f"seeds {', '.join(map(str, seeds))}\n")
    print(table(recipes, results, args.baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
