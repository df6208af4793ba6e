import json

import pytest

from gankit.bench import run_benchmark
from gankit.bench.common import format_table, mean_se


def test_throughput_quick_records_protocol_and_environment(tmp_path):
    result = run_benchmark("throughput", quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert saved["ratio_best"] == result["ratio_best"]  # what was printed is what was saved
    assert len(saved["steps_per_second"]["gankit"]) == 2
    # the engine's step and the hand-written loop are one algorithm (k=1 D step, one G step on
    # the same networks and batch): counted independently, they must do the same work — an
    # extra forward or backward pass in the engine would show here
    assert saved["step_mflop"] == pytest.approx(saved["plain_step_mflop"], rel=1e-6)
    env = saved["environment"]
    assert {"torch", "numpy", "cpu", "date", "command", "gankit"} <= set(env)


def test_helpers():
    assert mean_se([1.0, 3.0]) == (2.0, 1.0)
    assert mean_se([5.0]) == (5.0, 0.0)
    table = format_table(["a", "bb"], [[1, 2]])
    assert table.splitlines()[0] == "| a | bb |" and table.splitlines()[1] == "|---|----|"


def test_ddp_bench_runs_one_and_two_processes(tmp_path):
    """The scaling protocol launches torchrun with 1 and 2 processes and reads both rates."""
    result = run_benchmark("ddp", quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "ddp.json").read_text())
    rates = saved["steps_per_second"]
    assert sorted(rates) == ["1", "2"] and all(len(r) == 1 for r in rates.values())
    assert saved["speedup"] == result["speedup"]  # what was printed is what was saved
    assert "global batch 64" in saved["protocol"]
