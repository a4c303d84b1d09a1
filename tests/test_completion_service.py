"""CompletionService in process against the fake OpenAI server over real HTTP: replies, failures, privacy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gpt_ls.actions.editor import DocumentSnapshot
from gpt_ls.api.http import ClientCache
from gpt_ls.completions.service import CompletionService, Cursor
from gpt_ls.pieces import Text
from gpt_ls.settings import Settings
from tests.support.fakeopenai import Error, FakeOpenAI, Reply

ROOT = Path("/w")
TEXT = "def add(a, b):\n    ret\n"
CURSOR = TEXT.index("ret") + 3


def doc(path: str = "/w/src/add.py", text: str = TEXT, language: str = "python") -> DocumentSnapshot:
    return DocumentSnapshot("file://" + path, Text(text), 1, language, path)


@pytest.fixture
def messages() -> list[tuple[str, str]]:
    return []


@pytest_asyncio.fixture
async def service(messages: list[tuple[str, str]]) -> AsyncIterator[CompletionService]:
    clients = ClientCache()
    yield CompletionService(lambda: clients, lambda text, kind: messages.append((kind, text)))
    await clients.aclose()


def settings(api: FakeOpenAI, **kw: object) -> Settings:
    values: dict[str, object] = {"completions": True, "base_url": api.url, "api_key": "sk-test-0123456789",
                                 "completion_debounce_ms": 0, **kw}
    return Settings(**values)  # type: ignore[arg-type]


async def suggest(service: CompletionService, api: FakeOpenAI, d: DocumentSnapshot | None = None,
                  offset: int = CURSOR, invoked: bool = True, **kw: object) -> str | None:
    return await service.suggest(Cursor(d or doc(), offset, invoked), settings(api, **kw), ROOT)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [("", None), ("  \n\t ", None), ("def add(a, b):\n    ret", None),
     ("```python\n    return a + b\n```", "urn a + b"), ("urn a + b\n\ndef sub(a, b):", "urn a + b")],
)
async def test_replies_become_the_text_to_insert(service: CompletionService, api: FakeOpenAI, reply: str,
                                                 expected: str | None) -> None:
    api.script(Reply(text=reply))
    assert await suggest(service, api) == expected
    assert len(api.chat_requests()) == 1


async def test_a_429_backs_off_quietly_with_one_message_until_it_recovers(
        service: CompletionService, api: FakeOpenAI, messages: list[tuple[str, str]]) -> None:
    api.script(Error(status=429, message="Rate limit reached", type="requests", headers={"Retry-After": "20"}))
    assert await suggest(service, api) is None
    assert len(api.chat_requests()) == 1  # no retry by the SDK: the user is typing
    assert service.scheduler.backoff_until - service.scheduler._clock() == pytest.approx(20, abs=1)
    for _ in range(3):  # while backing off: no request, no message
        assert await suggest(service, api, offset=CURSOR - 1) is None
    assert len(api.chat_requests()) == 1
    [(kind, text)] = messages
    assert kind == "warning" and text.startswith("gpt-ls completions paused for 20 s: Rate limit reached (429)")
    service.scheduler.backoff_until = 0  # the back-off ended
    api.script(Reply(text="urn 1"))
    assert await suggest(service, api) == "urn 1"
    api.script(Error(status=429, headers={"Retry-After": "1"}))
    assert await suggest(service, api, offset=CURSOR - 1) is None
    assert len(messages) == 2  # recovered in between: the next 429 is told once more


async def test_other_errors_are_told_once_per_kind(service: CompletionService, api: FakeOpenAI,
                                                   messages: list[tuple[str, str]]) -> None:
    for _ in range(3):
        api.script(Error(status=500))
        assert await suggest(service, api) is None
    api.script(Error(status=404, message="The model does not exist", type="invalid_request_error",
                     code="model_not_found"))
    assert await suggest(service, api) is None
    assert [kind for kind, _ in messages] == ["warning", "warning"]
    assert "sk-test" not in " ".join(text for _, text in messages)


async def test_a_slow_reply_is_dropped_when_a_newer_request_comes(service: CompletionService,
                                                                   api: FakeOpenAI) -> None:
    api.script(Reply(text="urn slow", first_delay=5), Reply(text="rn a"))
    slow = asyncio.ensure_future(suggest(service, api))
    await asyncio.wait_for(_until(lambda: len(api.chat_requests()) == 1), 5)
    fast = await suggest(service, api, d=doc(text=TEXT.replace("ret", "retu")), offset=CURSOR + 1)
    assert await slow is None and fast == "rn a"
    assert service.scheduler.counters.superseded == 1


async def _until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("path", ["/w/.env", "/w/config/.env.local", "/w/certs/key.pem", "/w/.ssh/id_rsa",
                                  "/w/build/gen.py"])
async def test_secret_and_excluded_files_never_produce_a_request(service: CompletionService, api: FakeOpenAI,
                                                                 path: str) -> None:
    assert await suggest(service, api, d=doc(path), index_exclude=("build/",)) is None
    assert api.requests == []


async def test_completions_off_sends_nothing(service: CompletionService, api: FakeOpenAI) -> None:
    assert await suggest(service, api, completions=False) is None
    assert api.requests == []


async def test_related_open_files_of_the_same_language_are_excerpted_but_not_secrets(
        service: CompletionService, api: FakeOpenAI) -> None:
    others = [doc("/w/src/util.py", "def helper():\n    pass\n"), doc("/w/.env", "SECRET=1\n", "python"),
              doc("/w/README.md", "# readme\n", "markdown")]
    api.script(Reply(text="urn 1"))
    await service.suggest(Cursor(doc(), CURSOR, True), settings(api), ROOT, others)
    user = api.chat_requests()[0].body["messages"][1]["content"]
    assert "Related file src/util.py:\ndef helper():" in user
    assert "SECRET" not in user and "readme" not in user


async def test_fim_mode_through_the_service_and_the_fakes_plain_json_answer(service: CompletionService,
                                                                            api: FakeOpenAI) -> None:
    api.script(Reply(text="urn a + b\n\nprint(1)"))
    assert await suggest(service, api, completion_mode="fim", completion_model="qwen2.5-coder") == "urn a + b"
    [req] = api.fim_requests()
    assert (req.body["model"], req.body["prompt"], req.body["suffix"], req.body["stop"]) == (
        "qwen2.5-coder", "def add(a, b):\n    ret", "\n", ["\n\n\n"])
    import openai

    client = openai.AsyncOpenAI(base_url=api.url, api_key="sk-test-0123456789", max_retries=0)
    api.script(Reply(text="x + 1"))
    plain = await client.completions.create(model="m", prompt="a = ", suffix="\n", max_tokens=8)
    assert plain.choices[0].text == "x + 1"
    await client.close()


async def test_an_encoding_already_loaded_trims_the_window_by_exact_counts(
        service: CompletionService, api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    from gpt_ls import tokens

    class OneTokenALine:  # stands in for o200k_base: one token per line
        def encode_ordinary(self, text: str) -> list[int]:
            return [0] * text.count("\n")

    monkeypatch.setitem(tokens._loaded, "o200k_base", OneTokenALine())
    text = "x\n" * 2000 + "here\n" + "y\n" * 1000  # 2 bytes a "token": the byte bound would send 150 bytes
    cursor = text.index("here")
    api.script(Reply(text="x"))
    await service.suggest(Cursor(doc(text=text), cursor, True), settings(api, completion_context_tokens=200), ROOT)
    user = api.chat_requests()[0].body["messages"][1]["content"]
    before, after = user.split("\n\n", 1)[1].split("<CURSOR>")
    assert before == "x\n" * 150  # 3/4 of 200 "tokens", counted
    assert after == "here\n" + "y\n" * 49
