"""README.md and docs/ as a user reads them: a README of at most 300 lines whose links lead to pages
that exist, and every `qabot` and `make` command they show accepted by the real CLI and Makefile.

A `qabot SUBCOMMAND ... --flag` command passes when `qabot SUBCOMMAND --help` succeeds (so the
subcommand exists) and names each flag it uses; a `make TARGET` command when the Makefile has
the target. Commands are the lines of ```bash, ```sh and ```console blocks (in console blocks
only the lines after a `$ ` prompt), split at `&&`, `;` and `|`, with `VAR=value` prefixes skipped.
"""

from __future__ import annotations

import functools
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_qabot

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAKEFILE = ROOT / "Makefile"
MAX_README_LINES = 300
PAGES = [README, *sorted(DOCS.glob("*.md"))]

SHELL_BLOCK = re.compile(r"^[ \t]*```(bash|sh|console)[ \t]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
ANY_BLOCK = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
MAKE_TARGET = re.compile(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", re.MULTILINE)
SEPARATORS = {"&&", "||", ";", "|", "&"}
PROMPT = "$ "
TEST_REFERENCE = re.compile(r"(tests/\w+\.py)?(?:::)?(test_\w+)?")


def shell_lines(markdown: str) -> list[str]:
    """The command lines of the shell blocks, continuation lines joined."""
    lines = []
    for kind, body in SHELL_BLOCK.findall(markdown):
        pending = None
        for raw in body.splitlines():
            line = raw.strip()
            if pending is not None:
                line, pending = f"{pending} {line}", None
            elif line.startswith(PROMPT):
                line = line[len(PROMPT) :]
            elif kind == "console":
                continue  # output
            if line.endswith("\\"):
                pending = line[:-1].rstrip()
            elif line:
                lines.append(line)
    return lines


def simple_commands(line: str) -> list[list[str]]:
    """A shell line as its simple commands (words), comments dropped and `VAR=value` prefixes skipped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, words = [], []
    for token in lexer:
        if token in SEPARATORS:
            commands.append(words)
            words = []
        elif words or not ASSIGNMENT.match(token):
            words.append(token)
    commands.append(words)
    return [words for words in commands if words]


def shown_commands(page: Path) -> tuple[list[list[str]], list[list[str]]]:
    """The `qabot` commands (their arguments) and the `make` commands (theirs) a page shows."""
    qabot, make = [], []
    for line in shell_lines(page.read_text(encoding="utf-8")):
        for words in simple_commands(line):
            if words[0] == "qabot" or words[0].endswith("/qabot"):
                qabot.append(words[1:])
            elif words[0] == "make":
                make.append(words[1:])
    return qabot, make


def _cases(kind: int) -> list:
    return [
        pytest.param(words, id=f"{page.relative_to(ROOT)}: {' '.join(words)}"[:150])
        for page in PAGES
        for words in shown_commands(page)[kind]
    ]


@functools.cache
def qabot_help(*path: str) -> str:
    result = run_qabot(*path, "--help", env={"COLUMNS": "200"}, timeout=120)
    assert result.returncode == 0, f"`qabot {' '.join(path)}` is not a command: {result.stderr or result.stdout}"
    return result.stdout


def is_group(path: tuple[str, ...]) -> bool:
    """Whether `qabot PATH` takes a command (its usage line says COMMAND), as `qabot feeds` does."""
    usage = next((line for line in qabot_help(*path).splitlines() if "Usage:" in line), "")
    return "COMMAND" in usage


def command_path(arguments: list[str]) -> tuple[str, ...]:
    """The (sub)commands at the head of `qabot ARGUMENTS`: () for `qabot --version`."""
    path: tuple[str, ...] = ()
    for word in arguments:
        if word.startswith("-") or not is_group(path):
            break
        path = (*path, word)
    return path


def flags(arguments: list[str]) -> list[str]:
    return [word.split("=", 1)[0] for word in arguments if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", word)]


def make_targets() -> set[str]:
    return set(MAKE_TARGET.findall(MAKEFILE.read_text(encoding="utf-8")))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = ANY_BLOCK.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def local_links(page: Path) -> list[str]:
    text = ANY_BLOCK.sub("", page.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_the_readme_is_at_most_300_lines():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move details to docs/"


def test_the_readme_shows_the_two_commands():
    assert ["chat"] in shown_commands(README)[1] and ["test"] in shown_commands(README)[1]
    assert shown_commands(README)[0], "README.md shows no qabot command"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_links_lead_to_files_and_headings_that_exist(page):
    broken = []
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_file() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert not broken, f"{page.name} links to what does not exist: {broken}"


def test_the_readme_links_only_to_docs_pages_and_the_changelog():
    allowed = {*(DOCS.glob("*.md")), ROOT / "CHANGELOG.md"}
    elsewhere = [link for link in local_links(README) if (ROOT / link.partition("#")[0]).resolve() not in allowed]
    assert not elsewhere, f"README.md links outside docs/: {elsewhere}"


def test_the_readme_leads_to_every_docs_page():
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in local_links(README)}
    assert not [page.name for page in DOCS.glob("*.md") if page.resolve() not in linked]


def test_the_tests_the_docs_name_exist():
    """`tests/test_x.py::test_y` and a following `::test_z` name tests of that file; a bare `test_z`
    names a test of any file."""
    sources = {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in (ROOT / "tests").glob("*.py")
    }
    missing = []
    for page in DOCS.glob("*.md"):
        file = None
        for span in re.findall(r"`([^`\n]+)`", page.read_text(encoding="utf-8")):
            reference = TEST_REFERENCE.fullmatch(span)
            if not reference or not any(reference.groups()):
                continue
            named_file, test = reference.groups()
            if named_file:
                file = named_file
                if file not in sources:
                    missing.append(f"{page.name}: {span}")
                    continue
            texts = [sources.get(file or "", "")] if named_file or span.startswith("::") else list(sources.values())
            if test and not any(f"def {test}(" in text for text in texts):
                missing.append(f"{page.name}: {span}")
    assert not missing


@pytest.mark.parametrize("arguments", _cases(0))
def test_a_qabot_command_uses_a_real_command_and_its_real_flags(arguments):
    path = command_path(arguments)
    help_text = qabot_help(*path)
    unknown = [flag for flag in flags(arguments) if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text)]
    assert not unknown, f"`qabot {' '.join(path)} --help` does not name {unknown}"


@pytest.mark.parametrize("arguments", _cases(1))
def test_a_make_command_uses_targets_the_makefile_has(arguments):
    targets = [word for word in arguments if not word.startswith("-") and not ASSIGNMENT.match(word)]
    assert targets and set(targets) <= make_targets(), f"make {' '.join(arguments)}: not in the Makefile"
