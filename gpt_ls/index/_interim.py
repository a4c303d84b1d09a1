"""Interim stand-ins for index14's Chunk and Hit until its store lands (removed at the merge)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    path: str
    start_line: int
    end_line: int
    text: str


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
