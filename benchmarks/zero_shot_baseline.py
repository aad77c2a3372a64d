"""The baseline a fine-tuned pair classifier must beat: the untouched base model's cosine similarity.

    python benchmarks/zero_shot_baseline.py --train examples/relevance/train.csv --test examples/relevance/test.csv \
        [--model default] [--checkpoint runs/relevance-minilm]

Each text of a pair is embedded by the base model as sentence-transformers embeds it (mean of the token
vectors, normalised); the pair's score is the cosine of its two embeddings. The threshold that best
separates the classes on the *training* rows is then applied to the test rows. With `--checkpoint`, the
fine-tuned model is scored on the same test rows, and both are printed side by side, with the accuracy per
`kind` column when the file has one.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np


def embed(texts: list[str], model, tokenizer, batch_size: int = 64) -> np.ndarray:
    import torch

    vectors = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=256,
                          return_tensors="pt")
        with torch.inference_mode():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vectors.append(torch.nn.functional.normalize(mean, dim=-1).numpy())
    return np.concatenate(vectors)


def pair_scores(rows, columns, model, tokenizer) -> np.ndarray:
    texts = [str(r.values[columns.text]) for r in rows]
    pairs = [str(r.values[columns.text_pair]) for r in rows]
    unique = sorted(set(texts) | set(pairs))
    index = {text: i for i, text in enumerate(unique)}
    vectors = embed(unique, model, tokenizer)
    return np.array([vectors[index[a]] @ vectors[index[b]] for a, b in zip(texts, pairs)])


def best_threshold(scores: np.ndarray, positive: np.ndarray) -> float:
    """The cut that maximises accuracy on these rows (midpoints between sorted scores)."""
    order = np.sort(np.unique(scores))
    cuts = np.concatenate([[order[0] - 1e-6], (order[1:] + order[:-1]) / 2, [order[-1] + 1e-6]])
    accuracy = [np.mean((scores > cut) == positive) for cut in cuts]
    return float(cuts[int(np.argmax(accuracy))])


def per_kind(rows, correct: np.ndarray) -> dict[str, float]:
    groups = defaultdict(list)
    for record, ok in zip(rows, correct):
        groups[str(record.values.get("kind", "all"))].append(bool(ok))
    return {kind: float(np.mean(oks)) for kind, oks in sorted(groups.items())}


def main() -> None:
    from transformers import AutoModel, AutoTokenizer

    from tuneship.data.classification import positive_label_id
    from tuneship.data.columns import detect_columns, label_text
    from tuneship.data.records import column_names, read_records
    from tuneship.trainer.models import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--checkpoint", help="a fine-tuned pair classifier to score on the same rows")
    args = parser.parse_args()

    train_rows, test_rows = read_records(args.train), read_records(args.test)
    columns = detect_columns(column_names(train_rows), args.train)
    labels = sorted({label_text(r.values[columns.label]) for r in train_rows})
    positive = labels[positive_label_id(labels, None)]
    path = resolve_model(args.model)
    model, tokenizer = AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)

    truth = {name: np.array([label_text(r.values[columns.label]) == positive for r in rows])
             for name, rows in (("train", train_rows), ("test", test_rows))}
    threshold = best_threshold(pair_scores(train_rows, columns, model, tokenizer), truth["train"])
    baseline = pair_scores(test_rows, columns, model, tokenizer) > threshold
    result = {"rows": len(test_rows), "positive_label": positive, "threshold": threshold,
              "zero_shot_cosine": {"accuracy": float(np.mean(baseline == truth["test"])),
                                   "per_kind": per_kind(test_rows, baseline == truth["test"])}}
    if args.checkpoint:
        from tuneship.trainer.classification import TorchClassifier

        classifier = TorchClassifier.from_checkpoint(args.checkpoint)
        predicted = classifier.predict([str(r.values[columns.text]) for r in test_rows],
                                       [str(r.values[columns.text_pair]) for r in test_rows])
        hits = np.array([p["label"] == positive for p in predicted]) == truth["test"]
        result["fine_tuned"] = {"accuracy": float(np.mean(hits)), "per_kind": per_kind(test_rows, hits)}
    print(json.dumps(result, indent=2))
    print(f"\n| model | accuracy on {args.test} ({len(test_rows)} rows) |\n|---|---|")
    print(f"| base model, zero-shot cosine > {threshold:.3f} (fitted on {args.train}) | "
          f"{result['zero_shot_cosine']['accuracy']:.3f} |")
    if args.checkpoint:
        print(f"| fine-tuned ({args.checkpoint}) | {result['fine_tuned']['accuracy']:.3f} |")


if __name__ == "__main__":
    main()
