"""Code–class agreement: the Hungarian matching against hand-made permuted codes."""

import numpy as np
import pytest

from gankit.errors import DataError
from gankit.metrics.codes import best_matching, contingency


def test_a_permuted_code_agrees_fully():
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    codes = (labels + 1) % 3  # code 1 is class 0, code 2 class 1, code 0 class 2
    accuracy, mapping = best_matching(codes, labels)
    assert accuracy == 1.0 and mapping == {0: 2, 1: 0, 2: 1}


def test_one_mistake_and_a_greedy_trap():
    # code 0 holds 2 of class 0 and 3 of class 1; code 1 holds 3 of class 1 only. Greedy
    # (code 0 -> class 1) would score 3/8; the best one-to-one matching is 0->0, 1->1: 5/8.
    codes = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    accuracy, mapping = best_matching(codes, labels)
    assert accuracy == pytest.approx(5 / 8) and mapping == {0: 0, 1: 1}
    assert contingency(codes, labels).tolist() == [[2, 3], [0, 3]]


def test_more_code_values_than_classes():
    # 3 code values for 2 classes: one code value stays unmatched and its samples count as errors
    codes = np.array([0, 0, 1, 1, 2, 2])
    labels = np.array([1, 1, 0, 0, 0, 1])
    accuracy, mapping = best_matching(codes, labels)
    assert accuracy == pytest.approx(4 / 6) and mapping == {0: 1, 1: 0}


@pytest.mark.parametrize(
    ("codes", "labels", "message"),
    [
        ([0, 1], [0], "same nonzero length"),
        ([], [], "same nonzero length"),
        ([0.5, 1.0], [0, 1], "integers"),
        ([0, -1], [0, 1], "non-negative"),
    ],
)
def test_bad_input(codes, labels, message):
    with pytest.raises(DataError, match=message):
        best_matching(np.array(codes), np.array(labels))
