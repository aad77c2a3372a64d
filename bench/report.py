"""The benchmark's outputs: bench.json (every figure), bench.md (tables for a README), bench.png (bars)."""

from __future__ import annotations

import importlib.metadata
import io
import os
import platform
import time
from pathlib import Path

from ..files import write_file, write_json
from ..serving.plan import bucket_of
from ..serving.session import available_cores

PACKAGES = ("tuneship", "torch", "transformers", "onnxruntime", "openvino", "optimum-onnx", "tokenizers", "numpy")
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def _cpu() -> tuple[str, list[str]]:
    """The CPU's model name and which of the instruction sets that matter here it has (Linux; elsewhere a guess)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = fields.get("flags", "").split()
    return fields.get("model name", platform.machine()), [flag for flag in ISA_FLAGS if flag in flags]


def machine_info(threads: int) -> dict:
    """The machine and library versions a benchmark ran on: figures mean little without them."""
    model, isa = _cpu()
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"cpu": model, "isa": isa, "logical_cores": os.cpu_count(), "available_cores": available_cores(),
            "threads": threads, "platform": platform.platform(), "python": platform.python_version(),
            "versions": versions, "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def _speedup(value: float) -> str:
    return f"{value:.2f}x"


def markdown(result) -> str:
    """Tables ready for a README: the fastest backend per shape (the verdict), then backends, latency at the smallest
    batch, throughput at every batch size."""
    config, machine, rows = result.config, result.machine, result.rows
    names = list(result.backends)
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if k != "tuneship")
    cell = {(r["backend"], r["seq_len"], r["batch_size"]): r for r in rows}
    first = config.batch_sizes[0]
    lines = [
        "## tuneship bench",
        "",
        f"`{Path(config.checkpoint).name}` (PyTorch) against `{Path(config.bundle).name}` (ONNX); {machine['cpu']}, "
        f"{config.threads} threads for every backend ({machine['available_cores']} cores available); {versions}. "
        "Each backend runs in its own process; they take turns in short blocks so that machine noise hits all alike. "
        "Speed-ups are against PyTorch eager fp32 on the same shape (ratio of median latencies).",
    ]
    shapes = [(s, b) for s in config.seq_lens for b in config.batch_sizes]
    lines += winners(result, shapes, cell)  # the verdict first, the tables it comes from after
    lines += ["", "### Backends", ""]
    first_facts = result.backends[names[0]]
    quality = "exact_match" if "exact_match" in first_facts else "accuracy"  # QA or classification
    scored = quality in first_facts
    header = "| backend | runtime | precision | size on disk (MB) | peak memory (MB) |"
    if scored:
        header += (" exact match | F1 | answer spans as PyTorch's |" if quality == "exact_match"
                   else " accuracy | F1 | agreement with PyTorch |")
    lines += [header, "|---" * (header.count("|") - 1) + "|"]
    for name in names:
        facts = result.backends[name]
        line = (f"| {name} | {facts['runtime']} {facts['version']} | {facts['precision']} | "
                f"{facts['size_bytes'] / 1e6:.1f} | {facts['peak_rss_mb']:.0f} |")
        if scored:
            line += f" {facts[quality]:.4f} | {facts['f1']:.4f} | {100 * facts['agreement_with_torch']:.1f}% |"
        lines.append(line)
    if scored:
        lines += ["", f"Scored on the first {result.backends[names[0]]['scored_rows']} rows of `{config.data}`."]
    for title, prefix in (("end to end, from raw strings (tokenization included)", ""), ("model only", "model_")):
        lines += ["", f"### Latency at batch {first}, {title}: p50 / p95 / p99 ms (speed-up)", "",
                  "| backend | " + " | ".join(f"{s} tokens" for s in config.seq_lens) + " |",
                  "|---" * (len(config.seq_lens) + 1) + "|"]
        for name in names:
            cells = [cell[name, s, first] for s in config.seq_lens]
            lines.append(f"| {name} | " + " | ".join(
                f"{r[prefix + 'latency_p50_ms']:.1f} / {r[prefix + 'latency_p95_ms']:.1f} / {r[prefix + 'latency_p99_ms']:.1f}"
                f" ({_speedup(r[prefix + 'speedup_vs_torch'])})" for r in cells) + " |")
    for title, prefix in (("end to end", ""), ("model only", "model_")):
        lines += ["", f"### Throughput, {title}: inputs/s (speed-up)", "",
                  "| backend | " + " | ".join(f"{s} tok x {b}" for s, b in shapes) + " |",
                  "|---" * (len(shapes) + 1) + "|"]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(
                f"{cell[name, s, b][prefix + 'throughput']:.0f} ({_speedup(cell[name, s, b][prefix + 'speedup_vs_torch'])})"
                for s, b in shapes) + " |")
    for name, reason in result.skipped.items():
        lines += ["", f"Not run: {name} ({reason})."]
    return "\n".join(lines) + "\n"


def winners(result, shapes: list[tuple[int, int]], cell: dict) -> list[str]:
    """Per shape: the fastest backend end to end and model only and, where bundle-default ran, the candidate its
    plan serves that length with and its speed as a share of the fastest other backend's. Fastest means the lowest
    median latency, as for the speed-ups: a median is not moved by the few calls a busy machine slows down."""
    plan = result.backends.get("bundle-default", {}).get("plan")
    others = [name for name in result.backends if name != "bundle-default"]
    header = "| shape | fastest end to end (median ms per call) | fastest model only |"
    if plan:
        header += " bundle-default serves with | bundle-default / fastest other, end to end | model only |"
    lines = ["", "### Fastest backend per shape", "", header, "|---" * (header.count("|") - 1) + "|"]
    for s, b in shapes:
        row = f"| {s} tok x {b} |"
        best = {}
        for prefix in ("", "model_"):
            best[prefix] = min(others, key=lambda name: cell[name, s, b][prefix + "latency_p50_ms"])
            row += f" {best[prefix]} ({cell[best[prefix], s, b][prefix + 'latency_p50_ms']:.1f} ms) |"
        if plan:
            bounds = sorted(map(int, plan))
            row += f" {plan[str(bounds[bucket_of(bounds, s)])]} |"
            for prefix in ("", "model_"):
                median = prefix + "latency_p50_ms"
                ratio = cell[best[prefix], s, b][median] / cell["bundle-default", s, b][median]
                row += f" {ratio:.2f}x |"
        lines.append(row)
    return lines


def plot(result) -> bytes:
    """PNG: latency at the smallest batch and throughput at the largest, end to end, per backend and length, and
    each backend's quality (accuracy, or exact match) where the rows were scored; every axis starts at zero."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    import numpy as np

    config, names = result.config, list(result.backends)
    cell = {(r["backend"], r["seq_len"], r["batch_size"]): r for r in result.rows}
    first, last = config.batch_sizes[0], config.batch_sizes[-1]
    panels = ((f"Latency p50 at batch {first} (ms, lower is better)", first, "latency_p50_ms"),
              (f"Throughput at batch {last} (inputs/s, higher is better)", last, "throughput"))
    facts = {name: result.backends[name] for name in names}
    quality = next((key for key in ("accuracy", "exact_match") if all(key in f for f in facts.values())), None)
    fig, axes = plt.subplots(1, 3 if quality else 2, figsize=(18 if quality else 13, 4.8),
                             gridspec_kw={"width_ratios": [3, 3, 2] if quality else [1, 1]})
    x = np.arange(len(config.seq_lens))
    width = 0.8 / len(names)
    for axis, (title, batch_size, key) in zip(axes, panels):
        for i, name in enumerate(names):
            values = [cell[name, s, batch_size][key] for s in config.seq_lens]
            bars = axis.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
            labels = [_speedup(cell[name, s, batch_size]["speedup_vs_torch"]) for s in config.seq_lens]
            axis.bar_label(bars, labels=labels, fontsize=7, rotation=90, padding=2)
        axis.set_xticks(x, [f"{s} tokens" for s in config.seq_lens])
        axis.set_title(title, fontsize=10)
        axis.margins(y=0.2)
        axis.grid(axis="y", alpha=0.3)
    if quality:  # the same backends' quality on the scored rows, from zero like the others
        axis, top = axes[2], 100.0 if quality == "exact_match" else 1.0
        values = [facts[name][quality] for name in names]
        bars = axis.bar(np.arange(len(names)), values, 0.7, color=[f"C{i}" for i in range(len(names))])
        axis.bar_label(bars, labels=[f"{v:.3f}" if top == 1.0 else f"{v:.1f}" for v in values], fontsize=7,
                       rotation=90, padding=2)
        axis.set_xticks(np.arange(len(names)), [])
        axis.set_ylim(0, top * 1.15)
        axis.set_title(f"{quality.replace('_', ' ').capitalize()} on the scored rows (higher is better)", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(names), fontsize=9, frameon=False)
    fig.suptitle(f"tuneship bench, end to end: {result.machine['cpu']}, {config.threads} threads", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_report(result, output: Path) -> Path:
    """Write bench.json, bench.md and bench.png into `output` (each file atomically); returns `output`."""
    write_json(output / "bench.json", result.to_dict())
    write_file(output / "bench.md", markdown(result))
    write_file(output / "bench.png", plot(result))
    return output
