"""Pure parts of actions and prompts: validation, templates, code cleanup, chat parsing."""

import pytest

from gpt_ls import prompts
from gpt_ls.actions.catalog import ASK, BUILTIN_ACTIONS, RUN_COMMAND, load_actions


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("```python\nx = 1\n```", "x = 1"),
        ("```\na\n  b\n```\n", "a\n  b"),
        ("~~~js\nlet a;\n~~~", "let a;"),
        ("plain code\n", "plain code"),
        ("text ```not a fence``` here", "text ```not a fence``` here"),
    ],
)
def test_strip_fences(reply, expected):
    assert prompts.strip_fences(reply) == expected


@pytest.mark.parametrize(
    ("code", "indent", "expected"),
    [
        ("def f():\n    pass", "    ", "    def f():\n        pass"),
        ("    a\n      b\n\n    c", "\t", "\ta\n\t  b\n\n\tc"),
        ("x", "", "x"),
    ],
)
def test_match_indentation(code, indent, expected):
    assert prompts.match_indentation(code, indent) == expected


def test_parse_chat_sections():
    text = ("title\r\n## System\r\nbe brief\r\n## user\r\n你好 👋\r\n\r\n"
            "## assistant\r\n\r\n## user\r\nnext\r\n")
    assert prompts.parse_chat(text) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "你好 👋"},
        {"role": "user", "content": "next"},
    ]


def test_parse_chat_headings_inside_code_fences_are_text():
    reply = ("A chat document looks like this:\n\n```markdown\n## user\n你好\n\n## assistant\nHi 👋\n```\n\n"
             "~~~~\n## system\n```\nstill inside\n~~~~\nDone.")
    text = f"## user\nshow me an example\n\n## assistant\n{reply}\n\n## user\nthanks\n"
    assert prompts.parse_chat(text) == [
        {"role": "user", "content": "show me an example"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "thanks"},
    ]


def test_parse_chat_inline_backticks_and_indented_code_do_not_open_a_fence():
    text = "## user\nuse ```x``` here\n## assistant\n    ## user (indented: code)\nok\n## user\nnext"
    assert prompts.parse_chat(text) == [
        {"role": "user", "content": "use ```x``` here"},
        {"role": "assistant", "content": "## user (indented: code)\nok"},
        {"role": "user", "content": "next"},
    ]


def test_parse_chat_an_unclosed_fence_runs_to_the_end():
    text = "## user\nq\n## assistant\n```\n## user\nnot a turn"
    assert prompts.parse_chat(text) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "```\n## user\nnot a turn"},
    ]


@pytest.mark.parametrize(
    ("text", "target"),
    [("你好世界 hello", "English"), ("hello world", "Chinese (Simplified)"), ("123", "Chinese (Simplified)"),
     ("こんにちは", "English")],
)
def test_default_target_language(text, target):
    assert prompts.default_target_language(text) == target


def test_fill_leaves_values_braces_alone():
    filled = prompts.fill("{selection} and {unknown}", {"selection": "{x} {selection}"})
    assert filled == "{x} {selection} and {unknown}"


def test_render_with_history_and_instructions():
    ctx = prompts.SelectionContext("file:///a/b.py", "python", "q?", "before\n", "\nafter")
    messages = prompts.render(ASK, ctx, "before\n", "\nafter", [{"role": "user", "content": "old"}], "Be terse.")
    assert [m["role"] for m in messages] == ["system", "user", "user"]
    assert messages[0]["content"].endswith("\n\nBe terse.")
    assert messages[2]["content"] == (
        "File: b.py (language: python)\n\n"
        "Excerpt of the file around the selection (the selection's place is marked <<<SELECTION>>>):\n"
        "```python\nbefore\n<<<SELECTION>>>\nafter\n```\n\nSelection:\nq?")


def test_excerpt_takes_whole_lines_around_the_selection():
    text = "l0\nl1\nl2 sel l2\nl3\nl4\n"
    start = text.index("sel")
    assert prompts.excerpt(text, start, start + 3, 1) == ("l1\nl2 ", " l2\nl3\n")
    assert prompts.excerpt(text, start, start + 3, 0) == ("", "")


def test_as_comment_per_language():
    assert prompts.as_comment("a\nb", "python", "  ") == "  # a\n  # b\n"
    assert prompts.as_comment("x", "html") == "<!-- x -->\n"
    assert prompts.as_comment("x", "unknown-lang") == "# x\n"


def test_load_actions_overrides_extends_and_reports():
    catalog = load_actions([
        ("user.toml", {"ask": {"model": "gpt-4o"}, "new": {"title": "N", "system": "S {selection}"}}),
        ("ws.toml", {"new": {"temperature": 3}, "9bad": {"title": "t", "system": "s"}, "x": "nope"}),
        ("editor", ["not", "a", "table"]),
    ])
    assert catalog.get("ask").model == "gpt-4o"
    assert catalog.get("ask").command == "gpt-ls.ask"
    new = catalog.get("new")
    assert (new.command, new.title, new.temperature) == (RUN_COMMAND, "N", None)
    assert len(catalog.actions) == len(BUILTIN_ACTIONS) + 1
    assert catalog.problems == [
        "ws.toml: action 'new': 'temperature' must be a number from 0 to 2; skipped",
        "ws.toml: action '9bad': the id must start with a letter and use letters, digits, '_', '-' or '.'; skipped",
        "ws.toml: action 'x': must be a table of settings; skipped",
        "editor: 'actions' must be a table of actions (id = {…}); ignored",
    ]


def test_input_needs_choices():
    catalog = load_actions([("e", {"a": {"title": "A", "system": "tone {input}"}})])
    assert catalog.get("a") is None
    assert catalog.problems == [
        "e: action 'a': uses {input}, so it needs 'inputChoices' (the answers to offer); skipped"]


def test_offered_for_languages():
    catalog = load_actions([("e", {"py": {"title": "P", "system": "s", "languages": ["Python"]}})])
    action = catalog.get("py")
    assert action.offered_for("python") and not action.offered_for("markdown")
    assert not catalog.get("writeCode").offered_for("markdown")
