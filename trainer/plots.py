"""Training-curve and confusion-matrix figures saved beside the checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_training_curve(log_history: Sequence[dict], metric: str, path: Path) -> Path:
    """Training loss per logged step, validation loss and `metric` per epoch."""
    log_history = [e for e in log_history if not e.get("refit")]  # the refit's steps restart from 0; not plotted
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [e for e in log_history if "eval_loss" in e]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        left.plot(*zip(*train), label="training loss", color="tab:blue", alpha=0.8)
    if evals:
        left.plot([e["step"] for e in evals], [e["eval_loss"] for e in evals], "o-", label="validation loss", color="tab:orange")
        key = f"eval_{metric}"
        if any(key in e for e in evals):
            right.plot([e["epoch"] for e in evals if key in e], [e[key] for e in evals if key in e], "o-", color="tab:green")
            best = max((e for e in evals if key in e), key=lambda e: e[key] if metric != "loss" else -e[key])
            right.axvline(best["epoch"], color="gray", linestyle="--", label=f"kept: epoch {best['epoch']:.0f}")
            right.legend()
    left.set(xlabel="step", ylabel="loss", title="Loss")
    left.legend()
    right.set(xlabel="epoch", ylabel=metric, title=f"Validation {metric}")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path) -> Path:
    """Counts with true labels on rows, predictions on columns, each cell also as a row share."""
    counts = np.asarray(matrix)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 1.1 * len(labels) + 2)
    fig, axis = plt.subplots(figsize=(size, size * 0.85))
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=axis, fraction=0.046, label="share of true class")
    axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set(xlabel="predicted", ylabel="true", title="Confusion matrix (validation)")
    for (row, column), count in np.ndenumerate(counts):
        color = "white" if shares[row, column] > 0.5 else "black"
        axis.text(column, row, f"{count}\n{shares[row, column]:.0%}", ha="center", va="center", color=color, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
