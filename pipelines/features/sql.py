"""Quoting names and text into SQL (SQLite and DuckDB) where they cannot be bound parameters."""

from __future__ import annotations


def quote_identifier(name: str) -> str:
    """A table or column name, double-quoted, so any name (a keyword, a space) is taken as is."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A string literal, single-quoted."""
    return "'" + text.replace("'", "''") + "'"
