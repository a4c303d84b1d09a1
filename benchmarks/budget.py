"""Figure 5, budgeting: fitting a request built from a 1 MB document.

``figures`` is the suite's part. Run alone (``.venv/bin/python -m benchmarks.budget``) it
prints more: encoding load time and memory, and fitting for more models; asserts nothing.
Each encoding is loaded in a fresh process so its load time and RSS are its own.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks.results import Results
from gpt_ls import budget, tokens
from gpt_ls.models import lookup_model
from gpt_ls.prompts import excerpt

SIZE = 1_000_000
LOAD_PROBE = """
import resource, time
t0 = time.perf_counter()
import gpt_ls.tokens as tokens
t1 = time.perf_counter()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tokens.get_encoding({name!r})
t2 = time.perf_counter()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{{(t1 - t0) * 1000:.0f}} {{(t2 - t1) * 1000:.0f}} {{(after - before) / 1024:.0f}}")
"""


EN_WORDS = (
    "the of and to in is that for it as with was on be by this are or from at an "
    "language server model editor request token window context budget selection "
    "reply history proxy stream encoding chunk count fitting document excerpt"
).split()
ZH_WORDS = (
    "我们 语言 服务器 把 模型 放进 编辑器 中 用户 可以 提问 并 得到 回答 这是 一个 测试 "
    "文本 上下文 窗口 预算 的 了 在 和 是 代码 函数 选择 历史 代理 请求 回复 文件 时间 "
    "问题 需要 如果 因为 所以 但是 已经 没有 我们的 他们 这个 那个 什么 怎么"
).split()


def english_line(rng: random.Random) -> str:
    """A line of prose, or of code (30%)."""
    if rng.random() < 0.3:
        return f"    {rng.choice(EN_WORDS)}_{rng.randrange(99)} = call({rng.randrange(999)})"
    return " ".join(rng.choice(EN_WORDS) for _ in range(rng.randrange(4, 16))).capitalize() + "."


def chinese_line(rng: random.Random) -> str:
    """A paragraph of one to four sentences of words, commas and full stops."""
    sentences = []
    for _ in range(rng.randrange(1, 5)):
        clauses = [
            "".join(rng.choice(ZH_WORDS) for _ in range(rng.randrange(2, 7)))
            for _ in range(rng.randrange(1, 4))
        ]
        sentences.append("，".join(clauses) + rng.choice("。。。？！"))
    return "".join(sentences)


def document(size: int, line: Callable[[random.Random], str], seed: int) -> str:
    """Lines from ``line`` until ``size`` bytes of UTF-8, cut at a character boundary."""
    rng = random.Random(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        lines.append(line(rng))
        total += len(lines[-1].encode("utf-8")) + 1
    return "\n".join(lines).encode("utf-8")[:size].decode("utf-8", "ignore")


def render(before: str, after: str, history: list[dict[str, str]]) -> list[dict[str, str]]:
    user = "Explain the selected code."
    if before or after:
        user = f"File excerpt:\n```\n{before}<<<selection>>>{after}\n```\n\n{user}"
    return [
        {"role": "system", "content": "You are a careful assistant."},
        *history,
        {
            "role": "user",
            "content": user,
        },
    ]


def load_figures() -> None:
    print("encoding load (fresh process): import gpt_ls.tokens / first load / RSS added")
    for name in ("cl100k_base", "o200k_base"):
        probe = LOAD_PROBE.format(name=name)
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        imp, load, rss = out.stdout.split()
        print(f"  {name:12s} import {imp:>4s} ms   load {load:>4s} ms   +{rss} MB RSS")


def fit_figures() -> None:
    docs = {
        "English": document(SIZE, english_line, 1),
        "Chinese": document(SIZE, chinese_line, 2),
    }
    print(f"fit() with a {SIZE:,}-byte `before` (cold = empty count cache; warm = same doc)")
    for model in ("gpt-4", "gpt-4o", "gpt-4.1-mini", "gpt-5"):
        info = lookup_model(model)
        tokens.get_encoding(info.encoding)
        for label, doc in docs.items():
            cold: list[float] = []
            warm: list[float] = []
            for _ in range(3):
                tokens.clear_cache()
                t0 = time.perf_counter()
                fitted = budget.fit(render, doc, "", [], info, None)
                cold.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                budget.fit(render, doc, "", [], info, None)
                warm.append(time.perf_counter() - t0)
            print(
                f"  {model:12s} {label:7s} cold {statistics.median(cold) * 1000:6.1f} ms"
                f"   warm {statistics.median(warm) * 1000:6.1f} ms"
                f"   prompt {fitted.prompt_tokens:>7,} + reply {fitted.reply_budget:>6,}"
                f" (window {info.context_window:,})"
            )
    for label, doc in docs.items():
        for name in ("cl100k_base", "o200k_base"):
            enc = tokens.get_encoding(name)
            assert enc is not None
            t0 = time.perf_counter()
            n = len(enc.encode_ordinary(doc))
            took = time.perf_counter() - t0
            print(
                f"  for scale: encoding all of the {label} doc with {name}: "
                f"{took * 1000:.0f} ms, {n:,} tokens"
            )


def figures(res: Results, quick: bool) -> None:
    """The slowest of three models fitting the English and the Chinese document, three ways."""
    print("5. budgeting", flush=True)
    docs = {"English": document(SIZE, english_line, 1), "Chinese": document(SIZE, chinese_line, 2)}
    models = ("gpt-4", "gpt-4o", "gpt-4.1-mini")
    for label, doc in docs.items():
        cold: dict[str, float] = {}
        warm: dict[str, float] = {}
        server: dict[str, float] = {}
        middle = len(doc) // 2
        for model in models:
            info = lookup_model(model)
            tokens.get_encoding(info.encoding)  # loading the encoding is not fitting
            c, w, v = [], [], []
            for _ in range(1 if quick else 3):
                tokens.clear_cache()
                t0 = time.perf_counter()
                budget.fit(render, doc, "", [], info, None)  # all of it before the selection
                t1 = time.perf_counter()
                budget.fit(render, doc, "", [], info, None)  # again: chunk counts cached
                t2 = time.perf_counter()
                before, after = excerpt(doc, middle, middle + 40, 40)  # what the server sends by default
                budget.fit(render, before, after, [], info, None)
                t3 = time.perf_counter()
                c.append(t1 - t0)
                w.append(t2 - t1)
                v.append(t3 - t2)
            cold[model], warm[model], server[model] = (statistics.median(x) * 1000 for x in (c, w, v))
        for name, per_model in (("whole document before the selection, cold count cache", cold),
                              ("the same again (count cache warm)", warm),
                              ("as the server sends it (contextLines 40 around the selection)", server)):
            slowest = max(per_model, key=lambda m: per_model[m])
            res.add("budget", f"fit 1 MB {label}: {name}", per_model[slowest], "ms", limit=50,
                    note="slowest of " + ", ".join(f"{m} {v:.0f}" for m, v in per_model.items()))


if __name__ == "__main__":
    load_figures()
    fit_figures()
