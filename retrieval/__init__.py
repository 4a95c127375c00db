"""The qabot engine: documents, index, retrieval, reading; `QAEngine.ask` is its entry point."""

import os

# Haystack reports usage to a telemetry server by default; a bot for offline servers must not
# phone home (and must not wait on a network it does not have).
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import logging

# A library's logs go where the application sends them (the bot logs to stderr); nowhere by default.
logging.getLogger(__name__).addHandler(logging.NullHandler())
