"""Identifier-aware, CJK-aware terms, pure: what the index adds beside a chunk's text, and what a query looks for.

SQLite's ``unicode61`` tokenizer already lowercases, folds diacritics and splits
``parse_config_file`` and ``parse-config-file`` at the punctuation. It cannot split
``parseConfigFile`` (one token) nor Chinese (``递归就是函数调用自身`` is one token). So beside each
chunk the index stores *extra terms*:

* the parts of every camelCase / PascalCase identifier (``parseConfigFile`` -> parse config file)
  and the joined form of every snake/kebab identifier (``parse_config_file`` -> parseconfigfile),
  so all spellings of a name meet in the same terms;
* every CJK run as overlapping bigrams (``函数调用`` -> 函数 数调 调用), so a two-character word is
  a term and a longer one is found by its bigrams; Latin words glued to CJK text are split off.

A query is split the same way; stop words ("how", "the") are dropped. A query with nothing
left raises ``QueryUnsearchable`` with a sentence, never an empty surprise.
"""

from __future__ import annotations

import re

from gpt_ls.errors import QueryUnsearchable

#: Longest query looked at, and most distinct terms searched for.
MAX_QUERY_CHARS = 1000
MAX_QUERY_TERMS = 32

_CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002fa1f"
_CJK = re.compile(f"[{_CJK_CLASS}]")
_CJK_RUN = re.compile(f"[{_CJK_CLASS}]+")
_GLUED_LATIN = re.compile(f"(?<=[{_CJK_CLASS}])[A-Za-z0-9]+|[A-Za-z0-9]+(?=[{_CJK_CLASS}])")
#: ASCII identifiers (one linear scan; each distinct one is then looked at once).
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
#: A word of a query: letters and digits of any script (underscore included, split later).
_WORD = re.compile(r"\w+")

STOP_WORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being
below between both but by can cannot could did do does doing don't down during each few for from
further had has have having he her here hers herself him himself his how i if in into is isn't it
its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves
""".split())


def split_identifier(word: str) -> list[str]:
    """``parseConfigFile`` / ``parse_config_file`` / ``HTTPServer2`` -> lowercase parts."""
    return [part.lower() for part in _PARTS.findall(word)]


def has_cjk(text: str) -> bool:
    """Does the text hold CJK characters (which need bigrams to be found)?"""
    return _CJK.search(text) is not None


def cjk_bigrams(run: str) -> list[str]:
    """A CJK run as overlapping bigrams; a single character stays itself."""
    if len(run) < 2:
        return [run]
    return [run[i:i + 2] for i in range(len(run) - 1)]


def extra_terms(text: str) -> str:
    """The terms stored beside ``text`` so identifiers and CJK words are found (space-separated)."""
    seen: dict[str, None] = {}
    for ident in sorted(set(_IDENT.findall(text))):
        if ident.islower() or ident.isupper() or (ident[1:].islower() and "_" not in ident):
            if "_" in ident.strip("_"):  # parse_config_file -> parseconfigfile
                seen[ident.replace("_", "").lower()] = None
            continue
        parts = split_identifier(ident)  # parseConfigFile, HTTPServer, load_userProfile
        if len(parts) > 1:
            seen.update(dict.fromkeys(parts))
            seen["".join(parts)] = None
    if has_cjk(text):
        out = [" ".join(seen)]
        for run in _CJK_RUN.findall(text):
            out.append(" ".join(cjk_bigrams(run)))  # in order: a phrase of bigrams is a substring
        out.extend(word.lower() for word in _GLUED_LATIN.findall(text))
        return " ".join(out).strip()
    return " ".join(seen)


def path_terms(path: str) -> str:
    """A path as searchable words: its text plus the parts of camelCase names in it."""
    return f"{path} {extra_terms(path)}".strip()


def query_terms(query: str) -> list[str]:
    """The terms a query looks for, in order, without duplicates; raises ``QueryUnsearchable``.

    A term ending in ``*`` is a prefix (a lone CJK character, found at the start of a bigram).
    """
    text = query[:MAX_QUERY_CHARS]
    found: dict[str, None] = {}
    stopped = False
    for word in _WORD.findall(text):
        for piece in _CJK_RUN.split(word):
            for latin in filter(None, piece.split("_")):
                parts = split_identifier(latin) or [latin.lower()]
                kept = [p for p in parts if p not in STOP_WORDS]
                stopped = stopped or len(kept) < len(parts)
                found.update(dict.fromkeys(kept))
                if len(parts) > 1 and kept:
                    found["".join(parts)] = None
        for run in _CJK_RUN.findall(word):
            found.update(dict.fromkeys(cjk_bigrams(run) if len(run) > 1 else [run + "*"]))
        joined = [p for p in re.split(r"[_\W]+", word) if p]
        if len(joined) > 1 and not has_cjk(word):
            found["".join(joined).lower()] = None
    terms = list(found)[:MAX_QUERY_TERMS]
    if terms:
        return terms
    if stopped:
        raise QueryUnsearchable(
            f"The query {query.strip()[:80]!r} has only common words (like \"the\", \"how\"); "
            "add a name or a word from the code or text you are looking for."
        )
    raise QueryUnsearchable(
        f"The query {query.strip()[:80]!r} has no words to search for (only punctuation or symbols); "
        "search for a name or a word from the code or text you are looking for."
    )


def quote(term: str) -> str:
    """One term as an FTS5 string (never FTS5 syntax); a trailing ``*`` stays a prefix query."""
    if term.endswith("*"):
        return '"' + term[:-1].replace('"', '""') + '"*'
    return '"' + term.replace('"', '""') + '"'


def match_expression(terms: list[str]) -> str:
    """Any of the terms (BM25 ranks chunks holding more, and rarer, of them first)."""
    return " OR ".join(quote(t) for t in terms)
