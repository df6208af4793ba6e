"""The shape the architecture promises (docs/architecture.md), checked on the source."""

import re
from pathlib import Path

import gankit

SRC = Path(gankit.__file__).parent


def sources():
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), path.read_text()


def test_exactly_one_loop_calls_a_models_training_step():
    callers = [name for name, text in sources() if re.search(r"\.training_step\(", text)]
    assert callers == ["engine/trainer.py"]


def test_table_front_ends_build_no_optimizer_and_call_no_backward():
    for name, text in sources():
        if name.startswith("tabular/"):
            assert ".backward(" not in text, name
            assert not re.search(r"torch\.optim\.\w+\(", text), name
            assert "zero_grad" not in text, name
