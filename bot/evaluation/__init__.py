"""Evaluation over question sets: question sets → runner → metrics → report, and the `qabot eval` command.

`exact_match` and `f1_score` are re-exported, loaded on first use so that this package stays cheap to import.
"""

from typing import Any

__all__ = ["exact_match", "f1_score"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from bot.evaluation import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
