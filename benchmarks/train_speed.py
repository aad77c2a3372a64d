"""Training speed: tuneship's dynamic padding against the tutorials' `padding="max_length", max_length=512`.

Same model, same examples, same batch size and the same optimiser step, in one run; the two setups
alternate batch by batch so that machine noise hits both alike. Prints a Markdown table.

    python benchmarks/train_speed.py                      # MRPC from ../shared/data, else the bundled examples
    python benchmarks/train_speed.py --steps 10 --batch-size 16 --model default
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding

from tuneship.trainer.classification import load_classification_data
from tuneship.trainer.classification import TRUNCATION
from tuneship.trainer.models import resolve_model

REPO = Path(__file__).resolve().parents[1]
MRPC = REPO.parent / "shared" / "data" / "mrpc" / "train.csv"
EXAMPLES = REPO / "examples" / "relevance" / "train.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(MRPC if MRPC.is_file() else EXAMPLES))
    parser.add_argument("--model", default="default")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6, help="timed optimiser steps per setup (after one warm-up step)")
    parser.add_argument("--max-length", type=int, default=256, help="tuneship's truncation length (the default)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = load_classification_data(args.data, validation_split=0.2)
    model_path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=len(data.label_names))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()

    rng = np.random.default_rng(0)
    count = args.batch_size * (args.steps + 1)
    rows = data.train.select(rng.choice(len(data.train), size=count, replace=False))
    texts, labels = list(rows["text"]), list(rows["label"])
    pairs = list(rows["text_pair"]) if data.columns.is_pair else None
    setups = {
        "dynamic padding (tuneship)": tokenizer(texts, pairs, truncation=TRUNCATION, max_length=args.max_length),
        "padding='max_length', 512 (tutorial)": tokenizer(texts, pairs, truncation=True, max_length=512, padding="max_length"),
    }
    collator = DataCollatorWithPadding(tokenizer)
    seconds = {name: 0.0 for name in setups}
    tokens = {name: [] for name in setups}
    for step in range(args.steps + 1):  # step 0 warms up each setup and is not timed
        for name, encoded in setups.items():
            start_row = step * args.batch_size
            features = [
                {key: encoded[key][i] for key in encoded} | {"labels": labels[i]}
                for i in range(start_row, start_row + args.batch_size)
            ]
            batch = collator(features)
            started = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            if step:
                seconds[name] += time.perf_counter() - started
                tokens[name].append(batch["input_ids"].shape[1])

    timed = args.batch_size * args.steps
    print(f"\nTraining speed on {Path(args.data).parent.name}/{Path(args.data).name}, {args.model} model, "
          f"batch {args.batch_size}, {args.steps} timed steps each, {torch.get_num_threads()} threads\n")
    print("| setup | padded length per batch (mean) | examples/s | speed-up |")
    print("| --- | --- | --- | --- |")
    baseline = timed / seconds["padding='max_length', 512 (tutorial)"]
    for name in setups:
        rate = timed / seconds[name]
        print(f"| {name} | {np.mean(tokens[name]):.0f} | {rate:.1f} | {rate / baseline:.1f}x |")
    dynamic = timed / seconds["dynamic padding (tuneship)"]
    print(f"\nAt this rate, 3 epochs over {len(data.train) + len(data.validation)} rows take "
          f"{3 * (len(data.train) + len(data.validation)) / dynamic / 60:.1f} min (training steps only).")


if __name__ == "__main__":
    main()
