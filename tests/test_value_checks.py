"""electra_core.value_checks: the host-side range check both implementations call."""
from __future__ import annotations

import numpy as np
import pytest

from electra_core.value_checks import check_values_in_range


def test_values_inside_the_range_pass():
    check_values_in_range("input_ids", np.array([[0, 5], [9, 1]]), 0, 10, "vocab_size")
    check_values_in_range("input_ids", np.zeros((0, 3), np.int32), 0, 1, "vocab_size")  # empty


@pytest.mark.parametrize("bad, index", [(10, (1, 0)), (-1, (0, 1))])
def test_the_first_offending_value_and_its_index_are_named(bad, index):
    ids = np.array([[0, 3], [4, 2]])
    ids[index] = bad
    with pytest.raises(ValueError) as raised:
        check_values_in_range("input_ids", ids, 0, 10, "vocab_size")
    message = str(raised.value)
    assert f"input_ids value {bad} at index {index}" in message
    assert "[0, 10)" in message and "vocab_size" in message


def test_allowed_values_outside_the_range_pass_and_others_still_fail():
    labels = np.array([0, -100, 2])
    check_values_in_range("labels", labels, 0, 3, "num_labels", allowed=(-100,))
    with pytest.raises(ValueError, match=r"labels value -5 at index \(1,\).*\(or -100\)"):
        check_values_in_range("labels", np.array([0, -5, -100]), 0, 3, "num_labels", allowed=(-100,))


def test_bool_and_list_inputs_are_checked_as_integers():
    check_values_in_range("attention_mask", [True, False], 0, 2, "0 or 1")
    with pytest.raises(ValueError, match="value 1 at index"):
        check_values_in_range("token_type_ids", np.array([False, True]), 0, 1, "type_vocab_size")
