"""Validation rules on canonical records, table-driven."""

from __future__ import annotations

import pytest

from hubtools.records import message
from hubtools.validate import ValidationConfig, check_record

U, A, S = (lambda c: message("user", c)), (lambda c: message("assistant", c)), (lambda c: message("system", c))
CALL = message("assistant", "", tool_calls='[{"type": "function", "function": {"name": "f", "arguments": "{}"}}]')
TOOL = message("tool", "42")


def codes(record, kind, **config) -> list[str]:
    return [i.code.slug for i in check_record({"hubtools_index": 7, **record}, kind, ValidationConfig(**config))]


class TestSft:
    @pytest.mark.parametrize(("messages", "expected"), [
        ([U("hi"), A("yo")], []),
        ([S("be brief"), U("hi"), A("yo")], []),
        ([U("hi"), CALL, TOOL, A("it is 42")], []),
        ([U("hi")], ["role_order"]),
        ([A("yo")], ["role_order"]),
        ([U("hi"), A("yo"), S("late")], ["role_order"]),
        ([U("hi"), TOOL, A("yo")], ["role_order"]),
        ([U("hi"), A(" \n ")], ["empty_text"]),
        ([], ["missing_field"]),
        ([message("robot", "x"), A("y")], ["unknown_role"]),
    ])
    def test_rules(self, messages, expected):
        assert codes({"messages": messages}, "sft") == expected

    def test_prompt_only_data_may_end_on_a_user_turn(self):
        assert codes({"messages": [U("q1"), U("q2")]}, "sft", prompt_only=True) == []

    def test_answers_only_data_may_have_no_user_turn(self):
        assert codes({"messages": [A("a1"), A("a2")]}, "sft", answers_only=True) == []

    def test_max_chars_is_configurable_and_the_issue_says_the_limit(self):
        record = {"messages": [U("hi"), A("x" * 50)]}
        assert codes(record, "sft", max_chars=10) == ["too_long"]
        assert codes(record, "sft", max_chars=100) == []
        issue = check_record({"hubtools_index": 3, **record}, "sft", ValidationConfig(max_chars=10))[0]
        assert str(issue).startswith("E202 record 3: messages[1] has 50 characters, over the limit of 10")


class TestPreference:
    @pytest.mark.parametrize(("record", "expected"), [
        ({"prompt": [U("q")], "chosen": [A("good")], "rejected": [A("bad")]}, []),
        ({"prompt": [], "chosen": [A("good")], "rejected": [A("bad")]}, ["no_prompt"]),
        ({"prompt": [S("sys")], "chosen": [A("good")], "rejected": [A("bad")]}, ["no_prompt"]),
        ({"prompt": [U("q")], "chosen": [A("same ")], "rejected": [A("same")]}, ["same_replies"]),
        ({"prompt": [U("q")], "chosen": [A("")], "rejected": [A("bad")]}, ["empty_text"]),
        ({"prompt": [U("q")], "chosen": [], "rejected": [A("bad")]}, ["missing_field"]),
        ({"prompt": [U("q")], "chosen": [U("x")], "rejected": [A("bad")]}, ["role_order"]),
    ])
    def test_rules(self, record, expected):
        assert codes(record, "preference") == expected


class TestUnpairedAndText:
    def test_unpaired_needs_a_boolean_label(self):
        ok = {"prompt": [U("q")], "completion": [A("a")], "label": True}
        assert codes(ok, "unpaired") == []
        assert codes({**ok, "label": "yes"}, "unpaired") == ["wrong_type"]

    def test_text_must_not_be_blank(self):
        assert codes({"text": "hello"}, "text") == []
        assert codes({"text": "\t"}, "text") == ["empty_text"]


def test_every_issue_of_a_record_is_reported_not_just_the_first():
    record = {"prompt": [U("q")], "chosen": [A("")], "rejected": [A(" ")]}
    assert codes(record, "preference") == ["empty_text", "empty_text"]
