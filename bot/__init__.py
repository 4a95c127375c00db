"""qabot's front ends: the CLI and chat, the Telegram bot and the evaluation scripts."""

import os

# As in retrieval/: no usage reports from Haystack (see retrieval/__init__.py).
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
