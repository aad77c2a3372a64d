"""benchmarks/recipes.py, the recipe study: recipes over seeds on a tiny random model, and its refusals."""

from __future__ import annotations

import json

import pytest

from tests.conftest import benchmark_script, ticket_rows, write_csv
from tuneship.errors import TuneshipError

@pytest.fixture(scope="module")
def recipes():
    return benchmark_script("recipes")


def test_a_study_runs_each_recipe_per_seed_prints_mean_and_spread_and_resumes(recipes, tiny_model, tmp_path, capsys):
    data = write_csv(tmp_path / "tickets.csv", ticket_rows(30))
    argv = ["--train", str(data), "--output", str(tmp_path / "study"), "--seeds", "1,2", "--baseline", "slow",
            "--common", f"--base-model {tiny_model} --epochs 1 --max-length 32 --batch-size 8",
            "--recipe", "slow: --learning-rate 1e-4", "--recipe", "fast: --learning-rate 1e-3 --refit no"]
    assert recipes.main(argv) == 0
    printed = capsys.readouterr().out
    runs = [json.loads(line) for line in (tmp_path / "study" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["recipe"], r["seed"]) for r in runs) == [("fast", 1), ("fast", 2), ("slow", 1), ("slow", 2)]
    for name in ("slow", "fast"):
        f1 = [r["dev_f1"] for r in runs if r["recipe"] == name]
        mean = sum(f1) / 2
        row = next(line for line in printed.splitlines() if line.startswith(f"| {name} |"))
        assert f"{mean:.4f} ± {abs(f1[0] - f1[1]) / 2 ** 0.5:.4f}" in row  # the mean and the sample sd over 2 seeds
    assert "the spread" in next(line for line in printed.splitlines() if line.startswith("| fast |"))
    assert recipes.main(argv) == 0  # every run is in results.jsonl: nothing trains again
    assert len((tmp_path / "study" / "results.jsonl").read_text().splitlines()) == 4
    # the same name with other flags would reuse runs of another recipe: refused, naming it
    changed = [a if a != "fast: --learning-rate 1e-3 --refit no" else "fast: --learning-rate 1e-2" for a in argv]
    assert recipes.main(changed) == 2 and "recipe 'fast' (seed 1) was run with the flags" in capsys.readouterr().err
    assert recipes.same_flags("--refit no --learning-rate 1e-3", "--learning-rate 1e-3 --refit no")


def test_known_recipes_by_name_and_bad_arguments_refused_by_name(recipes, tmp_path, capsys):
    assert recipes.parse_recipes(["plain-5e-5", "mine: --epochs 2"]) == {
        "plain-5e-5": recipes.RECIPES["plain-5e-5"], "mine": "--epochs 2"}
    assert "--learning-rate 2e-5" in recipes.RECIPES["plain"] and recipes.RECIPES["defaults"] == ""
    with pytest.raises(TuneshipError, match="--recipe 'tutorial': no such recipe; known: plain, plain-5e-5"):
        recipes.parse_recipes(["tutorial"])
    with pytest.raises(TuneshipError, match="given twice"):
        recipes.parse_recipes(["defaults", "defaults: --epochs 2"])
    for seeds in ("", "0,-1", "1,1", "one"):
        with pytest.raises(TuneshipError, match=f"--seeds {seeds!r}"):
            recipes.parse_seeds(seeds)
    one_class = write_csv(tmp_path / "one.csv", [{"text": f"ticket {i}", "label": "bug"} for i in range(10)])
    code = recipes.main(["--train", str(one_class), "--output", str(tmp_path / "s"), "--recipe", "defaults"])
    assert code == 2 and "every row has the label 'bug' (column 'label')" in capsys.readouterr().err
    code = recipes.main(["--train", str(one_class), "--output", str(tmp_path / "s"), "--recipe", "defaults",
                         "--seeds", "0"])
    assert code == 2  # seed 0 is a seed; the one-class file is still refused
    code = recipes.main(["--train", str(one_class), "--output", str(tmp_path / "s"), "--recipe", "defaults",
                         "--baseline", "plain"])
    assert code == 2 and "--baseline 'plain' is not one of the recipes given: defaults" in capsys.readouterr().err
