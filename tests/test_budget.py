"""Fitting requests into tiny context windows, step by step; usage and cost lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_ls import tokens
from gpt_ls.budget import Fitted, estimate_cost, fit, format_cost, format_usage
from gpt_ls.errors import ContextTooLarge
from gpt_ls.models import ModelInfo, lookup_model, request_options

SELECTION = "What does add do?"
BEFORE = "".join(f"line {i}\n" for i in range(1, 11))
AFTER = "".join(f"\nafter {i}" for i in range(1, 11))
HISTORY = [
    {"role": "user", "content": "first question"},
    {"role": "assistant", "content": "first answer"},
    {"role": "user", "content": "second question"},
    {"role": "assistant", "content": "second answer"},
]


def render(before: str, after: str, history: list[dict[str, str]]) -> list[dict[str, str]]:
    """A prompt shaped like gpt-ls's: system, history, then excerpt and question."""
    user = f"Question: {SELECTION}"
    if before or after:
        user = f"Context:\n{before}<selection>{after}\n\n" + user
    return [{"role": "system", "content": "Be brief."}, *history, {"role": "user", "content": user}]


def gpt4(window: int) -> ModelInfo:
    return lookup_model("gpt-4", context_window=window)


def checked(fitted: Fitted, info: ModelInfo) -> Fitted:
    """The invariants every fit must keep."""
    assert fitted.prompt_tokens == tokens.count_messages(fitted.messages, info)
    assert fitted.prompt_tokens + fitted.reply_budget <= info.context_window
    assert fitted.exact is True
    return fitted


def question(fitted: Fitted) -> str:
    return fitted.messages[-1]["content"]


def kept_question(first_line: int, last_after: int) -> str:
    """The question after fitting kept ``line first_line`` … ``line 10`` and ``after 1`` … ``after last_after``."""
    return (
        "Context:\n"
        + "".join(f"line {i}\n" for i in range(first_line, 11))
        + "<selection>"
        + "".join(f"\nafter {i}" for i in range(1, last_after + 1))
        + "\n\n\nQuestion: What does add do?"
    )


def test_sizes_the_scenarios_rest_on() -> None:
    info = gpt4(8_192)
    assert tokens.count_messages(render(BEFORE, AFTER, HISTORY), info) == 130
    assert tokens.count_messages(render("", "", HISTORY), info) == 45
    assert tokens.count_messages(render("", "", HISTORY[2:]), info) == 33
    assert tokens.count_messages(render("", "", []), info) == 21


def test_everything_fits() -> None:
    info = gpt4(130 + 256)
    fitted = checked(fit(render, BEFORE, AFTER, HISTORY, info, None), info)
    assert fitted.messages == render(BEFORE, AFTER, HISTORY)
    assert (fitted.prompt_tokens, fitted.reply_budget) == (130, 256)
    assert (fitted.trimmed_context, fitted.dropped_turns) == (False, 0)


def test_reply_gets_the_rest_up_to_the_output_limit() -> None:
    fitted = fit(render, BEFORE, AFTER, HISTORY, lookup_model("gpt-4"), None)
    assert (fitted.prompt_tokens, fitted.reply_budget) == (130, 8_192 - 130)
    fitted = fit(render, BEFORE, AFTER, HISTORY, lookup_model("gpt-4o"), None)
    assert fitted.reply_budget == 16_384


def test_excerpt_shrinks_from_its_far_ends() -> None:
    info = gpt4(385)
    fitted = checked(fit(render, BEFORE, AFTER, HISTORY, info, None), info)
    kept_before = "".join(f"line {i}\n" for i in range(2, 11))
    assert fitted.messages == render(kept_before, AFTER, HISTORY)
    assert (fitted.prompt_tokens, fitted.reply_budget) == (126, 259)
    assert (fitted.trimmed_context, fitted.dropped_turns) == (True, 0)
    # "line 1" was the first to go, and it really did not fit.
    assert tokens.count_messages(render(BEFORE, AFTER, HISTORY), info) > 385 - 256

    info = gpt4(370)
    fitted = checked(fit(render, BEFORE, AFTER, HISTORY, info, None), info)
    assert question(fitted) == kept_question(first_line=3, last_after=8)
    assert fitted.prompt_tokens == 114


def test_excerpt_goes_before_history() -> None:
    info = gpt4(45 + 256)
    fitted = checked(fit(render, BEFORE, AFTER, HISTORY, info, None), info)
    assert fitted.messages == render("", "", HISTORY)
    assert (fitted.prompt_tokens, fitted.trimmed_context, fitted.dropped_turns) == (45, True, 0)


def test_oldest_turns_are_dropped_then() -> None:
    info = gpt4(33 + 256)
    fitted = checked(fit(render, BEFORE, AFTER, HISTORY, info, None), info)
    assert fitted.messages == render("", "", HISTORY[2:])
    assert (fitted.prompt_tokens, fitted.dropped_turns) == (33, 2)
    # One token short of the second turn too: everything goes, the question stays.
    info = gpt4(33 + 256 - 1)
    fitted = checked(fit(render, BEFORE, AFTER, HISTORY, info, None), info)
    assert fitted.dropped_turns == 4
    assert fitted.messages[0] == {"role": "system", "content": "Be brief."}
    assert fitted.messages[1:] == render("", "\nafter 1\n", [])[1:]  # the room left goes to text


def test_room_left_after_dropping_a_turn_goes_to_the_excerpt() -> None:
    info = gpt4(300)
    fitted = checked(fit(render, BEFORE, AFTER, HISTORY, info, None), info)
    assert fitted.dropped_turns == 2
    assert fitted.messages == render("", "\nafter 1\n", HISTORY[2:])
    assert (fitted.prompt_tokens, fitted.reply_budget) == (42, 258)


def test_a_reply_is_dropped_with_its_question() -> None:
    history = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "assistant", "content": "a1, continued"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]
    size = tokens.count_messages(render("", "", history[3:]), gpt4(8_192))
    info = gpt4(size + 256)
    fitted = checked(fit(render, "", "", history, info, None), info)
    assert fitted.dropped_turns == 3
    assert fitted.messages[1] == {"role": "user", "content": "q2"}


def test_refuses_when_the_selection_alone_is_too_big() -> None:
    with pytest.raises(ContextTooLarge) as caught:
        fit(render, BEFORE, AFTER, HISTORY, gpt4(21 + 256 - 1), None)
    assert str(caught.value) == (
        "Even without the surrounding text and the conversation so far, this request needs "
        "277 tokens (21 for the prompt, 256 for the reply), more than gpt-4's context window "
        "of 276 tokens: select less text, or choose a model with a larger context window."
    )


def test_refusal_names_max_tokens_when_it_is_set() -> None:
    with pytest.raises(ContextTooLarge) as caught:
        fit(render, BEFORE, AFTER, [], lookup_model("gpt-4"), 10_000)
    assert str(caught.value) == (
        "Even without the surrounding text and the conversation so far, this request needs "
        "8,213 tokens (21 for the prompt, 8,192 for the reply), more than gpt-4's context "
        "window of 8,192 tokens: select less text, or choose a model with a larger context "
        "window (or lower maxTokens)."
    )


def test_max_tokens_is_the_reply_budget() -> None:
    info = lookup_model("gpt-4")
    fitted = checked(fit(render, BEFORE, AFTER, [], info, 100), info)
    assert (fitted.prompt_tokens, fitted.reply_budget, fitted.trimmed_context) == (106, 100, False)
    # maxTokens is reserved in full: the excerpt makes room for it.
    info = gpt4(406)
    fitted = checked(fit(render, BEFORE, AFTER, [], info, 330), info)
    assert fitted.reply_budget == 330
    assert fitted.trimmed_context is True
    assert fitted.prompt_tokens <= 76


def test_reasoning_model_gets_max_completion_tokens() -> None:
    info = lookup_model("o3-mini", context_window=330)
    fitted = checked(fit(render, BEFORE, AFTER, [], info, None), info)
    assert question(fitted) == kept_question(first_line=5, last_after=6)
    assert (fitted.prompt_tokens, fitted.reply_budget) == (74, 256)
    assert request_options(info, 0.3, fitted.reply_budget) == {"max_completion_tokens": 256}

    info = lookup_model("o3-mini", context_window=400)
    fitted = checked(fit(render, BEFORE, AFTER, [], info, None), info)
    assert (fitted.prompt_tokens, fitted.reply_budget, fitted.trimmed_context) == (106, 294, False)
    assert request_options(info, None, fitted.reply_budget) == {"max_completion_tokens": 294}


def test_unknown_model_keeps_a_tenth_spare() -> None:
    info = lookup_model("local-llm", context_window=400, max_output_tokens=300)
    fitted = fit(render, BEFORE, AFTER, [], info, None)
    assert fitted.prompt_tokens == tokens.count_messages(fitted.messages, info)
    assert fitted.prompt_tokens + fitted.reply_budget <= 360
    assert (fitted.prompt_tokens, fitted.reply_budget, fitted.trimmed_context) == (102, 258, True)
    # 277 tokens would fit in 300, but not with 30 of them kept spare.
    info = lookup_model("local-llm", context_window=300, max_output_tokens=260)
    with pytest.raises(ContextTooLarge) as caught:
        fit(render, "", "", [], info, None)
    assert str(caught.value) == (
        "Even without the surrounding text and the conversation so far, this request needs "
        "277 tokens (21 for the prompt, 256 for the reply), more than local-llm's context "
        "window of 300 tokens (less 30 kept spare): select less text, or choose a model with "
        "a larger context window."
    )


def test_input_limit_is_respected() -> None:
    info = ModelInfo("tiny-5", 1_000, 500, "o200k_base", True, True, max_input=40)
    fitted = checked(fit(render, BEFORE, AFTER, [], info, None), info)
    assert question(fitted) == (
        "Context:\nline 10\n<selection>\nafter 1\nafter 2\n\n\nQuestion: What does add do?"
    )
    assert (fitted.prompt_tokens, fitted.reply_budget) == (38, 500)
    with pytest.raises(ContextTooLarge) as caught:
        fit(
            render,
            BEFORE,
            AFTER,
            [],
            ModelInfo("tiny-5", 1_000, 500, "o200k_base", True, True, max_input=10),
            None,
        )
    assert str(caught.value) == (
        "Even without the surrounding text and the conversation so far, this request's prompt "
        "needs 21 tokens, more than the 10 input tokens tiny-5 accepts: select less text, or "
        "choose a model that accepts more input."
    )


def test_chinese_excerpt_keeps_whole_lines() -> None:
    zh = "".join(f"第{i}行：我们的语言服务器把模型放进编辑器中。\n" for i in range(1, 21))
    info = lookup_model("gpt-4o", context_window=400)
    fitted = checked(fit(render, zh, "", [], info, None), info)
    kept = "".join(f"第{i}行：我们的语言服务器把模型放进编辑器中。\n" for i in range(14, 21))
    assert fitted.messages == render(kept, "", [])
    assert (fitted.prompt_tokens, fitted.reply_budget) == (131, 269)


def test_one_side_short_leaves_its_share_to_the_other() -> None:
    info = gpt4(330)
    fitted = checked(fit(render, "line 1\n", AFTER, [], info, None), info)
    assert fitted.messages == render("line 1\n", AFTER, [])
    fitted = checked(fit(render, BEFORE, "\nafter 1", [], info, None), info)
    assert fitted.messages == render(BEFORE, "\nafter 1", [])


def test_large_document_keeps_the_lines_nearest_the_selection() -> None:
    lines = [
        f"{i:06d} The quick brown fox jumps over the lazy dog. 敏捷的狐狸。\n" for i in range(5_000)
    ]
    before = "".join(lines)
    info = lookup_model("gpt-4")
    fitted = checked(fit(render, before, "", [], info, None), info)
    content = question(fitted)
    kept = content[len("Context:\n") : content.index("<selection>")]
    assert before.endswith(kept)
    assert kept.startswith(lines[-(kept.count("\n"))])  # whole lines only
    first = len(lines) - kept.count("\n")
    # Maximal: one more line would not have fitted with the 256-token reply.
    assert tokens.count_messages(render(lines[first - 1] + kept, "", []), info) > 8_192 - 256
    assert fitted.prompt_tokens > 8_192 - 256 - 40
    assert fitted.reply_budget == 8_192 - fitted.prompt_tokens


def test_large_document_on_both_sides() -> None:
    lines = [
        f"{i:06d} The quick brown fox jumps over the lazy dog. 敏捷的狐狸。\n" for i in range(4_000)
    ]
    before, after = "".join(lines[:2_000]), "\n" + "".join(lines[2_000:])
    info = lookup_model("gpt-4o", context_window=20_000)
    fitted = checked(fit(render, before, after, [], info, None), info)
    content = question(fitted)
    start = content.index("<selection>")
    kept_before = content[len("Context:\n") : start]
    kept_after = content[start + len("<selection>") : -len("\n\nQuestion: What does add do?")]
    assert before.endswith(kept_before) and after.startswith(kept_after)
    assert kept_after.endswith("\n")  # whole lines
    n_before, n_after = kept_before.count("\n"), kept_after.count("\n") - 1
    assert kept_before.startswith(lines[2_000 - n_before])
    assert abs(n_before - n_after) <= 2  # the nearest lines on both sides, evenly
    assert fitted.prompt_tokens > 20_000 - 256 - 40


TEXT_LINE = st.lists(
    st.sampled_from([*"ab Z9/.;'\t我们，😀é-", "  ", "word", "//"]), max_size=10
).map("".join)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(TEXT_LINE, max_size=30),
    st.lists(TEXT_LINE, max_size=30),
    st.lists(TEXT_LINE, max_size=6),
    st.integers(min_value=0, max_value=400),
    st.sampled_from([None, 50, 300]),
    st.sampled_from(["gpt-4", "gpt-4o", "o3-mini"]),
    st.sampled_from([1, 2, 64]),
)
def test_a_fit_always_fits(
    before: list[str],
    after: list[str],
    turns: list[str],
    room: int,
    max_tokens: int | None,
    model: str,
    chunk_every: int,
) -> None:
    saved = tokens.CHUNK_EVERY
    tokens.CHUNK_EVERY = chunk_every  # small values: many chunks to walk through
    try:
        _fit_and_check(before, after, turns, room, max_tokens, model)
    finally:
        tokens.CHUNK_EVERY = saved
        tokens.clear_cache()


def _fit_and_check(
    before: list[str],
    after: list[str],
    turns: list[str],
    room: int,
    max_tokens: int | None,
    model: str,
) -> None:
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)
    ]
    before_text = "\n".join(before) + ("\n" if before else "")
    after_text = "".join("\n" + line for line in after)
    probe = lookup_model(model)
    bare = tokens.count_messages(render("", "", []), probe)
    reserve = min(max_tokens or 256, 400)
    info = lookup_model(model, context_window=bare + reserve + room, max_output_tokens=400)
    fitted = checked(fit(render, before_text, after_text, history, info, max_tokens), info)
    assert fitted.reply_budget >= reserve
    if max_tokens:
        assert fitted.reply_budget == max_tokens
    assert fitted.messages[-1]["content"].endswith(f"Question: {SELECTION}")
    assert fitted.dropped_turns <= len(history)
    assert (
        fitted.messages[1 : 1 + len(history) - fitted.dropped_turns]
        == history[fitted.dropped_turns :]
    )


def test_estimated_counts_are_flagged(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv(tokens.ENCODINGS_DIR_ENV, str(tmp_path))
    tokens.reset()
    try:
        info = gpt4(8_192)
        fitted = fit(render, BEFORE, AFTER, HISTORY, info, None)
        assert fitted.exact is False
        assert fitted.prompt_tokens == tokens.count_messages(fitted.messages, info)
        assert fitted.prompt_tokens > 130  # the estimate errs high
    finally:
        monkeypatch.delenv(tokens.ENCODINGS_DIR_ENV)
        tokens.reset()


PRICES = {"gpt-4o": {"input": 2.5, "output": 10.0}, "gpt-4.1-mini": {"input": 0.4, "output": 1.6}}


def test_estimate_cost() -> None:
    assert estimate_cost("gpt-4o", 1_000_000, 0, PRICES) == 2.5
    assert estimate_cost("gpt-4o-2024-08-06", 1_234, 56, PRICES) == pytest.approx(0.003645)
    assert estimate_cost("gpt-4.1-mini", 10_000, 1_000, PRICES) == pytest.approx(0.0056)
    assert estimate_cost("gpt-4o-mini", 1_000, 1_000, PRICES) is None  # its own family
    assert estimate_cost("my-local", 1_000, 1_000, {"my-local": {"input": 1.0}}) is None
    assert estimate_cost("my-local", 1_000, 0, {"My-Local": {"input": 1, "output": 2}}) == 0.001
    assert estimate_cost("my-local-v2", 0, 1_000, {"my-local": {"input": 1, "output": 2}}) == 0.002
    assert estimate_cost("GPT-4o", 0, 100_000, PRICES) == 1.0


def test_format_usage() -> None:
    assert format_usage(1_234, 56, 1_290, 0.0012) == (
        "1,234 prompt + 56 completion = 1,290 tokens (~$0.0012)"
    )
    assert format_usage(9, 3, 12, None) == "9 prompt + 3 completion = 12 tokens"
    assert format_usage(120_000, 4_000, 124_000, 1.2) == (
        "120,000 prompt + 4,000 completion = 124,000 tokens (~$1.20)"
    )


@pytest.mark.parametrize(
    ("cost", "text"),
    [
        (0.0, "$0"),
        (0.00001, "<$0.0001"),
        (0.0012, "$0.0012"),
        (0.05, "$0.05"),
        (1234.5, "$1,234.50"),
    ],
)
def test_format_cost(cost: float, text: str) -> None:
    assert format_cost(cost) == text


def test_a_large_excerpt_that_clearly_fits_is_sent_whole_without_counting() -> None:
    from gpt_ls import budget as budget_module
    from gpt_ls.actions.catalog import ASK
    from gpt_ls.budget import fit
    from gpt_ls.models import lookup_model
    from gpt_ls.prompts import SelectionContext, render
    from gpt_ls.tokens import count_messages

    info = lookup_model("gpt-4.1-mini")
    before = "第一行 line one 😀\n" * 8_000  # about 150k characters
    after = "more text after\n" * 5_000
    ctx = SelectionContext("file:///big.txt", "plaintext", "question?", before, after)
    fitted = fit(lambda b, a, h: render(ASK, ctx, b, a, h), before, after, [], info, None)
    assert len(before) + len(after) >= budget_module.ESTIMATE_FROM
    assert not fitted.trimmed_context
    assert fitted.exact is False
    exact = count_messages(fitted.messages, info)
    assert fitted.messages[-1]["content"].count("第一行 line one 😀\n") == 8_000
    assert exact <= fitted.prompt_tokens  # an upper bound
    assert fitted.prompt_tokens + fitted.reply_budget <= info.context_window
