"""``gpt-ls history``: browse, export, search and forget stored conversations.

Only argument parsing and printing live here; the store is ``gpt_ls.history.store``.
The workspace of the current directory is the nearest ancestor holding ``.git`` or
``.gpt-ls.toml`` (else the directory itself), the same key the language server uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from gpt_ls.errors import ConversationNotFound, GptLsError, HistoryError
from gpt_ls.history.export import to_json, to_markdown
from gpt_ls.history.store import Conversation, HistoryStore, workspace_key
from gpt_ls.settings import find_workspace_root

SNIPPET_CHARS = 70


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``history`` and its subcommands to the main ``gpt-ls`` parser."""
    parser = sub.add_parser(
        "history",
        help="browse, export, search or clear stored conversations",
        description="Conversations are stored per workspace (GPT_LS_DATA_DIR moves them).",
    )
    parser.set_defaults(func=run)
    cmds = parser.add_subparsers(dest="history_command", metavar="COMMAND", required=True)

    p = cmds.add_parser("list", help="recent conversations of this workspace")
    p.add_argument("--all", action="store_true", help="every workspace")
    p.add_argument("--limit", type=_positive, default=20, metavar="N", help="at most N (20)")

    p = cmds.add_parser("show", help="print a conversation as Markdown")
    p.add_argument("id", type=int, metavar="ID")

    p = cmds.add_parser("export", help="write a conversation as Markdown or JSON")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--format", choices=("md", "json"), default="md")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="a file instead of stdout")

    p = cmds.add_parser("search", help="messages containing every word of TEXT")
    p.add_argument("words", nargs="+", metavar="TEXT", help="words to find, all of them (in any order)")
    p.add_argument("--all", action="store_true", help="every workspace, not just this one")
    p.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N (50)")

    cmds.add_parser("usage", help="tokens used in this workspace (and the cost, with prices set)")

    p = cmds.add_parser("clear", help="delete conversations (all, or one workspace's)")
    p.add_argument("--workspace", type=Path, metavar="PATH", help="only this workspace")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    """Run one ``history`` subcommand; 0 on success, 1 with a message on stderr otherwise."""
    commands: dict[str, Callable[[HistoryStore, argparse.Namespace], int]] = {
        "list": _list,
        "show": _show,
        "export": _export,
        "search": _search,
        "clear": _clear,
        "usage": _usage,
    }
    try:
        store = HistoryStore.open()
    except HistoryError as exc:
        return _fail(str(exc))
    try:
        if store.notice:
            print(f"gpt-ls: {store.notice}", file=sys.stderr)
        return commands[args.history_command](store, args)
    except ConversationNotFound:
        return _fail(
            f"no conversation with id {args.id} (see `gpt-ls history list --all` for the ids)"
        )
    except (GptLsError, OSError) as exc:
        return _fail(str(exc))
    finally:
        store.close()


def _usage(store: HistoryStore, args: argparse.Namespace) -> int:
    from gpt_ls.budget import usage_summary
    from gpt_ls.settings import load_settings

    root = find_workspace_root(Path.cwd())
    prices = load_settings(workspace_root=root).settings.prices
    by_model = store.usage_by_model(workspace_key(root))
    print(f"{workspace_key(root)}: {usage_summary(by_model, prices)}")
    for model, (prompt, completion) in sorted(by_model.items()):
        print(f"  {model or '(unknown model)'}: {prompt:,} prompt + {completion:,} completion")
    return 0


def _fail(message: str) -> int:
    print(f"gpt-ls history: {message}", file=sys.stderr)
    return 1


def _here() -> str:
    return workspace_key(find_workspace_root(Path.cwd()))


def _when(iso: str) -> str:
    """``2026-11-25T23:08:55.819370Z`` -> ``2026-11-25 23:08`` (still UTC)."""
    return iso[:16].replace("T", " ")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _list(store: HistoryStore, args: argparse.Namespace) -> int:
    workspace = None if args.all else _here()
    convs = store.list_conversations(workspace, limit=args.limit)
    if not convs:
        where = "any workspace" if workspace is None else f"workspace {workspace or '(none)'}"
        hint = "" if workspace is None else " (--all shows every workspace)"
        print(f"No conversations in {where}{hint}.")
        return 0
    print("ID\tUPDATED (UTC)\tMESSAGES\t" + ("WORKSPACE\t" if args.all else "") + "TITLE")
    for conv in convs:
        print(_row(conv, with_workspace=args.all))
    return 0


def _row(conv: Conversation, with_workspace: bool) -> str:
    cells = [str(conv.id), _when(conv.updated), str(conv.message_count)]
    if with_workspace:
        cells.append(conv.workspace or "(no workspace)")
    cells.append(_one_line(conv.title) or "(untitled)")
    return "\t".join(cells)


def _show(store: HistoryStore, args: argparse.Namespace) -> int:
    sys.stdout.write(to_markdown(*store.get_conversation(args.id)))
    return 0


def _export(store: HistoryStore, args: argparse.Namespace) -> int:
    conv, messages = store.get_conversation(args.id)
    text = to_json(conv, messages) if args.format == "json" else to_markdown(conv, messages)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    # The export is as private as the database it came from (an existing file becomes
    # 0600 too), and never written through a symlink.
    from gpt_ls.files import write_private

    write_private(Path(args.output), text)
    print(f"Wrote conversation {conv.id} to {args.output}", file=sys.stderr)
    return 0


def _snippet(content: str, words: list[str]) -> str:
    """The first match with a little context on each side, on one line."""
    flat = _one_line(content)
    lowered = flat.lower()
    at = min((i for w in words if (i := lowered.find(w.lower())) >= 0), default=0)
    start = max(0, min(at - SNIPPET_CHARS // 3, len(flat) - SNIPPET_CHARS))
    piece = flat[start : start + SNIPPET_CHARS]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(flat) else "")


def _search(store: HistoryStore, args: argparse.Namespace) -> int:
    workspace = None if args.all else _here()
    args.text = " ".join(args.words)  # every word, as the editor's history search
    found = store.search(args.text, workspace=workspace, limit=args.limit)
    if not found:
        print(f"Nothing matches {args.text!r}.", file=sys.stderr)
        return 1
    words = args.text.split()
    for msg in found:
        status = "" if msg.status == "complete" else f" [{msg.status}]"
        print(
            f"{msg.conversation_id}\t{_when(msg.created)}\t{msg.role}{status}\t"
            f"{_snippet(msg.content, words)}"
        )
    return 0


def _clear(store: HistoryStore, args: argparse.Namespace) -> int:
    workspace = workspace_key(args.workspace) if args.workspace is not None else None
    scope = "every workspace" if workspace is None else f"workspace {workspace}"
    count = store.count_conversations(workspace)
    if count == 0:
        print(f"No conversations in {scope}; nothing to clear.")
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            return _fail(f"this would delete {count} conversation(s) in {scope}; add --yes")
        answer = input(f"Delete {count} conversation(s) in {scope}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return 1
    deleted = store.clear(workspace)
    print(f"Deleted {deleted} conversation(s) in {scope}.")
    return 0

