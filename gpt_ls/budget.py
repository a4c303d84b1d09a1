"""Fitting a request into the model's context window, and reporting what it used.

The API rejects a request whose prompt plus requested reply exceeds the context window,
so every request is fitted before it is sent: the system message, the selection and the
reply budget are kept; the file excerpt around the selection shrinks first (keeping
the lines nearest the selection); then the oldest conversation turns go. When even
that does not fit, the request is refused with the numbers and what to do.

Only the part of a large excerpt that can fit is ever counted, in chunks whose counts
are cached (``gpt_ls.tokens.chunks``), so budgeting from a 1 MB document stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gpt_ls import tokens
from gpt_ls.errors import ContextTooLarge
from gpt_ls.models import ModelInfo, resolve

Messages = list[dict[str, str]]
Render = Callable[[str, str, Messages], Messages]

#: How many times a fit is corrected when the template around the excerpt costs more
#: than the excerpt alone; after that the excerpt is dropped.
_MAX_RETRIES = 6
#: An excerpt this long (characters) that fits even by its upper-bound estimate is sent
#: whole without being counted: counting a megabyte exactly costs ~50 ms of tokenizer time.
ESTIMATE_FROM = 65_536


@dataclass
class Fitted:
    """A request that fits: its messages, their size and the reply budget to ask for."""

    messages: Messages
    prompt_tokens: int
    reply_budget: int
    #: The excerpt around the selection was shortened.
    trimmed_context: bool
    #: How many history messages were dropped (oldest first).
    dropped_turns: int
    #: False when ``prompt_tokens`` is an estimate (an upper bound): the encoding could not
    #: be loaded, or a large excerpt fitted so clearly that counting it was not needed.
    exact: bool = True


@dataclass
class _Taken:
    """The part of one side of the excerpt that was kept, and its tokens."""

    text: str
    tokens: int
    complete: bool


def _last_lines(piece: str, budget: int, encoding: str) -> tuple[int, int]:
    """Where the last lines of ``piece`` that fit ``budget`` start, and their tokens.

    The piece is split at every line break where counts add up exactly, and each part
    is counted once; lines joined by an unsafe break (a blank line, a line starting
    with ``/``) stay together.
    """
    parts = tokens.split_safe(piece)
    used, start = 0, len(piece)
    for part, n in zip(
        reversed(parts), reversed(tokens.count_chunks(parts, encoding)), strict=True
    ):
        if used + n > budget:
            break
        used += n
        start -= len(part)
    return start, used


def _first_lines(piece: str, budget: int, encoding: str) -> tuple[int, int]:
    """Where the first lines of ``piece`` that fit ``budget`` end, and their tokens."""
    parts = tokens.split_safe(piece)
    used, end = 0, 0
    for part, n in zip(parts, tokens.count_chunks(parts, encoding), strict=True):
        if used + n > budget:
            break
        used += n
        end += len(part)
    return end, used


def _batch_cap(remaining: int, chars: int, used: int) -> int:
    """How many characters of chunks to count at once: about what ``remaining`` tokens hold.

    The density is the one seen so far (``chars`` for ``used`` tokens); before any, two
    characters a token, between English (~4) and Chinese (~1.5).
    """
    density = chars / used if used else 2.0
    return min(max(int(remaining * density * 1.1), 4_096), 262_144)


def _take_suffix(text: str, pieces: list[str], budget: int, encoding: str) -> _Taken:
    """The longest run of whole lines at the end of ``text`` (cut in ``pieces``) that fits."""
    used, end, i = 0, len(text), len(pieces)  # pieces[i:] == text[end:] are kept
    while i > 0:
        cap = _batch_cap(budget - used, len(text) - end, used)
        j, chars = i - 1, len(pieces[i - 1])
        while j > 0 and chars + len(pieces[j - 1]) <= cap:
            j -= 1
            chars += len(pieces[j])
        counts = tokens.count_chunks(pieces[j:i], encoding)
        for k in range(i - 1, j - 1, -1):
            piece, n = pieces[k], counts[k - j]
            if used + n > budget:
                offset, m = _last_lines(piece, budget - used, encoding)
                return _Taken(text[end - len(piece) + offset :], used + m, False)
            used += n
            end -= len(piece)
        i = j
    return _Taken(text, used, True)


def _take_prefix(text: str, pieces: list[str], budget: int, encoding: str) -> _Taken:
    """The longest run of whole lines at the start of ``text`` (cut in ``pieces``) that fits."""
    used, start, i = 0, 0, 0  # pieces[:i] == text[:start] are kept
    while i < len(pieces):
        cap = _batch_cap(budget - used, start, used)
        j, chars = i + 1, len(pieces[i])
        while j < len(pieces) and chars + len(pieces[j]) <= cap:
            chars += len(pieces[j])
            j += 1
        counts = tokens.count_chunks(pieces[i:j], encoding)
        for k in range(i, j):
            piece, n = pieces[k], counts[k - i]
            if used + n > budget:
                offset, m = _first_lines(piece, budget - used, encoding)
                return _Taken(text[: start + offset], used + m, False)
            used += n
            start += len(piece)
        i = j
    return _Taken(text, used, True)


class _Excerpt:
    """The text around the selection, cut into chunks once per fit."""

    def __init__(self, before: str, after: str, encoding: str) -> None:
        self.before, self.after, self.encoding = before, after, encoding
        self.before_pieces = tokens.chunks(before)
        self.after_pieces = tokens.chunks(after)

    def take(self, budget: int) -> tuple[str, str]:
        """Split ``budget`` between both sides, nearest lines first; a side's slack goes over."""
        half = budget // 2
        b = _take_suffix(self.before, self.before_pieces, half, self.encoding)
        a = _take_prefix(self.after, self.after_pieces, budget - b.tokens, self.encoding)
        if not b.complete and budget - a.tokens > half:
            b = _take_suffix(self.before, self.before_pieces, budget - a.tokens, self.encoding)
        return b.text, a.text


def spare_tokens(info: ModelInfo) -> int:
    """Tokens left unused in the window: a tenth for a model whose tokenizer is a guess.

    A compatible server's model (llama, qwen, …) counts with its own tokenizer, which
    can give more tokens than ``cl100k_base`` for the same text.
    """
    return 0 if info.known else info.context_window // 10


def _oldest_turn(history: Messages) -> int:
    """How many messages make up the oldest turn: a reply goes with its question."""
    n = 1
    while n < len(history) and history[n].get("role") == "assistant":
        n += 1
    return n


def _refusal(
    info: ModelInfo, prompt: int, reserve: int, max_tokens: int | None, window: int
) -> str:
    """The sentence for a request that cannot fit, with its numbers and the way out."""
    lead = "Even without the surrounding text and the conversation so far, this request"
    if info.max_input is not None and prompt > info.max_input:
        return (
            f"{lead}'s prompt needs {prompt:,} tokens, more than the {info.max_input:,} input "
            f"tokens {info.name} accepts: select less text, or choose a model that accepts "
            "more input."
        )
    options = "select less text, or choose a model with a larger context window"
    if max_tokens:
        options += " (or lower maxTokens)"
    spare = (
        ""
        if window == info.context_window
        else f" (less {info.context_window - window:,} kept spare)"
    )
    return (
        f"{lead} needs {prompt + reserve:,} tokens ({prompt:,} for the prompt, {reserve:,} "
        f"for the reply), more than {info.name}'s context window of "
        f"{info.context_window:,} tokens{spare}: {options}."
    )


def _limits(info: ModelInfo, max_tokens: int | None, min_reply: int) -> tuple[int, int, int]:
    """(tokens reserved for the reply, the usable window, the most the prompt may use)."""
    reserve = min(max_tokens, info.max_output) if max_tokens else min(min_reply, info.max_output)
    window = info.context_window - spare_tokens(info)
    limit = window - reserve
    if info.max_input is not None:
        limit = min(limit, info.max_input)
    return reserve, window, limit


def byte_bound(text: str) -> int:
    """A proven upper bound of ``text``'s tokens, without a tokenizer: a token is at least a byte."""
    return len(text.encode("utf-8", "surrogatepass"))


def bound_messages(messages: Messages, info: ModelInfo) -> int:
    """An upper bound of :func:`tokens.count_messages` that needs no tokenizer (bytes for tokens)."""
    per_message, per_name = tokens.message_overhead(info)
    total = tokens.REPLY_PRIMING + per_message * len(messages)
    for message in messages:
        total += sum(byte_bound(value) for value in message.values())
        total += max(per_name, 0) * ("name" in message)
    return total


def fit_by_bound(
    render: Render,
    before: str,
    after: str,
    history: Messages,
    info: ModelInfo,
    max_tokens: int | None,
    min_reply: int = 256,
) -> Fitted | None:
    """The whole request, uncounted, when it fits so clearly that :func:`fit` would send it unchanged.

    A token is at least one byte, so the request's UTF-8 size bounds its prompt tokens.
    When that bound fits, and leaves the reply budget exactly what :func:`fit` would
    choose (``maxTokens``, or the model's whole output when the window has room for it),
    the answer is :func:`fit`'s without loading a tokenizer (0.4-0.9 s of held GIL and
    40-80 MB): the excerpt and every turn kept, the same reply budget. The prompt size
    reported is the bound (``exact`` False); the API's usage chunk gives the real one.
    Returns None when only an exact count can tell (near the window, long conversations,
    models whose reply budget is what the prompt leaves).
    """
    reserve, window, limit = _limits(info, max_tokens, min_reply)
    messages = render(before, after, list(history))
    upper = bound_messages(messages, info)
    if upper > limit or (not max_tokens and window - upper < info.max_output):
        return None
    reply = reserve if max_tokens else info.max_output
    return Fitted(messages, upper, reply, trimmed_context=False, dropped_turns=0, exact=False)


def fit(
    render: Render,
    before: str,
    after: str,
    history: Messages,
    info: ModelInfo,
    max_tokens: int | None,
    min_reply: int = 256,
) -> Fitted:
    """Build the largest request that fits the window with its reply budget, or refuse."""
    reserve, window, limit = _limits(info, max_tokens, min_reply)

    def count(messages: Messages) -> int:
        return tokens.count_messages(messages, info)

    # History first, with no excerpt: the excerpt is the first thing to give way.
    kept = list(history)
    while True:
        messages = render("", "", kept)
        prompt = count(messages)
        if prompt <= limit:
            break
        if not kept:
            raise ContextTooLarge(_refusal(info, prompt, reserve, max_tokens, window))
        kept = kept[_oldest_turn(kept) :]
    dropped = len(history) - len(kept)

    # Then as much excerpt as the rest allows.
    trimmed = bool(before or after)  # until the kept excerpt is known to be all of it
    exact = tokens.is_exact(info.encoding)
    if trimmed and prompt < limit and len(before) + len(after) >= ESTIMATE_FROM:
        wrapper = max(0, count(render(".", "", kept)) - prompt)
        upper = prompt + wrapper + tokens.estimate_tokens(before) + tokens.estimate_tokens(after)
        if upper <= limit:
            # It fits even if every estimate were right: send it all, report the bound.
            messages, prompt, trimmed, exact = render(before, after, kept), upper, False, False
    if trimmed and prompt < limit:
        # What the template adds around any excerpt, so the first try usually fits.
        wrapper = max(0, count(render(".", "", kept)) - prompt - 1)
        budget = limit - prompt - wrapper
        excerpt = _Excerpt(before, after, info.encoding)
        for _ in range(_MAX_RETRIES):
            if budget <= 0:
                break
            kept_before, kept_after = excerpt.take(budget)
            if not (kept_before or kept_after):
                break
            candidate = render(kept_before, kept_after, kept)
            n = count(candidate)
            if n <= limit:
                messages, prompt = candidate, n
                trimmed = kept_before != before or kept_after != after
                break
            budget -= n - limit  # the edges of the excerpt cost this much more

    if max_tokens:
        reply = reserve
    else:
        reply = max(reserve, min(info.max_output, window - prompt))
    return Fitted(
        messages=messages,
        prompt_tokens=prompt,
        reply_budget=reply,
        trimmed_context=trimmed,
        dropped_turns=dropped,
        exact=exact,
    )


def _price(model: str, prices: dict[str, dict[str, float]]) -> dict[str, float] | None:
    """The price entry for ``model``: its own, else its family's in the model table.

    A model outside the table takes the entry it is a snapshot of (``my-model-v2`` ->
    ``my-model``); a known model never borrows another family's price (gpt-4o-mini is
    not gpt-4o).
    """
    if model in prices:
        return prices[model]
    family = resolve(model)
    key = resolve(family, prices) if family is not None else resolve(model, prices)
    if key is None or (family is not None and key.lower() != family):
        return None
    return prices[key]


def estimate_cost(
    model: str, prompt_tokens: int, completion_tokens: int, prices: dict[str, dict[str, float]]
) -> float | None:
    """Dollars for one exchange from the ``prices`` setting (per million tokens), if priced."""
    entry = _price(model, prices)
    if entry is None or "input" not in entry or "output" not in entry:
        return None
    return (prompt_tokens * entry["input"] + completion_tokens * entry["output"]) / 1_000_000


def format_cost(cost: float) -> str:
    """``$0.0012``, ``$0.05``, ``$1.20``: as many digits as a person cares about."""
    if cost >= 0.01:
        return f"${cost:,.2f}"
    if cost >= 0.0001:
        return f"${cost:.4f}"
    return "<$0.0001" if cost > 0 else "$0"


def format_usage(prompt: int, completion: int, total: int, cost: float | None) -> str:
    """One line of usage for the progress end message and the hover footer."""
    text = f"{prompt:,} prompt + {completion:,} completion = {total:,} tokens"
    if cost is not None:
        text += f" (~{format_cost(cost)})"
    return text


def usage_summary(by_model: dict[str, tuple[int, int]], prices: dict[str, dict[str, float]]) -> str:
    """Totals over several models: tokens, and the cost when every model has a price."""
    prompt = sum(p for p, _ in by_model.values())
    completion = sum(c for _, c in by_model.values())
    costs = [estimate_cost(model, p, c, prices) for model, (p, c) in by_model.items() if p or c]
    cost = sum(c for c in costs if c is not None) if costs and all(c is not None for c in costs) else None
    return format_usage(prompt, completion, prompt + completion, cost)
