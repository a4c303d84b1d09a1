"""The selection's file and its neighbours (gpt_ls.index.imports, gpt_ls.index.neighbours), pure, and the
index's search restricted to one file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt_ls.index import search
from gpt_ls.index.chunks import Chunk, chunk_text
from gpt_ls.index.context import Source, fit_sources, render_block, select_context
from gpt_ls.index.imports import Neighbour, counterparts, neighbours, normal
from gpt_ls.index.neighbours import (
    LOCAL_RANK,
    WINDOW_CHARS,
    Around,
    fitted,
    line_offset,
    merge,
    neighbour_query,
    neighbour_sources,
    ordered,
    plan,
    selection_sources,
    without,
)
from gpt_ls.index.search import Hit
from gpt_ls.index.store import WorkspaceIndex
from gpt_ls.models import lookup_model
from gpt_ls.settings import Settings
from tests.test_index_walk import make

GPT4 = lookup_model("gpt-4")


def defs(n: int, body: int = 14, marker: str = "注释 😀") -> str:
    """``n`` Python functions of ``body`` lines each (each over 400 characters: a chunk of its own)."""
    return "".join(f"def step_{i}(x):\n" + "".join(f"    y_{j} = x + {j}  # {marker} {i}\n" for j in range(body))
                   + "    return x\n\n\n" for i in range(n))


# -- imports ------------------------------------------------------------------------------


def test_python_imports_resolve_to_workspace_files_only() -> None:
    files = {"src/配置/解析.py", "src/配置/__init__.py", "src/应用/main.py", "src/应用/helpers.py",
             "src/应用/sub/__init__.py", "tests/test_main.py", "lib/shared.py", "os.py.txt"}
    text = ("import os, json\nimport shared as s\nfrom 配置.解析 import parse_config_file, DEFAULTS\n"
            "from . import helpers\nfrom .sub import thing\nfrom .... import outside\nfrom missing.mod import x\n"
            "from 配置 import (\n    解析,  # the module\n    other,\n)\n\n"
            "def run():\n    return parse_config_file(helpers.path())\n")
    found = neighbours("src/应用/main.py", text, files, focus="parse_config_file(helpers.path())", limit=10)
    assert [n.path for n in found] == [
        "src/配置/解析.py", "src/应用/helpers.py", "tests/test_main.py", "lib/shared.py", "src/应用/sub/__init__.py",
        "src/配置/__init__.py"]
    assert found[0].names == ("parse_config_file", "DEFAULTS", "解析") and found[0].why == "import"
    assert found[2].why == "counterpart"
    assert [n.path for n in neighbours("src/应用/main.py", text, files, limit=2)] == [
        "tests/test_main.py", "lib/shared.py"]  # nothing mentioned: the test, then the imports in order


def test_script_c_and_rust_imports_and_paths_that_leave_the_root() -> None:
    files = {"web/src/设置 😀.ts", "web/src/lib/index.tsx", "web/src/util.js", "web/src/app.test.ts",
             "web/src/app.ts", "include/geo.h", "src/geo.c", "src/geo/impl.h", "crate/src/net.rs",
             "crate/src/net/tcp.rs", "crate/src/lib.rs", "secret.ts"}
    script = ('import { load, save as keep } from "./设置 😀.js";\nimport React from "react";\n'
              "const lib = require('./lib');\nexport * from './util';\nimport('../../../secret');\n"
              "import type { T } from '../../../../etc/passwd';\n")
    assert [(n.path, n.names) for n in neighbours("web/src/app.ts", script, files, limit=10)] == [
        ("web/src/app.test.ts", ("app.test",)), ("web/src/设置 😀.ts", ("load", "save", "keep")),
        ("web/src/lib/index.tsx", ("lib",)), ("web/src/util.js", ("util",))]
    c = '#include "geo/impl.h"\n#include "geo.h"\n#include <stdio.h>\n#include "../../../../etc/x.h"\n'
    assert [n.path for n in neighbours("src/geo.c", c, files)] == ["src/geo/impl.h", "include/geo.h"]
    rust = "pub mod net;\nmod absent;\nuse std::io;\n"
    assert [n.path for n in neighbours("crate/src/lib.rs", rust, files)] == ["crate/src/net.rs"]
    assert [n.path for n in neighbours("crate/src/net.rs", "pub(crate) mod tcp;\n", files)] == ["crate/src/net/tcp.rs"]
    assert neighbours("notes.txt", "import os\n", files) == []
    assert normal("a/../../b") is None and normal("/etc/passwd") is None and normal("a/./b/../c") == "a/c"


def test_what_the_user_points_at_ranks_the_neighbours_even_an_import_line() -> None:
    files = {"pkg/alpha.py", "pkg/beta.py", "pkg/test_app.py"}
    text = "from .alpha import Alpha\nfrom .beta import Beta\n\nx = Alpha()\n"
    assert [n.path for n in neighbours("pkg/app.py", text, files, focus=text)] == [
        "pkg/alpha.py", "pkg/test_app.py", "pkg/beta.py"]  # Alpha is used (its import line does not count)
    assert [n.path for n in neighbours("pkg/app.py", text, files, focus=text, pointed="from .beta import Beta")] == [
        "pkg/beta.py", "pkg/alpha.py", "pkg/test_app.py"]


def test_a_name_taken_from_a_package_leads_to_the_module_it_comes_from() -> None:
    files = {"src/包/__init__.py", "src/包/core.py", "src/包/termui.py", "app.py"}
    init = "from .core import Group as Group\nfrom .termui import confirm\n"
    text = "import 包\n\n包.confirm('ok?')\n"
    got = neighbours("app.py", text, files, focus=text, read={"src/包/__init__.py": init}.get)
    assert [(n.path, n.names) for n in got] == [("src/包/termui.py", ("confirm",))]
    assert [n.path for n in neighbours("app.py", text, files, focus=text)] == ["src/包/__init__.py"]  # no reader


def test_counterparts_of_modules_and_tests() -> None:
    assert counterparts("src/pkg/foo.py")[:3] == ["src/pkg/test_foo.py", "src/pkg/foo_test.py",
                                                   "src/pkg/tests/test_foo.py"]
    assert "tests/pkg/test_foo.py" in counterparts("src/pkg/foo.py")
    assert counterparts("tests/test_foo.py") == ["tests/foo.py", "foo.py", "src/foo.py"]
    assert counterparts("a/b.spec.ts") == ["a/b.ts", "b.ts"]
    assert counterparts("x/y.go") == ["x/y_test.go"] and counterparts("x/y_test.go") == ["x/y.go"]
    assert "include/geo.h" in counterparts("src/geo.c")
    assert counterparts("README.md") == []


def test_a_huge_file_s_imports_are_read_from_its_head_only() -> None:
    text = "import near\n" + "x = 1\n" * 200_000 + "import far\n"
    assert [n.path for n in neighbours("big.py", text, {"near.py", "far.py"})] == ["near.py"]


# -- the selection's file -----------------------------------------------------------------


def labels(around: Around) -> list[str]:
    return [s.label for s in (*around.holding, *around.beside)]


def test_the_enclosing_chunk_first_then_before_and_after_without_the_sent_lines() -> None:
    text = defs(6)
    chunks = chunk_text("src/模块 😀.py", text)
    assert [(c.start_line, c.end_line) for c in chunks[1:4]] == [(19, 34), (37, 52), (55, 70)]
    selected = 41  # 0-based: line 42, inside step_2; the excerpt sent: 40-44
    got = selection_sources("src/模块 😀.py", text, selected, selected, (40, 44))
    assert [s.label for s in got.holding] == ["src/模块 😀.py:37-39", "src/模块 😀.py:45-52"]
    assert [s.label for s in got.beside] == ["src/模块 😀.py:19-34", "src/模块 😀.py:55-70"]
    assert got.holding[0].text.startswith("def step_2(x):\n") and "注释 😀 2" in got.holding[0].text
    assert got.holding[1].text.endswith("    return x")
    assert {s.rank for s in (*got.holding, *got.beside)} == {LOCAL_RANK}
    whole = selection_sources("src/模块 😀.py", text, selected, selected, None)
    assert labels(whole) == ["src/模块 😀.py:37-52", "src/模块 😀.py:19-34", "src/模块 😀.py:55-70"]
    assert whole.holding[0].text == chunks[2].text
    # Everything inside the excerpt: nothing of the file goes twice.
    assert selection_sources("src/模块 😀.py", text, selected, selected, (1, 10_000)) == Around()


def test_a_selection_in_blank_lines_gets_the_chunks_on_either_side() -> None:
    got = selection_sources("a.py", defs(3), 34, 34)  # the first blank line after step_1
    assert got.holding == () and labels(got) == ["a.py:19-34", "a.py:37-52"]


def test_without_cuts_a_head_and_a_tail() -> None:
    source = Source("说明.md", 10, 14, "第一行\n\n第三行\n第四行\n第五行", LOCAL_RANK)
    assert [(s.label, s.text) for s in without(source, (12, 12))] == [("说明.md:10", "第一行"),
                                                                       ("说明.md:13-14", "第四行\n第五行")]
    assert without(source, (1, 9)) == [source] and without(source, (10, 14)) == []
    long_line = Source("min.js", 3, 3, "x" * 50, LOCAL_RANK)
    assert without(long_line, (3, 3)) == [] and without(long_line, (4, 9)) == [long_line]


def test_line_offsets_skip_blocks_of_lines_and_agree_with_a_plain_count() -> None:
    text = "".join(f"行 {i} 😀\n" if i % 7 else "\n" for i in range(40_000)) + "末尾"  # ~400 KB, several blocks
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    for line in (0, 1, 6, 7, 9_999, 10_000, 23_456, 39_999, 40_000):
        assert line_offset(text, line) == starts[line]
    assert line_offset(text, 40_001) == line_offset(text, 10**9) == len(text)


def test_a_huge_file_is_chunked_only_around_the_selection() -> None:
    line = "    value = compute(参数, '😀')  # filler\n"
    text = "def big():\n" + line * 200_000 + "def tail():\n    return 1\n"  # ~8 MB
    around = selection_sources("big.py", text, 100_000, 100_000)
    got = [*around.holding, *around.beside]
    assert len(got) == 3 and all(abs(s.start_line - 100_000) < 20_000 for s in got)
    assert sum(len(s.text) for s in got) <= 4 * 2400
    minified = "var a=1;" * 1_000_000  # one line of 8 MB
    around = selection_sources("app.min.js", minified, 0, 0)
    pieces = [*around.holding, *around.beside]
    assert pieces and all(s.start_line == 1 for s in pieces) and sum(len(s.text) for s in pieces) <= 4 * 2400
    assert len(minified) > 8 * WINDOW_CHARS


# -- neighbours and the merge -------------------------------------------------------------


def test_neighbour_queries_sources_and_their_priority() -> None:
    near = Neighbour("src/a.py", ("parse_config",))
    assert neighbour_query("why 空?", near) == "parse_config why 空?"
    found = {"src/a.py": [Hit(Chunk("src/a.py", 5 + 10 * i, 9 + 10 * i, "def parse_config():\n    ..."), 2.0)
                          for i in range(3)],
             "tests/test_b.py": [Hit(Chunk("tests/test_b.py", 1, 2, "import b\n"), 0.0)]}
    best, more = neighbour_sources(found)
    assert [s.label for s in best] == ["src/a.py:5-9", "tests/test_b.py:1-2"]
    assert [s.label for s in more] == ["src/a.py:15-19"]  # two chunks of a neighbour at most
    assert {s.rank for s in (*best, *more)} == {LOCAL_RANK}
    own = Around((Source("m.py", 10, 20, "x", LOCAL_RANK),), (Source("m.py", 1, 8, "y", LOCAL_RANK),))
    assert [s.label for s in ordered(own, best, more)] == [
        "m.py:10-20", "src/a.py:5-9", "tests/test_b.py:1-2", "m.py:1-8", "src/a.py:15-19"]


def test_plan_names_the_neighbours_to_search_and_what_for() -> None:
    text = "from .config import parse_config\nimport other\n\n\n" + defs(2) + "def go():\n    parse_config()\n"
    own, queries = plan("pkg/app.py", text, 41, 41, "Why 空?", {"pkg/config.py", "other.py", "pkg/test_app.py"})
    assert labels(own) == ["pkg/app.py:23-42", "pkg/app.py:1-20"]  # go() joined step_1 (small); the head beside
    # parse_config is used (its import line does not count), so first; then the test; then the unused import.
    assert queries == [("pkg/config.py", "parse_config Why 空?"), ("pkg/test_app.py", "test_app Why 空?"),
                       ("other.py", "other Why 空?")]


def _hits(n: int, lines: int = 60) -> list[Hit]:
    body = "".join(f"    value_{i} = compute({i}, '参数 {i} 😀')\n" for i in range(lines))
    return [Hit(Chunk(f"src/m{i}.py", 1, lines, body), 10.0 - i) for i in range(n)]


def ranks_local(kept: list[Source]) -> int:
    return sum(1 for s in kept if s.rank == LOCAL_RANK)


def test_local_excerpts_go_first_within_their_share_and_the_hits_fill_the_rest() -> None:
    room = 6000
    local = [Source("src/应用.py", 1, 60, "".join(f"    local_{i} = 1  # 😀\n" for i in range(60)), LOCAL_RANK)
             for _ in range(1)]
    local += [Source(f"src/n{i}.py", 1, 60, _hits(1)[0].chunk.text, LOCAL_RANK) for i in range(8)]
    hits = _hits(30)
    kept, used, exact = merge(local, [Source(h.chunk.path, 1, 60, h.chunk.text, r) for r, h in enumerate(hits)],
                              room, GPT4)
    assert 3 <= len(kept) - ranks_local(kept) < 30
    assert exact and used <= room
    ranks = [s.rank for s in kept]
    mine = ranks.count(LOCAL_RANK)
    assert kept[0].path == "src/应用.py" and ranks[:mine] == [LOCAL_RANK] * mine and 1 <= mine < len(local)
    alone, alone_used, _ = fit_sources(local, room * 30 // 100, GPT4)
    assert len(alone) == mine and alone_used <= room * 30 // 100
    assert ranks[mine:] == list(range(len(kept) - mine))  # then the hits in rank order
    sources = [Source(h.chunk.path, 1, 60, h.chunk.text, r) for r, h in enumerate(hits)]
    assert len(kept) - mine >= len(fit_sources(sources, room * 70 // 100, GPT4)[0])  # >= 70 % for the hits


def test_without_local_excerpts_the_fit_is_the_hits_alone_and_overlaps_go_once() -> None:
    hits = _hits(20)
    plain = select_context("q", hits, "gpt-4", Settings(), overhead=500)
    same = fitted([], hits, plain.budget, GPT4)
    assert same.labels == plain.labels and same.block == plain.block
    text = "".join(f"line {i} 行\n" for i in range(1, 41))
    mine = [Source("src/同.py", 11, 20, "".join(text.splitlines(keepends=True)[10:20]), LOCAL_RANK)]
    dup = [Hit(Chunk("src/同.py", 1, 40, text), 5.0)]
    got = fitted(mine, dup, 6000, GPT4)
    assert got.labels == ["src/同.py:11-20", "src/同.py:1-10", "src/同.py:21-40"]  # the hit without the local lines
    assert got.block == render_block(got.sources) and got.left_out == 0
    # The lines sent as the excerpt around the selection are left out of the hits too.
    sent = fitted([], [*dup, Hit(Chunk("src/同.py", 30, 32, "line 30 行\n"), 1.0)], 6000, GPT4, ("src/同.py", 5, 35))
    assert sent.labels == ["src/同.py:1-4", "src/同.py:36-40"] and sent.left_out == 0


# -- the index's search within one file --------------------------------------------------


def test_search_file_ranks_one_file_s_chunks_and_falls_back_to_its_head(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = defs(8).replace("def step_5(x):\n", "def step_5(x):\n    \"\"\"解析配置文件 parse the config file.\"\"\"\n")
    calls = "".join(f"def use_{i}():\n" + "    parse_config_file('x')  # 调用\n" * 30 + "\n\n" for i in range(2))
    calls += "def parse_config_file(path):\n" + "    check(path)  # 定义\n" * 30
    root = make(tmp_path / "ws", {".git/HEAD": "ref\n", "src/配置 😀.py": body, "calls.py": calls,
                                  "other.py": "def parse_config_file():\n    pass\n"})
    with WorkspaceIndex.open(root, Settings()) as index:
        index.update()
        best = index.search_file("parse config file", "src/配置 😀.py", 2)
        assert best[0].chunk.path == "src/配置 😀.py" and best[0].chunk.text.startswith("def step_5(x):")
        assert all(h.chunk.path == "src/配置 😀.py" for h in best)
        defined = index.search_file("parse_config_file why", "calls.py", 3)  # the definition before the calls
        assert [h.chunk.text.split("(")[0] for h in defined] == ["def parse_config_file", "def use_0", "def use_1"]
        assert defined[0].score > defined[1].score == defined[2].score > 0
        head = index.search_file("zyzzyva", "src/配置 😀.py", 2)
        assert [h.chunk.start_line for h in head] == [1, 19] and {h.score for h in head} == {0.0}
        assert index.search_file("the how", "src/配置 😀.py", 1)[0].chunk.start_line == 1  # stop words only
        assert index.search_file("parse", "../outside.py", 2) == [] and index.search_file("x", "missing.py", 2) == []
        monkeypatch.setattr(search, "RANGE_SLACK", -10**9)  # chunks scattered: one lookup each, the same result
        assert index.search_file("parse config file", "src/配置 😀.py", 2) == best
