"""Logging to stderr or a file, with every known secret masked.

stdout carries the LSP wire, so nothing here ever writes to it. pygls logs whole
JSON-RPC messages at debug level (``initializationOptions`` may hold ``apiKey``), so
masking (:func:`gpt_ls.secrets.mask`) happens in a filter on our handler, over the
final text of every record.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
from pathlib import Path

from gpt_ls.files import open_private, private_dir
from gpt_ls.secrets import add_secret, mask


class SecretFilter(logging.Filter):
    """Masks secrets in the formatted message and drops the raw arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        record.msg = mask(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


#: Arguments of a library's log line that are only a name (a method, a command), kept below -vv.
_NAME = re.compile(r"[\w$/.:\-]{1,80}")


class EventsOnly(logging.Filter):
    """Below ``-vv``: a library's log line keeps its event, not its payload.

    pygls logs every message it sends at info level ("Sending data: {…}"), and the
    ``initialize`` parameters: document text, replies and settings. Their arguments are
    replaced by ``…`` unless they are numbers or short names; gpt-ls's own lines never
    carry document text or replies below debug level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("gpt_ls") or not record.args:
            return True
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        kept = tuple(a if isinstance(a, (int, float)) or (isinstance(a, str) and _NAME.fullmatch(a))
                     else "… (shown at -vv)" for a in args)
        try:
            record.msg, record.args = str(record.msg) % kept, None
        except (TypeError, ValueError):
            record.msg, record.args = f"{record.msg} (arguments shown at -vv)", None
        return True


class NoTraceback(logging.Filter):
    """On stderr (a terminal, or the editor's own log): a failure is one line; its traceback goes only to --log-file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info or record.exc_text or record.stack_info:
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.msg = f"{record.msg} (the traceback is written only to a --log-file)"
        return True


def setup_logging(verbosity: int = 0, log_file: str | None = None) -> None:
    """Send logs to ``log_file`` (or stderr): warnings by default, ``-v`` info, ``-vv`` debug.

    The file is created owner-only and never through a symlink (``files.open_private``);
    a file that cannot be opened so raises :class:`gpt_ls.errors.FileRefused`.
    """
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler: logging.Handler
    if log_file:
        path = Path(log_file)
        if not path.parent.exists():
            private_dir(path.parent)
        stream = io.TextIOWrapper(open_private(path, append=True), encoding="utf-8", line_buffering=True)
        handler = logging.StreamHandler(stream)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if verbosity < 2:
        handler.addFilter(EventsOnly())  # first: it needs the arguments SecretFilter drops
    handler.addFilter(SecretFilter())
    if not log_file:
        handler.addFilter(NoTraceback())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    add_secret(os.environ.get("OPENAI_API_KEY"))
    if verbosity >= 2:
        logging.getLogger(__name__).warning(
            "debug logging (-vv): this log holds document text, prompts and replies; "
            "use -v for events only")
