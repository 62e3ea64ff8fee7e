"""engine/fastjson.py writes and reads what the json package does, through the same C codec."""

from __future__ import annotations

import json

import pytest

from engine import fastjson

VALUES = [
    {"id": "ab" * 32, "state": "running", "pid": 4242, "exit_code": None, "oom": False, "created": 1764950000.25},
    {"env": ["PATH=/bin", "LANG=C.UTF-8"], "name": 'café ☃ "quoted"\n\ttabbed', "nested": {"a": [[], {}, -0.0]}},
    [1e300, -3, True, "", "\u0000"],
]


@pytest.mark.parametrize("value", VALUES)
def test_the_same_text_and_the_same_values_as_json(value):
    assert fastjson.dumps(value) == json.dumps(value)
    assert fastjson.loads(json.dumps(value)) == value
    assert fastjson.loads(json.dumps(value, indent=2) + "\n") == value  # files written for people too
    assert fastjson.loads(json.dumps(value).encode()) == value


@pytest.mark.parametrize("text", ["", "  \n", "{", '{"a": 1} {"b": 2}', "nul", "[1,]", '"raw \x01 control"'])
def test_what_is_not_json_is_a_value_error(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        fastjson.loads(text)


def test_what_json_cannot_write_is_a_type_error():
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        fastjson.dumps({"a": {1}})
