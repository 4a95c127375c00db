"""The qabot engine: documents, index, retrieval, reading; `QAEngine.ask` is its entry point."""

import os

# Haystack reports usage to a telemetry server by default; a bot for offline servers must not
# phone home (and must not wait on a network it does not have).
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

import logging

# A library's logs go where the application sends them (the bot logs to stderr); nowhere by default.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def _import_haystack_without_torch() -> None:
    """Import Haystack with a stand-in for torch that imports the real one on first use.

    Haystack imports torch whenever it is installed (for its device helpers, `haystack.utils.device`),
    about 2 s of every cold start on 2 cores, although qabot's default path (ONNX Runtime) never
    uses it. The stand-in is in `sys.modules` only while Haystack is imported: every later
    `import torch` (transformers, Haystack's torch reader, training) gets the real module, and the
    device helpers reach it through the stand-in the first time they need it.
    """
    import importlib
    import importlib.machinery
    import importlib.util
    import sys
    import types

    if "haystack" in sys.modules or "torch" in sys.modules or importlib.util.find_spec("torch") is None:
        return

    class _Torch(types.ModuleType):
        def __getattr__(self, name: str):
            if sys.modules.get("torch") is self:
                del sys.modules["torch"]
            return getattr(importlib.import_module("torch"), name)

    stand_in = _Torch("torch")
    stand_in.__spec__ = importlib.machinery.ModuleSpec("torch", None)
    sys.modules["torch"] = stand_in
    try:
        import haystack  # noqa: F401
    finally:
        if sys.modules.get("torch") is stand_in:
            del sys.modules["torch"]


_import_haystack_without_torch()
