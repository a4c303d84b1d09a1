"""gpt_ls.secrets: one set of rules for logs and error sentences, linear on any input."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from gpt_ls.logs import SecretFilter
from gpt_ls.secrets import HIDDEN, MASK, mask, redact, redact_headers, redact_url, scrub
from gpt_ls.settings import Settings

SETTINGS = Settings(api_key="sk-masking-test-key-0123456789")


def _filtered(text: str) -> str:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s", (text,), None)
    SecretFilter().filter(record)
    return record.getMessage()


#: Every function that masks, as it is called.
MASKERS: dict[str, Callable[[str], str]] = {
    "mask": mask,
    "scrub": lambda text: scrub(text, SETTINGS),
    "redact": redact,
    "redact_url": redact_url,
    "SecretFilter": _filtered,
    "redact_headers": lambda text: str(redact_headers({text: text})),
}

#: Inputs built to make a backtracking pattern retry at every position: runs of the
#: characters a URL scheme, a user, a password, a key or a field name is made of.
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "letters": lambda n: "a" * n,
    "letters and digits": lambda n: "a1" * (n // 2),
    "scheme run then ://": lambda n: "a" * n + "://",
    "http://a: repeated": lambda n: "http://a:" * (n // 9),
    "password without @": lambda n: "x://u:" + "p" * n,
    "user without colon": lambda n: "http://" + "u" * n,
    "colons after ://": lambda n: "http://" + "a:" * (n // 2),
    ":// repeated": lambda n: "://" * (n // 3),
    "://a: repeated": lambda n: "://a:" * (n // 5),
    "at signs": lambda n: "@" * n,
    "colons": lambda n: ":" * n,
    "slashes": lambda n: "/" * n,
    "dots and dashes": lambda n: ".-+" * (n // 3),
    "sk- repeated": lambda n: "sk-" * (n // 3),
    "short sk- keys": lambda n: "sk-abcd " * (n // 8),
    "key-like run": lambda n: "sk-proj-" + "A1_-." * (n // 5),
    "apiKey then spaces": lambda n: "apiKey" + " " * n,
    "apiKey= then tabs": lambda n: "apiKey=" + "\t" * n,
    "apiKey repeated": lambda n: "apiKey" * (n // 6),
    "apiKey: repeated": lambda n: '"apiKey": "' * (n // 11),
    "Bearer then spaces": lambda n: "Authorization: Bearer " + " " * n,
    "basic repeated": lambda n: "basic " * (n // 6),
    "secret-like prefix repeated": lambda n: "sk-masking-test-key-" * (n // 20),
}


@pytest.mark.parametrize("shape", ADVERSARIAL)
@pytest.mark.parametrize("name", MASKERS)
def test_every_masking_function_is_linear_on_crafted_input(name: str, shape: str) -> None:
    """10 KB and 100 KB both finish at once; a quadratic pattern needs seconds at 10 KB
    (the URL-password patterns before gpt_ls.secrets took 0.5 s there and 13 s at 50 KB)."""
    masker, build = MASKERS[name], ADVERSARIAL[shape]
    for size, limit in ((10_000, 0.1), (100_000, 0.5)):
        text = build(size)
        started = time.perf_counter()
        masker(text)
        elapsed = time.perf_counter() - started
        assert elapsed < limit, f"{name} took {elapsed:.2f} s on {len(text):,} characters of {shape!r}"


@pytest.mark.parametrize(
    ("text", "logged", "shown"),
    [
        # The same shapes are hidden in a log line and in an error sentence.
        ("key sk-proj-abcdef0123456789 end", f"key sk-proj{MASK} end", f"key sk-proj{HIDDEN} end"),
        ("Bearer tok-123 and more", f"Bearer {MASK} and more", f"Bearer {HIDDEN} and more"),
        ('{"api_key": "abc123"}', f'{{"api_key": "{MASK}"}}', f'{{"api_key": "{HIDDEN}"}}'),
        ("http://:pw@h:1/", f"http://:{MASK}@h:1/", f"http://:{HIDDEN}@h:1/"),
        ("socks5h://u:p%40ss@h", f"socks5h://u:{MASK}@h", f"socks5h://u:{HIDDEN}@h"),
        # Nothing secret: left alone, however long the run.
        ("a" * 300 + "://example.com/path", "a" * 300 + "://example.com/path",
         "a" * 300 + "://example.com/path"),
        ("see https://example.com/a:b/c@d", "see https://example.com/a:b/c@d",
         "see https://example.com/a:b/c@d"),
    ],
)
def test_one_set_of_rules_for_logs_and_errors(text: str, logged: str, shown: str) -> None:
    assert (mask(text), scrub(text)) == (logged, shown)


def test_scrub_hides_the_settings_key_even_when_not_registered() -> None:
    key = "plain-key-never-registered-42"
    assert scrub(f"got {key}!", Settings(api_key=key)) == f"got {HIDDEN}!"
    assert scrub(f"got {key}!") == f"got {key}!"
