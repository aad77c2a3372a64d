"""Answer-sentence pairs from SQuAD, for a transfer step before WikiQA (TANDA, Garg et al. 2020; QNLI is made this way).

    python benchmarks/squad_sentences.py --squad ../shared/data/squad/train.json --output runs/squad-sentences.csv

Every context is split into sentences; each question is paired with every sentence of its context, labelled 1 if the
sentence holds the first answer's start, else 0. The columns are WikiQA's (`question`, `sentence`, `label`), so a model
trained on this file (`tuneship train --train runs/squad-sentences.csv ...`) can be fine-tuned on WikiQA with
`--base-model` pointing at it. Only SQuAD's training file should be used: its validation questions stay unseen.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
from pathlib import Path

SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
ABBREVIATION = re.compile(r"\b(?:[A-Za-z]|Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|Inc|Co|Ltd|Mt|Gen|Col|Lt|No|Rev|Prof)\.$")


def sentences(context: str) -> list[tuple[int, str]]:
    """(start offset, sentence) for each sentence of `context`, split after `.`, `!` or `?` before a capital, but not
    after an initial or a title such as "v.", "J." or "Dr."."""
    spans, start = [], 0
    for match in SENTENCE_END.finditer(context):
        if ABBREVIATION.search(context[start : match.start()]):
            continue
        spans.append((start, context[start : match.start()]))
        start = match.end()
    spans.append((start, context[start:]))
    return [(offset, text.strip()) for offset, text in spans if text.strip()]


def pairs(squad: dict) -> list[dict]:
    """Rows of (question, sentence, label) for every question of a SQuAD-format dict that has an answer."""
    rows = []
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            split = sentences(paragraph["context"])
            for qa in paragraph["qas"]:
                if not qa.get("answers"):
                    continue
                answer = qa["answers"][0]["answer_start"]
                holder = max(offset for offset, _ in split if offset <= answer)
                rows += [{"question": qa["question"], "sentence": text, "label": int(offset == holder)}
                         for offset, text in split]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", required=True, help="a SQuAD-format JSON file (its training split)")
    parser.add_argument("--output", required=True, help="the CSV to write (question, sentence, label)")
    args = parser.parse_args(argv)
    try:
        rows = pairs(json.loads(Path(args.squad).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.exit(f"error: {args.squad}: not a readable SQuAD-format file ({error.__class__.__name__}: {error})")
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["question", "sentence", "label"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, output)
    positive = sum(row["label"] for row in rows)
    print(f"{output}: {len(rows)} pairs, {positive} with the answer ({positive / max(len(rows), 1):.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
