"""A generated workspace for the indexing figures: code and Markdown with a realistic shape.

10,000 files, about 100 MB (``--quick``: 1,000 files, 10 MB), seeded, so every run indexes
the same bytes: 40 % Python, 25 % TypeScript, 15 % Go, 20 % Markdown (one in ten Markdown
files partly Chinese), in nested folders with a ``.gitignore`` (an ignored ``build/`` and
``node_modules/``), a few secrets and binaries. Identifiers are two or three words from a
2,000-word vocabulary drawn with Zipf weights (some words are in most files, most in few),
written camelCase, snake_case or PascalCase as each language does; function bodies are 5 to 40
lines of assignments, calls, conditions, loops and comments.
"""

from __future__ import annotations

import functools
import itertools
import random
from pathlib import Path

BASE_WORDS = """
config file parse load save user account session token request response handler server client
cache index query search result item list map set value key name path url route model view
controller service manager factory builder adapter proxy stream buffer reader writer event
message queue worker task job schedule retry timeout error status code header body payload
format render template style theme color layout widget button input output field form table
column row record entry node tree graph edge vertex matrix vector point line shape image file
upload download sync async lock mutex thread process signal channel socket port host address
auth login logout password hash salt encrypt decrypt sign verify certificate permission role
policy rule filter sort merge split join group count sum average min max limit offset page
""".split()
CHINESE = ("配置 文件 解析 加载 保存 用户 会话 请求 响应 缓存 索引 查询 结果 错误 状态 模型 视图 "
           "服务 管理 线程 进程 信号 通道 权限 角色 规则 过滤 排序 合并 分组 启动 关闭 连接").split()
SYLLABLES = "ka ro mi ne tu sa li po ve da zu fe gi ho ja ly qu wi xo bre tan mor sil vex dor".split()


def vocabulary(rng: random.Random, size: int = 2000) -> list[str]:
    words = list(dict.fromkeys(BASE_WORDS))
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        if word not in words:
            words.append(word)
    return words


class Writer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        self.cum = list(itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(self.words))))

    def pick(self, n: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cum, k=n)

    def ident(self, style: str) -> str:
        parts = self.pick(self.rng.randint(2, 3))
        if style == "snake":
            return "_".join(parts)
        if style == "pascal":
            return "".join(p.capitalize() for p in parts)
        return parts[0] + "".join(p.capitalize() for p in parts[1:])

    def snake(self) -> str:
        return self.ident("snake")

    def camel(self) -> str:
        return self.ident("camel")

    def pascal(self) -> str:
        return self.ident("pascal")

    def num(self) -> int:
        return self.rng.randint(0, 99)

    def sentence(self) -> str:
        return " ".join(self.pick(self.rng.randint(6, 16))).capitalize() + "."

    def python(self) -> str:
        out = [f'"""{self.sentence()}"""', "", "import os", f"from .{self.snake()} import {self.snake()}", ""]
        for _ in range(self.rng.randint(3, 10)):
            if self.rng.random() < 0.2:
                out += ["", "", f"class {self.pascal()}:", f'    """{self.sentence()}"""', ""]
                for _ in range(self.rng.randint(2, 5)):
                    out += [*self.py_function(4), ""]
            else:
                out += ["", "", *self.py_function(0)]
        return "\n".join(out) + "\n"

    def py_function(self, indent: int) -> list[str]:
        pad, inner = " " * indent, " " * (indent + 4)
        args = ", ".join(self.ident("snake") for _ in range(self.rng.randint(0, 3)))
        lines = [f"{pad}def {self.snake()}({args}):", f'{inner}"""{self.sentence()}"""']
        for _ in range(self.rng.randint(5, 30)):
            r = self.rng.random()
            if r < 0.5:
                lines.append(f"{inner}{self.snake()} = {self.snake()}({self.snake()}, {self.num()})")
            elif r < 0.65:
                lines += [f"{inner}if {self.snake()} is None:", f"{inner}    return {self.snake()}"]
            elif r < 0.8:
                item = self.pick(1)[0]
                lines += [f"{inner}for {item} in {self.snake()}:", f"{inner}    {self.snake()}.append({item})"]
            else:
                lines.append(f"{inner}# {self.sentence()}")
        lines.append(f"{inner}return {self.snake()}")
        return lines

    def typescript(self) -> str:
        out = [f'import {{ {self.camel()} }} from "./{self.camel()}";', ""]
        for _ in range(self.rng.randint(3, 10)):
            out += ["", f"/** {self.sentence()} */",
                    f"export function {self.camel()}({self.camel()}: string): number {{"]
            for _ in range(self.rng.randint(5, 30)):
                if self.rng.random() < 0.7:
                    out.append(f"  const {self.camel()} = {self.camel()}({self.camel()}, {self.num()});")
                else:
                    out += [f"  if (!{self.camel()}) {{", f"    return {self.rng.randint(0, 9)};", "  }"]
            out += [f"  return {self.camel()}.length;", "}"]
        return "\n".join(out) + "\n"

    def go(self) -> str:
        out = [f"package {self.pick(1)[0]}", "", 'import "fmt"', ""]
        for _ in range(self.rng.randint(3, 10)):
            out += ["", f"// {self.pascal()} {self.sentence()}",
                    f"func {self.pascal()}({self.camel()} string) error {{"]
            for _ in range(self.rng.randint(5, 30)):
                if self.rng.random() < 0.7:
                    out.append(f"\t{self.camel()} := {self.pascal()}({self.camel()})")
                else:
                    out += [f"\tif {self.camel()} != nil {{", f'\t\treturn fmt.Errorf("{self.sentence()}")', "\t}"]
            out += ["\treturn nil", "}"]
        return "\n".join(out) + "\n"

    def markdown(self, chinese: bool) -> str:
        out = [f"# {' '.join(self.pick(3)).title()}", ""]
        for _ in range(self.rng.randint(4, 12)):
            out += [f"## {' '.join(self.pick(3)).title()}", ""]
            for _ in range(self.rng.randint(1, 4)):
                text = " ".join(self.sentence() for _ in range(self.rng.randint(2, 6)))
                if chinese:
                    text += " " + "".join(self.rng.choices(CHINESE, k=self.rng.randint(8, 30))) + "。"
                out += [text, ""]
            if self.rng.random() < 0.4:
                out += ["```python", f"{self.snake()}({self.snake()})", "```", ""]
        return "\n".join(out) + "\n"


def generate(root: Path, files: int, target_bytes: int, seed: int = 14) -> int:
    """Write the workspace under ``root``; the bytes written. Files grow until the target size."""
    writer = Writer(seed)
    rng = writer.rng
    root.mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("build/\nnode_modules/\n*.log\n")
    for where, name in (("build", "out.js"), ("node_modules/dep", "index.js"), ("", ".env"), ("keys", "server.pem")):
        (root / where).mkdir(parents=True, exist_ok=True)
        (root / where / name).write_text("ignored or secret\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1000))
    total = 0
    per_file = target_bytes / files
    for i in range(files):
        folder = root / f"pkg{i % 40:02}" / f"mod{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        kind = rng.random()
        chinese = rng.random() < 0.1
        if kind < 0.4:
            name, make = f"{writer.ident('snake')}_{i}.py", writer.python
        elif kind < 0.65:
            name, make = f"{writer.ident('camel')}{i}.ts", writer.typescript
        elif kind < 0.8:
            name, make = f"{writer.ident('snake')}_{i}.go", writer.go
        else:
            name, make = f"{writer.ident('snake')}_{i}.md", functools.partial(writer.markdown, chinese)
        text = make()
        # Keep the running size near the target: a file grows by whole parts while it is behind.
        while total + len(text) < per_file * (i + 1) * 0.9:
            text += "\n" + make()
        data = text.encode("utf-8")
        (folder / name).write_bytes(data)
        total += len(data)
    return total
