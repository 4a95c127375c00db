"""Start-up cost: the default path (ONNX Runtime) never imports torch, and Haystack's own torch
helpers still reach the real torch when they need it."""

from __future__ import annotations

import subprocess
import sys


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def test_the_engine_and_cli_start_without_importing_torch():
    code = "import sys; import bot.cli, retrieval.engine, haystack; print('torch' in sys.modules)"
    assert _python(code) == "False"


def test_haystacks_device_helpers_and_later_imports_get_the_real_torch():
    code = (
        "import retrieval, sys\n"
        "from haystack.utils.device import ComponentDevice\n"
        "device = ComponentDevice.resolve_device(None).to_torch()\n"
        "import torch\n"
        "print(type(device) is torch.device, type(sys.modules['torch']).__name__, torch.nn.Linear.__name__)"
    )
    assert _python(code) == "True module Linear"
