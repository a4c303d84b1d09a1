"""Search finds identifiers in every spelling, Chinese words of two or more characters; says why a query is empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_ls.errors import QueryUnsearchable
from gpt_ls.index.search import plans
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.index.terms import cjk_bigrams, extra_terms, query_terms, split_identifier
from gpt_ls.settings import Settings
from tests.test_index_walk import make

FILES = {
    "camel.ts": "export function parseConfigFile(path: string) {\n  return read(path);\n}\n",
    "snake.py": "def load_user_profile(user_id):\n    return db.get(user_id)\n",
    "pascal.go": "func ResolveHttpProxy(url string) string {\n\treturn url\n}\n",
    "notes.md": "# 笔记\n\n递归就是函数调用自身。\n\n配置文件的解析在启动时完成。\n\n表情 😀 emoji here.\n",
    "other.txt": "Nothing relevant lives here, only filler words about apples.\n",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkspaceIndex]:
    base = tmp_path_factory.mktemp("search")
    root = make(base / "ws", FILES)
    idx = WorkspaceIndex.open(root, Settings(), {"GPT_LS_DATA_DIR": str(base / "data")})
    idx.update()
    yield idx
    idx.close()


def top(index: WorkspaceIndex, query: str) -> str:
    hits = index.search(query, 5)
    assert hits, query
    return hits[0].chunk.path


@pytest.mark.parametrize("query", ["parseConfigFile", "parse_config_file", "ParseConfigFile", "parse config file",
                                   "parse-config-file", "PARSE CONFIG"])
def test_camel_case_found_every_way(index: WorkspaceIndex, query: str) -> None:
    assert top(index, query) == "camel.ts"


@pytest.mark.parametrize("query", ["load_user_profile", "loadUserProfile", "LoadUserProfile", "load user profile",
                                   "loaduserprofile"])
def test_snake_case_found_every_way(index: WorkspaceIndex, query: str) -> None:
    assert top(index, query) == "snake.py"


@pytest.mark.parametrize("query", ["ResolveHttpProxy", "resolve_http_proxy", "http proxy"])
def test_pascal_case_found_every_way(index: WorkspaceIndex, query: str) -> None:
    assert top(index, query) == "pascal.go"


@pytest.mark.parametrize("query", ["递归", "函数", "配置文件", "函数调用自身", "如何解析配置文件？", "笔记"])
def test_chinese_words_of_two_and_more_characters(index: WorkspaceIndex, query: str) -> None:
    hit = index.search(query, 5)[0]
    assert hit.chunk.path == "notes.md"
    assert any(word in hit.chunk.text for word in cjk_bigrams(query.rstrip("？")))


def test_single_chinese_character_and_emoji_neighbours(index: WorkspaceIndex) -> None:
    assert top(index, "递") == "notes.md"
    assert top(index, "emoji 😀") == "notes.md"


def test_scores_are_higher_for_better_hits(index: WorkspaceIndex) -> None:
    hits = index.search("parse config file read path", 5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score > 0


@pytest.mark.parametrize(("query", "why"), [
    ("the of and how", "only common words"), ("what is it?", "only common words"),
    ("!!! ... ???", "no words to search for"), ("😀😀", "no words to search for"), ("", "no words to search for"),
])
def test_a_query_with_nothing_to_search_says_so(index: WorkspaceIndex, query: str, why: str) -> None:
    with pytest.raises(QueryUnsearchable, match=why):
        index.search(query)


def test_a_query_of_absent_words_finds_nothing(index: WorkspaceIndex) -> None:
    assert index.search("zyzzyva quux") == []


def test_fts_syntax_in_a_query_is_only_text(index: WorkspaceIndex) -> None:
    assert top(index, 'parse" OR NEAR(config) AND * file:') == "camel.ts"


def test_terms() -> None:
    assert split_identifier("HTTPServer2Config") == ["http", "server", "2", "config"]
    assert extra_terms("x = parseConfigFile(a_b)").split() == ["ab", "parse", "config", "file", "parseconfigfile"]
    assert extra_terms("调用parse函数").split() == ["调用", "函数", "parse"]
    assert query_terms("How does parseConfigFile work?") == ["parse", "config", "file", "parseconfigfile", "work"]
    assert query_terms("如何解析配置文件？ load_user") == [
        "如何", "何解", "解析", "析配", "配置", "置文", "文件", "load", "user", "loaduser"]


def test_query_plans_keep_the_cost_bounded() -> None:
    counts = {"self": 9000, "return": 9500, "frobnicate": 3, "widget": 2000, "parse": 4000}
    assert plans(["self", "return", "frobnicate"], counts, 10_000) == [('"frobnicate"', True)]  # over half: weight 0
    assert plans(["widget", "frobnicate", "递*"], counts, 10_000) == [('"frobnicate" OR "widget" OR "递"*', True)]
    assert plans(["self", "return"], counts, 10_000) == [('"self" OR "return"', False)]
    assert plans(["nope", "递*"], {"nope": 0}, 10_000) == [('"递"*', True)]
    assert plans(["nope"], {"nope": 0}, 10_000) == [('"nope"', True)]
    big = {"a": 2_500, "b": 2_000, "c": 7_000}  # the budget: 6,000 chunks
    assert plans(["a", "b", "c"], big, 100_000) == [('"b" OR "a"', True)]
    assert plans(["c", "a"], big, 100_000) == [('"a"', True)]
    assert plans(["c"], big, 100_000) == [('"c"', False)]


def test_a_query_of_common_words_still_finds_chunks(tmp_path: Path) -> None:
    files = {f"f{i}.py": f"def handler_{i}():\n    return config\n" for i in range(40)}
    files["named.py"] = "def config():\n    return config\n"
    root = make(tmp_path / "ws", files)
    with WorkspaceIndex.open(root, Settings()) as idx:
        idx.update()
        hits = idx.search("config return", 3)  # both in every chunk: a window of them is ranked
        assert len(hits) == 3 and hits[0].chunk.path == "named.py"  # the chunk that defines config first
        assert idx.search("config", 1)[0].chunk.path == "named.py"
        assert len(idx.search("return", 5)) == 5  # in every chunk, defined in none
