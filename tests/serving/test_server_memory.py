"""benchmarks/server_memory.py: a real `tuneship serve` on a tiny bundle, its memory read through a burst."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "server_memory.py"


def test_the_server_memory_table_has_a_row_per_moment_with_figures(pair_bundle):
    result = subprocess.run([sys.executable, str(SCRIPT), "--bundle", str(pair_bundle), "--runtimes", "onnxruntime",
                             "--rounds", "1", "--clients", "2", "--rows", "4", "--quiet-s", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| onnxruntime |")]
    assert [r.split("|")[2].strip() for r in rows] == ["fresh", "round 1: right after the burst",
                                                       "round 1: 1 s idle after it", "round 1: 1 s of small requests later"], result.stdout
    for row in rows:
        current, peak = (float(x) for x in re.findall(r"\| (\d+) ", row + " "))
        assert 0 < current <= peak
