"""Secrets never reach a log line."""

import logging

import pytest

from gpt_ls.logs import SecretFilter
from gpt_ls.secrets import MASK, add_secret, mask


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("options={'apiKey': 'sk-a1'}", f"options={{'apiKey': '{MASK}'}}"),
        ('{"apiKey": "sk-a1", "model": "m"}', f'{{"apiKey": "{MASK}", "model": "m"}}'),
        ("Authorization: Bearer sk-zzz rest", f"Authorization: Bearer {MASK} rest"),
        ("api-key=abc123", f"api-key={MASK}"),
        ("socks5://bob:s3cret@127.0.0.1:1080", f"socks5://bob:{MASK}@127.0.0.1:1080"),
        ("apiKeyCommand = pass show openai", "apiKeyCommand = pass show openai"),
        ("model = gpt-4o", "model = gpt-4o"),
    ],
)
def test_mask_patterns(text, expected):
    assert mask(text) == expected


def test_known_secret_masked_anywhere_and_filter_drops_args():
    add_secret("sk-known-secret-4242")
    assert mask("x sk-known-secret-4242 y") == f"x {MASK} y"
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "value %s", ("sk-known-secret-4242",), None)
    assert SecretFilter().filter(record)
    assert record.getMessage() == f"value {MASK}"
    assert record.args is None
