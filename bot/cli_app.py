"""The Typer app every `qabot` command and command group is made with: `-h` as well as `--help`, and
help that names values in words (`--top-k N`, `TARGET...`) and shows nothing after a flag.

Typer's help shows the Python type of every parameter that lacks a metavar (`<int>`, `<list[Path]>`),
of every argument even with one (`<path>`), of every flag (`<bool>`, `--help` included) and ranges
as `[x>=1]`. Here each parameter is shown by its metavar alone, so each option names one.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class _WordsOption(TyperOption):
    """An option shown as `--top-k N`; a flag as itself."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else self.metavar

    def _get_number_range_help_str(self) -> str | None:
        return None  # a range is said in the help text, in words


class _WordsArgument(TyperArgument):
    """An argument shown by its metavar alone: `QUESTION`, and `[TARGET...]` when it may be left out."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        return self.display_name_raw if self.required else f"[{self.display_name_raw}]"


def _in_words(params: list[Any]) -> list[Any]:
    """Gives each parameter the help methods above (same fields) and a metavar: its name in capitals."""
    for param in params:
        if type(param) is TyperOption:
            param.__class__ = _WordsOption
            if param.metavar is None and not (param.is_flag or param.count):
                param.metavar = (param.name or "value").upper()
        elif type(param) is TyperArgument:
            param.__class__ = _WordsArgument
            name = param.metavar or (param.name or "value").upper()
            param.metavar = f"{name}..." if param.nargs != 1 and not name.endswith("...") else name
    return params


class WordsCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _in_words(super().get_params(ctx))


class WordsGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _in_words(super().get_params(ctx))


class App(typer.Typer):
    """A command group whose help is in words; shows its help when run without a command."""

    def __init__(self, help: str, **settings: Any) -> None:
        super().__init__(
            help=help,
            cls=WordsGroup,
            context_settings=CONTEXT_SETTINGS,
            no_args_is_help=True,
            add_completion=False,
            pretty_exceptions_enable=False,
            rich_markup_mode="rich",
            **settings,
        )

    def command(self, name: str | None = None, **settings: Any) -> Any:
        return super().command(name, cls=WordsCommand, **settings)
