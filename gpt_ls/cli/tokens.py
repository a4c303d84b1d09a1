"""``gpt-ls tokens [FILE|-] [--model M]``: how many tokens a file costs with a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gpt_ls import tokens
from gpt_ls.models import lookup_model
from gpt_ls.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tokens`` subcommand to the main parser."""
    parser = sub.add_parser(
        "tokens",
        help="count the tokens of a file (or stdin) for a model",
        description="Count the tokens of a file, or of standard input, for a model. "
        "Counting is exact and offline for OpenAI models, approximate for others.",
    )
    parser.add_argument("file", nargs="?", default="-", help="file to count; - for stdin")
    parser.add_argument("--model", "-m", help="model to count for (default: the model setting)")
    parser.set_defaults(func=run)


def _read(name: str) -> str:
    """The text of ``name`` (``-`` is stdin), as UTF-8."""
    data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    return data.decode("utf-8-sig")


def run(args: argparse.Namespace) -> int:
    """Print the token count of the file for the model; 1 if the file cannot be read."""
    settings = load_settings(workspace_root=Path.cwd()).settings
    info = lookup_model(
        args.model or settings.model, settings.context_window, settings.max_output_tokens
    )
    label = "stdin" if args.file == "-" else args.file
    try:
        text = _read(args.file)
    except OSError as exc:
        print(f"gpt-ls tokens: cannot read {label}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except UnicodeDecodeError as exc:
        print(f"gpt-ls tokens: {label} is not UTF-8 text ({exc.reason})", file=sys.stderr)
        return 1
    count = tokens.count_text(text, info.encoding)
    if info.notice:
        print(info.notice, file=sys.stderr)
    # A missing encoding was already reported once through logging (a warning).
    share = 100 * count / info.context_window
    print(
        f"{count:,} tokens in {label} for {info.name} "
        f"({info.encoding}, {exactness(info.name, info.encoding, info.known)}; "
        f"{share:.1f}% of the {info.context_window:,}-token context window)"
    )
    return 0


def exactness(model: str, encoding: str, known: bool) -> str:
    """"exact", or "approximate" and why: the count is only exact with the model's own tokenizer."""
    if not known:
        return f"approximate: {model}'s tokenizer is unknown, {encoding} is a guess"
    if not tokens.is_exact(encoding):
        return f"approximate: the {encoding} tokenizer data could not be loaded"
    return "exact"

