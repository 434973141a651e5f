"""The docs' tables are copied from stored results by benchmarks/tables.py: each table's numbers are the JSON's, and
the Markdown between a table's markers in the docs is what the script writes from the committed file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import load_script

ROOT = Path(__file__).resolve().parents[1]

#: (kind, committed results file, doc, section): the docs' generated tables whose source is committed
GENERATED = [("memory", "benchmarks/results/attack_memory.json", "docs/results.md", "memory"),
             ("tune-standings", "benchmarks/results/protocol_tune_effnet-200.json", "docs/results.md", "tune-standings"),
             ("tune-standings", "benchmarks/results/protocol_tune_mnist-cnn-100.json", "docs/results.md",
              "tune-standings-mnist-cnn-100"),
             ("tune-standings", "benchmarks/results/protocol_tune_mnist-cnn-b-100.json", "docs/results.md",
              "tune-standings-mnist-cnn-b-100"),
             ("tune-standings", "benchmarks/results/protocol_tune_mnist-cnn-robust-100.json", "docs/results.md",
              "tune-standings-mnist-cnn-robust-100"),
             ("tune-standings", "benchmarks/results/protocol_tune_mnist-cnn-200.json", "docs/results.md",
              "tune-standings-mnist-cnn-200"),
             ("decisions", "benchmarks/results/protocol_test_effnet-200.json", "docs/results.md", "heldout"),
             ("visibility", "benchmarks/results/protocol_test_effnet-200.json", "docs/results.md", "heldout-visibility"),
             ("passes", "benchmarks/results/protocol_test_effnet-200.json", "docs/results.md", "heldout-passes"),
             ("decisions", "benchmarks/results/protocol_test_effnet-200.unseen.json", "docs/results.md", "heldout-unseen"),
             ("decisions", "benchmarks/results/protocol_test_mnist-cnn-100.json", "docs/results.md",
              "heldout-mnist-cnn-100"),
             ("visibility", "benchmarks/results/protocol_test_mnist-cnn-100.json", "docs/results.md",
              "heldout-mnist-cnn-100-visibility"),
             ("passes", "benchmarks/results/protocol_test_mnist-cnn-100.json", "docs/results.md",
              "heldout-mnist-cnn-100-passes")] + [
    (kind, "benchmarks/results/protocol_test_mnist-cnn-b-100.json", "docs/results.md", f"heldout-mnist-cnn-b-100{tail}")
    for kind, tail in (("decisions", ""), ("visibility", "-visibility"), ("passes", "-passes"))] + [
    (kind, "benchmarks/results/protocol_test_mnist-cnn-robust-100.json", "docs/results.md",
     f"heldout-mnist-cnn-robust-100{tail}")
    for kind, tail in (("decisions", ""), ("visibility", "-visibility"), ("passes", "-passes"))]


def test_the_memory_table_copies_each_methods_bytes():
    s = json.loads((ROOT / "benchmarks/results/attack_memory.json").read_text())
    text = load_script("benchmarks/tables.py").memory(s)
    rows = [r for r in text.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) == len(s["methods"])
    for (name, m), r in zip(s["methods"].items(), rows):
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[0].strip("`") == name and float(cells[3]) == pytest.approx(m["marginal_over_estimate"], abs=0.005)
        assert float(cells[2]) == pytest.approx(m["marginal_per_image"] / 2**20, abs=0.5)


@pytest.mark.parametrize(("kind", "source", "doc", "section"), GENERATED, ids=[g[3] for g in GENERATED])
def test_the_docs_hold_what_the_script_writes_from_the_committed_results(kind, source, doc, section):
    tables = load_script("benchmarks/tables.py")
    text = tables.KINDS[kind](json.loads((ROOT / source).read_text()))
    body = (ROOT / doc).read_text().split(f"<!-- tables:{section} -->\n", 1)[1].split(f"\n<!-- /tables:{section} -->")[0]
    assert body == text
