"""`qabot feeds add` keeps a feed's address normalised: scheme and host lower-cased, default port,
fragment and surrounding whitespace dropped; control characters refused in one line; a feed
listed under another spelling is a duplicate. Run through the real `qabot` script."""

from __future__ import annotations

import json

import pytest

from tests.conftest import one_line_error, run_qabot


@pytest.fixture()
def env(tmp_path) -> dict[str, str]:
    return {
        "QABOT_DATA_DIR": str(tmp_path / "data"),
        "QABOT_INDEX_DIR": str(tmp_path / "index"),
        "QABOT_FEEDS_URLS": "https://Config.Example/Feed.xml",
    }


def listed(env: dict[str, str]) -> list[dict[str, str]]:
    result = run_qabot("feeds", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_feed_addresses_are_normalised_and_duplicates_found_in_any_spelling(env):
    added = run_qabot("feeds", "add", "  HTTP://News.Example.ORG:80/Rss?edition=EU#top \t", env=env)
    assert added.returncode == 0, added.stderr
    assert listed(env)[1] == {"url": "http://news.example.org/Rss?edition=EU", "from": "added"}

    for spelling in [
        "http://news.example.org/Rss?edition=EU",
        "http://NEWS.example.org/Rss?edition=EU#latest",
        "HtTp://news.example.org:80/Rss?edition=EU",
        "https://config.example/Feed.xml",  # the config's feed, spelt otherwise
        "HTTPS://CONFIG.EXAMPLE:443/Feed.xml#x",
    ]:
        again = run_qabot("feeds", "add", spelling, env=env)
        assert again.returncode == 0, again.stderr
        assert "is already listed" in again.stdout, (spelling, again.stdout)
    other_path = run_qabot("feeds", "add", "http://news.example.org/rss?edition=EU", env=env)  # paths keep their case
    assert "Added" in other_path.stdout
    assert [row["url"] for row in listed(env)] == [
        "https://Config.Example/Feed.xml",
        "http://news.example.org/Rss?edition=EU",
        "http://news.example.org/rss?edition=EU",
    ]

    removed = run_qabot("feeds", "remove", "HTTP://NEWS.EXAMPLE.ORG/Rss?edition=EU#top", env=env)
    assert removed.returncode == 0, removed.stderr
    configured = run_qabot("feeds", "remove", "https://config.example/Feed.xml", env=env)
    assert configured.returncode == 2 and "remove it there" in one_line_error(configured)
    assert [row["url"] for row in listed(env)] == [
        "https://Config.Example/Feed.xml",
        "http://news.example.org/rss?edition=EU",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://news.example/rss\nX-Injected: 1",
            r"'https://news.example/rss\nX-Injected: 1' holds the control character '\n' at position 25",
        ),
        ("https://news.example/r\tss\x7f", r"holds the control character '\t' at position 23"),
        ("https://news.example/\u202erss", r"holds the control character '\u202e' at position 22"),
        ("https://news.example/\x1b[31mrss", r"holds the control character '\x1b' at position 22"),
    ],
)
def test_control_characters_are_refused_in_one_line(env, url, shown):
    result = run_qabot("feeds", "add", url, env=env)
    assert result.returncode == 2
    error = one_line_error(result)
    assert error.startswith("error: not a feed URL: ") and shown in error and error.endswith("give the address alone")
    assert listed(env) == [{"url": "https://Config.Example/Feed.xml", "from": "config"}]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://news.example/rss", "give an http:// or https:// address"),
        ("news.example/rss", "give an http:// or https:// address"),
        ("http:///rss", "give an http:// or https:// address"),
        ("http://news.example:port/rss", "its port is not a number"),
    ],
)
def test_other_addresses_are_refused_in_one_line(env, url, reason):
    result = run_qabot("feeds", "add", url, env=env)
    assert result.returncode == 2 and reason in one_line_error(result)
