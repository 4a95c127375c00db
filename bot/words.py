"""Counts in words for everything qabot prints: "1 passage", "2 passages", "0 passages"."""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """`count` and `noun`, in the plural unless `count` is 1: plural(1, "new passage") is "1 new passage"."""
    return f"{count} {noun if count == 1 else plural_noun or noun + 's'}"
