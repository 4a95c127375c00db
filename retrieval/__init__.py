"""The qabot engine: documents, index, retrieval, reading; `QAEngine.ask` is its entry point."""

import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import types

# Haystack reports usage to a telemetry server by default; a bot for offline servers must not
# phone home (and must not wait on a network it does not have).
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

# A library's logs go where the application sends them (the bot logs to stderr); nowhere by default.
logging.getLogger(__name__).addHandler(logging.NullHandler())


class _TorchStandIn(types.ModuleType):
    """Stands in for torch: the first attribute asked for imports the real torch and is taken from it."""

    def __getattr__(self, name: str) -> object:
        if sys.modules.get("torch") is self:
            del sys.modules["torch"]
        return getattr(importlib.import_module("torch"), name)


class _HaystackWithoutTorch:
    """An import hook: Haystack, when first imported, gets a stand-in for torch.

    Haystack imports torch whenever it is installed (for its device helpers, `haystack.utils.device`),
    about 2 s of every cold start on 2 cores, although qabot's default path (ONNX Runtime) never
    uses it. The stand-in is in `sys.modules` only while Haystack's package runs: every later
    `import torch` (transformers, Haystack's torch reader, training) gets the real module, and the
    device helpers reach it through the stand-in the first time they need it. Nothing happens until
    Haystack is imported, so commands that never use it (`qabot --help`) do not pay for it.
    """

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if name != "haystack":
            return None
        sys.meta_path.remove(self)  # once; and the search below must not come back here
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or "torch" in sys.modules or importlib.util.find_spec("torch") is None:
            return spec
        loader, run = spec.loader, spec.loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            stand_in = _TorchStandIn("torch")
            stand_in.__spec__ = importlib.machinery.ModuleSpec("torch", None)
            sys.modules["torch"] = stand_in
            try:
                run(module)
            finally:
                del loader.exec_module  # the loader's own again
                if sys.modules.get("torch") is stand_in:
                    del sys.modules["torch"]

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if "haystack" not in sys.modules:
    sys.meta_path.insert(0, _HaystackWithoutTorch())  # type: ignore[arg-type]
