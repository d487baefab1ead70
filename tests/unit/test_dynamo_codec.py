"""The one DynamoDB codec (rollguard.adapters.dynamo): what goes in comes back as plain Python data."""

from rollguard.adapters.dynamo import from_item, to_item


def test_a_value_comes_back_as_it_went_in() -> None:
    data = {"n": 3, "x": 0.25, "s": "", "flag": True, "nested": {"ratio": 1.5, "ids": ["a", "b"]}, "counts": [1, 2.5]}

    assert from_item(to_item(data)) == data


def test_floats_are_sent_as_numbers_and_none_is_left_out() -> None:
    item = to_item({"x": 0.1, "gone": None, "n": 7})

    assert item == {"x": {"N": "0.1"}, "n": {"N": "7"}}
    assert isinstance(from_item(item)["n"], int)
