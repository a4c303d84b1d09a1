"""The model table, snapshot resolution, fallbacks and request parameters."""

from __future__ import annotations

import pytest

from gpt_ls.models import ModelInfo, adapt_messages, lookup_model, request_options, resolve


@pytest.mark.parametrize(
    ("name", "window", "output", "encoding", "reasoning"),
    [
        ("gpt-4", 8_192, 8_192, "cl100k_base", False),
        ("gpt-4-0314", 8_192, 8_192, "cl100k_base", False),
        ("gpt-4-0613", 8_192, 8_192, "cl100k_base", False),
        ("gpt-4-32k", 32_768, 32_768, "cl100k_base", False),
        ("gpt-4-32k-0314", 32_768, 32_768, "cl100k_base", False),
        ("gpt-3.5-turbo-0301", 4_096, 4_096, "cl100k_base", False),
        ("gpt-3.5-turbo-0613", 4_096, 4_096, "cl100k_base", False),
        ("gpt-3.5-turbo", 16_385, 4_096, "cl100k_base", False),
        ("gpt-3.5-turbo-1106", 16_385, 4_096, "cl100k_base", False),
        ("gpt-3.5-turbo-0125", 16_385, 4_096, "cl100k_base", False),
        ("gpt-4-turbo", 128_000, 4_096, "cl100k_base", False),
        ("gpt-4o", 128_000, 16_384, "o200k_base", False),
        ("gpt-4o-mini", 128_000, 16_384, "o200k_base", False),
        ("gpt-4.1", 1_047_576, 32_768, "o200k_base", False),
        ("gpt-4.1-mini", 1_047_576, 32_768, "o200k_base", False),
        ("gpt-4.1-nano", 1_047_576, 32_768, "o200k_base", False),
        ("o1", 200_000, 100_000, "o200k_base", True),
        ("o3", 200_000, 100_000, "o200k_base", True),
        ("o3-mini", 200_000, 100_000, "o200k_base", True),
        ("o4-mini", 200_000, 100_000, "o200k_base", True),
        ("gpt-5", 400_000, 128_000, "o200k_base", True),
        ("gpt-5-mini", 400_000, 128_000, "o200k_base", True),
        ("gpt-5-nano", 400_000, 128_000, "o200k_base", True),
    ],
)
def test_table(name: str, window: int, output: int, encoding: str, reasoning: bool) -> None:
    info = lookup_model(name)
    assert (info.context_window, info.max_output, info.encoding, info.reasoning) == (
        window,
        output,
        encoding,
        reasoning,
    )
    assert info.known is True
    assert info.notice is None
    assert info.name == name


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
        ("gpt-4-32k-0613", "gpt-4-32k-0613"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o1-2024-12-17", "o1"),
        ("gpt-5-2025-08-07", "gpt-5"),
        ("gpt-5.1", "gpt-5"),
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o-mini"),
        ("gpt-4omni", None),
        ("gpt-40", None),
        ("llama3.1:8b", None),
    ],
)
def test_resolve(name: str, entry: str | None) -> None:
    assert resolve(name) == entry


def test_dated_snapshot_keeps_its_own_limits() -> None:
    assert lookup_model("gpt-4o-2024-05-13").max_output == 4_096
    assert lookup_model("gpt-4o-2024-11-20").max_output == 16_384


def test_gpt5_limits_its_input() -> None:
    assert lookup_model("gpt-5-mini").max_input == 272_000
    assert lookup_model("gpt-4o").max_input is None


def test_o1_mini_takes_no_system_message() -> None:
    assert lookup_model("o1-mini").system_message is False
    assert lookup_model("o3").system_message is True


def test_unknown_model_falls_back_and_says_so() -> None:
    info = lookup_model("llama3.1:8b")
    assert info == ModelInfo(
        name="llama3.1:8b",
        context_window=8_192,
        max_output=4_096,
        encoding="cl100k_base",
        reasoning=False,
        known=False,
        notice=(
            "Model 'llama3.1:8b' is not in gpt-ls's table: assuming a context window of "
            "8,192 tokens and replies of at most 4,096 tokens, counted with cl100k_base and a "
            "tenth of the window kept spare; set contextWindow / maxOutputTokens to the "
            "server's real limits."
        ),
    )


def test_unknown_model_with_window_setting() -> None:
    info = lookup_model("mistral-small", context_window=32_000)
    assert (info.context_window, info.max_output, info.known) == (32_000, 4_096, False)
    assert info.notice == (
        "Model 'mistral-small' is not in gpt-ls's table: assuming replies of at most "
        "4,096 tokens, counted with cl100k_base and a tenth of the window kept spare; set "
        "contextWindow / maxOutputTokens to the server's real limits."
    )
    small = lookup_model("tiny", context_window=2_000)
    assert small.max_output == 1_000


def test_unknown_model_fully_configured_needs_no_notice() -> None:
    info = lookup_model("qwen2.5", context_window=32_768, max_output_tokens=8_192)
    assert (info.context_window, info.max_output, info.known, info.notice) == (
        32_768,
        8_192,
        False,
        None,
    )


def test_settings_override_the_table() -> None:
    info = lookup_model("gpt-4o", context_window=50_000, max_output_tokens=1_000)
    assert (info.context_window, info.max_output, info.known) == (50_000, 1_000, True)


def test_output_never_exceeds_window() -> None:
    assert lookup_model("gpt-4o", context_window=8_000).max_output == 8_000
    assert lookup_model("gpt-4", max_output_tokens=100_000).max_output == 8_192


def test_window_override_below_max_input_drops_it() -> None:
    assert lookup_model("gpt-5", context_window=100_000).max_input is None
    assert lookup_model("gpt-5", context_window=300_000).max_input == 272_000


def test_request_options_classic() -> None:
    info = lookup_model("gpt-4o")
    assert request_options(info, 0.2, 500) == {"max_tokens": 500, "temperature": 0.2}
    assert request_options(info, None, 500) == {"max_tokens": 500}
    assert request_options(info, 0.0, 1) == {"max_tokens": 1, "temperature": 0.0}


@pytest.mark.parametrize("name", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-nano-2025-08-07"])
def test_request_options_reasoning(name: str) -> None:
    info = lookup_model(name)
    assert request_options(info, 0.7, 2_000) == {"max_completion_tokens": 2_000}


def test_adapt_messages_for_models_without_system_role() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": "Earlier reply."},
        {"role": "user", "content": "Why?"},
    ]
    assert adapt_messages(lookup_model("gpt-4o"), messages) is messages
    assert adapt_messages(lookup_model("o1-mini"), messages) == [
        {"role": "assistant", "content": "Earlier reply."},
        {"role": "user", "content": "Be brief.\n\nWhy?"},
    ]
    assert adapt_messages(lookup_model("o1-preview"), messages[:2]) == [
        {"role": "user", "content": "Be brief."},
        {"role": "assistant", "content": "Earlier reply."},
    ]
