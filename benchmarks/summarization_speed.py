"""Summarization speed: PyTorch `generate` against the bundle's ONNX graphs with the KV cache, one document at a time.

    python benchmarks/summarization_speed.py --model runs/scitldr --bundle runs/scitldr-onnx \
        --data ../shared/data/summarization/validation.csv

Prints a markdown table: per search (greedy, beams), the latency per document (p50, p95), the
tokens generated per second, the speed-up over PyTorch, and the share of documents whose ONNX summary
is PyTorch's word for word. Backends take turns document by document, so that machine noise hits
both alike; both run with the same thread count.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", dest="checkpoint", required=True, help="the fine-tuned checkpoint folder (PyTorch)")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--data", required=True, help="CSV/JSONL with a document column")
    parser.add_argument("--documents", type=int, default=24, help="documents timed (default: 24)")
    parser.add_argument("--beams", default="1,4", help="searches to time, as beam counts (default: 1,4)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from tuneship.data.summarization import read_summaries
    from tuneship.serving.summarization import Summarizer
    from tuneship.trainer.summarization import TorchSummarizer

    torch.set_num_threads(args.threads)
    onnx = Summarizer.from_bundle(args.bundle, threads=args.threads)
    pytorch = TorchSummarizer.from_checkpoint(args.checkpoint)
    examples, _ = read_summaries(args.data, require_summary=False)
    documents = [e.document for e in examples[: args.documents]]
    onnx.summaries(documents[:1])
    pytorch.summaries(documents[:1])  # warm-up

    weights = sum(p.stat().st_size for p in Path(args.checkpoint).glob("*.safetensors"))
    files = onnx.manifest.models[onnx.precision]["size_bytes"]
    print(f"{len(documents)} documents, {args.threads} threads; sizes: PyTorch {weights / 1e6:.1f} MB, "
          f"ONNX {files / 1e6:.1f} MB\n")
    print("| search | backend | p50 ms | p95 ms | tokens/s | speed-up | identical to PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for beams in [int(b) for b in args.beams.split(",")]:
        times = {"pytorch": [], "onnx": []}
        tokens = {"pytorch": 0, "onnx": 0}
        texts = {"pytorch": [], "onnx": []}
        for document in documents:
            start = time.perf_counter()
            ids = pytorch.generate_ids([document], num_beams=beams)[0]
            times["pytorch"].append(time.perf_counter() - start)
            tokens["pytorch"] += len(ids)
            texts["pytorch"].append(pytorch.tokenizer.decode(ids, skip_special_tokens=True).strip())
            start = time.perf_counter()
            ids = onnx.generate_ids([document], num_beams=beams)[0]
            times["onnx"].append(time.perf_counter() - start)
            tokens["onnx"] += len(ids)
            texts["onnx"].append(onnx.decode(ids))
        base = np.median(times["pytorch"])
        same = np.mean([a == b for a, b in zip(texts["onnx"], texts["pytorch"])])
        search = "greedy" if beams == 1 else f"{beams} beams"
        for name in ("pytorch", "onnx"):
            t = np.array(times[name]) * 1000
            print(f"| {search} | {name} | {np.percentile(t, 50):.0f} | {np.percentile(t, 95):.0f} | "
                  f"{tokens[name] / sum(times[name]):.0f} | {base * 1000 / np.percentile(t, 50):.2f}x | "
                  f"{'' if name == 'pytorch' else f'{same:.0%}'} |")


if __name__ == "__main__":
    main()
