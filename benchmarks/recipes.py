"""Compare training recipes honestly: on a dev split carved out of the *training* file, never on held-out data.

    python benchmarks/recipes.py --train ../shared/data/mrpc/train.csv --output runs/recipes-mrpc \
        --recipe "plain: --refit no" --recipe "refit: --refit yes" --recipe "average 3: --average-checkpoints 3"

The training file is split once (stratified by label, seed 7, `--dev-fraction` held out as "dev"); each recipe
(`NAME: tuneship train flags`) trains on the rest with the defaults plus its flags, and is scored on dev. A
recipe already in `OUTPUT/results.jsonl` is not run again, so an interrupted comparison resumes. The table
printed at the end is what picks a default; the validation file of a data set is then scored once, by the
chosen default, and never takes part in the choice.
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


def run_recipe(name: str, flags: str, fit: Path, dev: Path, output: Path, extra: str) -> dict:
    from tuneship.cli import build_parser, config_from_args
    from tuneship.serving import evaluate
    from tuneship.trainer import TorchClassifier, TrainConfig, train

    folder = output / name.replace(" ", "-")
    argv = ["train", "--train", str(fit), "--output", str(folder), "--overwrite", *shlex.split(extra), *shlex.split(flags)]
    args = build_parser().parse_args(argv)
    config = config_from_args(TrainConfig, args, getattr(args, "config", None))
    started = time.perf_counter()
    result = train(config)
    minutes = (time.perf_counter() - started) / 60
    scores = evaluate(TorchClassifier.from_checkpoint(result.output_dir), dev)
    return {"recipe": name, "flags": flags, "dev_accuracy": scores["accuracy"], "dev_f1": scores["f1"],
            "split_accuracy": result.metrics["accuracy"], "split_f1": result.metrics["f1"], "minutes": minutes,
            "refit": result.metrics.get("refit"), "averaged": result.metrics.get("averaged_epochs"),
            "learning_rate": result.config.learning_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, help="the training file (the held-out validation file stays out)")
    parser.add_argument("--output", required=True, help="folder for the split, the runs and results.jsonl")
    parser.add_argument("--recipe", action="append", required=True, help='"NAME: tuneship train flags"')
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--common", default="", help="flags every recipe gets (e.g. --max-length 128)")
    args = parser.parse_args()
    output = Path(args.output)
    fit, dev = split(args.train, output, args.dev_fraction)
    results_file = output / "results.jsonl"
    done = {json.loads(line)["recipe"]: json.loads(line) for line in results_file.read_text().splitlines()} \
        if results_file.is_file() else {}
    for recipe in args.recipe:
        name, _, flags = recipe.partition(":")
        name = name.strip()
        if name not in done:
            done[name] = run_recipe(name, flags.strip(), fit, dev, output, args.common)
            with open(results_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(done[name]) + "\n")
    print(f"\n{args.train}: fit {fit} / dev {dev} (seed 7, {args.dev_fraction:.0%} held out as dev)\n")
    print("| recipe | flags | dev accuracy | dev F1 | selection-split accuracy / F1 | minutes |")
    print("|---|---|---|---|---|---|")
    for name in (recipe.partition(":")[0].strip() for recipe in args.recipe):
        r = done[name]
        print(f"| {name} | `{r['flags']}` | {r['dev_accuracy']:.4f} | {r['dev_f1']:.4f} | "
              f"{r['split_accuracy']:.4f} / {r['split_f1']:.4f} | {r['minutes']:.1f} |")


if __name__ == "__main__":
    main()
