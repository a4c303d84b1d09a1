"""The model table: context window, output limit, tokenizer encoding and parameter quirks.

Numbers are OpenAI's published limits. A dated snapshot (``gpt-4o-2024-08-06``) resolves
to the longest table entry it extends, so new snapshots of a known family work without
an update; a snapshot whose limits differ from its family has its own row.

``gpt-3.5-turbo`` is listed with 16,385 tokens: since the 0125 snapshot (February 2024)
that is what the API serves under the bare name. The original releases keep their own
rows (``gpt-3.5-turbo-0301`` and ``-0613``: 4,096). A server that still serves a 4,096
model under the bare name (an old Azure deployment) needs ``contextWindow = 4096``.

Anything else (a compatible server's model, an Azure deployment name) falls back to
the ``contextWindow`` / ``maxOutputTokens`` settings, or to deliberately small defaults,
counted with ``cl100k_base`` (it yields more tokens than ``o200k_base`` for most text,
so the guess errs on the safe side), and says so once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from gpt_ls.settings import Settings

log = logging.getLogger(__name__)

O200K = "o200k_base"
CL100K = "cl100k_base"

#: What an unknown model is assumed to accept when the settings say nothing.
FALLBACK_CONTEXT_WINDOW = 8_192
FALLBACK_MAX_OUTPUT = 4_096
FALLBACK_ENCODING = CL100K


@dataclass(frozen=True)
class ModelInfo:
    """What gpt-ls must know about a model to count, fit and call it."""

    name: str
    context_window: int
    max_output: int
    encoding: str
    #: o-series / gpt-5 family: send ``max_completion_tokens``, omit ``temperature``.
    reasoning: bool
    #: False when the values come from the fallback, not from the table.
    known: bool
    #: For unknown models: the sentence to show the user once.
    notice: str | None = None
    #: Some models accept fewer input tokens than ``context_window - max_output``
    #: would allow (gpt-5: 272,000 of 400,000); None when only the window limits input.
    max_input: int | None = None
    #: o1-mini and o1-preview reject a ``system`` message; put its text in the first
    #: user message instead.
    system_message: bool = True


def _row(
    window: int,
    output: int,
    encoding: str,
    reasoning: bool = False,
    max_input: int | None = None,
    system_message: bool = True,
) -> tuple[int, int, str, bool, int | None, bool]:
    return (window, output, encoding, reasoning, max_input, system_message)


#: name -> (context window, max output, encoding, reasoning, max input, system message)
MODEL_TABLE: dict[str, tuple[int, int, str, bool, int | None, bool]] = {
    # GPT-3.5: the original 2023 releases had 4,096; 1106 and later 16,385 (4,096 output).
    "gpt-3.5-turbo": _row(16_385, 4_096, CL100K),
    "gpt-3.5-turbo-0301": _row(4_096, 4_096, CL100K),
    "gpt-3.5-turbo-0613": _row(4_096, 4_096, CL100K),
    "gpt-3.5-turbo-16k": _row(16_385, 16_385, CL100K),
    "gpt-3.5-turbo-1106": _row(16_385, 4_096, CL100K),
    "gpt-3.5-turbo-0125": _row(16_385, 4_096, CL100K),
    "gpt-3.5-turbo-instruct": _row(4_096, 4_096, CL100K),
    "gpt-35-turbo": _row(4_096, 4_096, CL100K),  # Azure's spelling; its 0301/0613 are 4k
    # GPT-4: the whole window may go to the reply.
    "gpt-4": _row(8_192, 8_192, CL100K),
    "gpt-4-0314": _row(8_192, 8_192, CL100K),
    "gpt-4-0613": _row(8_192, 8_192, CL100K),
    "gpt-4-32k": _row(32_768, 32_768, CL100K),
    "gpt-4-32k-0314": _row(32_768, 32_768, CL100K),
    "gpt-4-32k-0613": _row(32_768, 32_768, CL100K),
    "gpt-4-turbo": _row(128_000, 4_096, CL100K),
    "gpt-4-turbo-preview": _row(128_000, 4_096, CL100K),
    "gpt-4-1106-preview": _row(128_000, 4_096, CL100K),
    "gpt-4-0125-preview": _row(128_000, 4_096, CL100K),
    "gpt-4-vision-preview": _row(128_000, 4_096, CL100K),
    # GPT-4o family.
    "gpt-4o": _row(128_000, 16_384, O200K),
    "gpt-4o-2024-05-13": _row(128_000, 4_096, O200K),
    "gpt-4o-mini": _row(128_000, 16_384, O200K),
    "chatgpt-4o-latest": _row(128_000, 16_384, O200K),
    "gpt-4.5-preview": _row(128_000, 16_384, O200K),
    # GPT-4.1 family: one million tokens in.
    "gpt-4.1": _row(1_047_576, 32_768, O200K),
    "gpt-4.1-mini": _row(1_047_576, 32_768, O200K),
    "gpt-4.1-nano": _row(1_047_576, 32_768, O200K),
    # o-series reasoning models.
    "o1": _row(200_000, 100_000, O200K, reasoning=True),
    "o1-preview": _row(128_000, 32_768, O200K, reasoning=True, system_message=False),
    "o1-mini": _row(128_000, 65_536, O200K, reasoning=True, system_message=False),
    "o1-pro": _row(200_000, 100_000, O200K, reasoning=True),
    "o3": _row(200_000, 100_000, O200K, reasoning=True),
    "o3-mini": _row(200_000, 100_000, O200K, reasoning=True),
    "o3-pro": _row(200_000, 100_000, O200K, reasoning=True),
    "o4-mini": _row(200_000, 100_000, O200K, reasoning=True),
    # GPT-5 family: 400,000 tokens in all, of which at most 272,000 input.
    "gpt-5": _row(400_000, 128_000, O200K, reasoning=True, max_input=272_000),
    "gpt-5-mini": _row(400_000, 128_000, O200K, reasoning=True, max_input=272_000),
    "gpt-5-nano": _row(400_000, 128_000, O200K, reasoning=True, max_input=272_000),
    "gpt-5-chat-latest": _row(128_000, 16_384, O200K, reasoning=True),
}

#: Characters that may follow a family name in a snapshot or variant name.
_SEPARATORS = ("-", ".", ":", "@")

_noticed: set[str] = set()


def _base_name(name: str) -> str:
    """``openai/gpt-4o`` -> ``gpt-4o``; ``ft:gpt-4o-mini-2024-07-18:org::id`` -> its base."""
    base = name.strip().lower()
    if base.startswith("ft:"):
        base = base[3:].split(":", 1)[0]
    return base.rsplit("/", 1)[-1]


def resolve(name: str, keys: Iterable[str] | None = None) -> str | None:
    """The entry of ``keys`` (the model table) for ``name``: itself, or the longest it extends."""
    table = {k.lower(): k for k in (MODEL_TABLE if keys is None else keys)}
    base = _base_name(name)
    best: str | None = base if base in table else None
    if best is None:
        for key in table:
            if base.startswith(key) and base[len(key) : len(key) + 1] in _SEPARATORS:
                if best is None or len(key) > len(best):
                    best = key
    return None if best is None else table[best]


def lookup_model(
    name: str, context_window: int | None = None, max_output_tokens: int | None = None
) -> ModelInfo:
    """Everything about ``name``; the ``contextWindow`` / ``maxOutputTokens`` settings win."""
    key = resolve(name)
    if key is not None:
        window, output, encoding, reasoning, max_input, system_message = MODEL_TABLE[key]
        info = ModelInfo(
            name=name,
            context_window=window,
            max_output=output,
            encoding=encoding,
            reasoning=reasoning,
            known=True,
            max_input=max_input,
            system_message=system_message,
        )
    else:
        info = ModelInfo(
            name=name,
            context_window=FALLBACK_CONTEXT_WINDOW,
            max_output=FALLBACK_MAX_OUTPUT,
            encoding=FALLBACK_ENCODING,
            reasoning=False,
            known=False,
        )
    if context_window:
        info = replace(info, context_window=context_window)
        if info.max_input is not None and info.max_input > context_window:
            info = replace(info, max_input=None)
    if max_output_tokens:
        info = replace(info, max_output=max_output_tokens)
    elif not info.known and context_window:
        info = replace(info, max_output=min(FALLBACK_MAX_OUTPUT, max(1, context_window // 2)))
    # A reply can never be longer than the window it has to share with the prompt.
    info = replace(info, max_output=max(1, min(info.max_output, info.context_window)))
    if not info.known and not (context_window and max_output_tokens):
        info = replace(info, notice=_unknown_notice(info, context_window, max_output_tokens))
        if name not in _noticed:
            _noticed.add(name)
            log.info("%s", info.notice)  # the caller shows info.notice to the user
    return info


def model_info(settings: Settings) -> ModelInfo:
    """The configured model's entry, with the settings' overrides: what every request uses."""
    return lookup_model(settings.model, settings.context_window, settings.max_output_tokens)


def _unknown_notice(info: ModelInfo, window_set: int | None, output_set: int | None) -> str:
    """The one sentence that tells the user what gpt-ls assumes about an unknown model."""
    parts = []
    if not window_set:
        parts.append(f"a context window of {info.context_window:,} tokens")
    if not output_set:
        parts.append(f"replies of at most {info.max_output:,} tokens")
    assumed = " and ".join(parts)
    return (
        f"Model {info.name!r} is not in gpt-ls's table: assuming {assumed}, "
        f"counted with {info.encoding} and a tenth of the window kept spare; set "
        "contextWindow / maxOutputTokens to the server's real limits."
    )


def request_options(
    info: ModelInfo, temperature: float | None, reply_budget: int
) -> dict[str, Any]:
    """The length and sampling parameters the model accepts, for ``chat.completions.create``.

    The one source of these parameters: the exchange and ``gpt-ls check`` both use it.
    """
    if info.reasoning:
        # Reasoning models reject max_tokens and any temperature but the default.
        return {"max_completion_tokens": reply_budget}
    options: dict[str, Any] = {"max_tokens": reply_budget}
    if temperature is not None:
        options["temperature"] = temperature
    return options


def adapt_messages(info: ModelInfo, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Messages the model accepts: o1-mini / o1-preview get system text in the first user turn."""
    if info.system_message:
        return messages
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    rest = [m for m in messages if m.get("role") != "system"]
    if not system:
        return rest
    for i, message in enumerate(rest):
        if message.get("role") == "user":
            return [
                *rest[:i],
                {**message, "content": f"{system}\n\n{message['content']}"},
                *rest[i + 1 :],
            ]
    return [{"role": "user", "content": system}, *rest]
