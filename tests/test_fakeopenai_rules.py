"""The fake model's rules: every request whose body holds a text gets the same answer."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.support.fakeopenai import FakeOpenAI, Reply


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def ask(api: FakeOpenAI, text: str) -> str:
    reply = post(f"{api.url}/chat/completions", {"model": "m", "messages": [{"role": "user", "content": text}]})
    return str(reply["choices"][0]["message"]["content"])


def test_a_rule_answers_every_matching_request_before_the_queue(api: FakeOpenAI) -> None:
    api.script(Reply(text="queued"))
    api.rule("斐波那契", Reply(text="rule 🌀"))
    assert [ask(api, "# 斐波那契 1"), ask(api, "# 斐波那契 2"), ask(api, "other")] == [
        "rule 🌀", "rule 🌀", "queued"
    ]


def test_rules_posted_over_http_replace_the_earlier_ones(api: FakeOpenAI) -> None:
    api.rule("a", Reply(text="old"))
    assert post(f"{api.url}/_rules", [{"needle": "b", "kind": "reply", "text": "new"}]) == {"rules": 1}
    assert [ask(api, "b"), ask(api, "a")] == ["new", "Echo: a"]
