"""Running transformer models through ONNX Runtime: export once (with torch), then load fast.

Importing torch and transformers takes seconds; ONNX Runtime and `tokenizers` take a fraction of
one. A model folder is exported once into a cache folder keyed by its weights, optionally
quantised to int8, and every process after that loads the `.onnx` file directly.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from retrieval.errors import QabotError

logger = logging.getLogger(__name__)

Task = Literal["feature-extraction", "question-answering"]

# What each exported graph takes and gives. The reader takes no token type ids, as Haystack's
# TransformersExtractiveReader feeds none.
_SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "feature-extraction": (("input_ids", "attention_mask", "token_type_ids"), ("last_hidden_state",)),
    "question-answering": (("input_ids", "attention_mask"), ("start_logits", "end_logits")),
}


def _model_key(model_path: Path, task: Task) -> str:
    """A cache key that changes when the model's weights or config change."""
    digest = hashlib.sha256(str(model_path.resolve()).encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        path = model_path / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    suffix = "" if task == "feature-extraction" else "-qa"
    return f"{model_path.name}{suffix}-{digest.hexdigest()[:16]}"


def onnx_model(model_path: Path, cache_dir: Path, quantize: bool, task: Task = "feature-extraction") -> Path:
    """The ONNX file to run: the export, or its int8 dynamic quantisation (made once, in a second)."""
    exported = export_onnx(model_path, cache_dir, task)
    if not quantize:
        return exported
    # The reader's span scores are more sensitive than the embedding's direction: its weights are
    # quantised per output channel (measured: the same best span 87% of the time against 71%).
    per_channel = task == "question-answering"
    target = exported.with_name("model.int8-per-channel.onnx" if per_channel else "model.int8.onnx")
    if not target.is_file():
        with FileLock(str(target.parent / ".lock")):
            if not target.is_file():
                from onnxruntime.quantization import QuantType, quantize_dynamic

                temporary = target.with_suffix(".tmp")
                # The quantiser logs advice through the root logger, which would also install a
                # root handler behind the front end's back; give it a silent one meanwhile.
                root, silent = logging.getLogger(), logging.NullHandler()
                root.addHandler(silent)
                try:
                    quantize_dynamic(
                        str(exported), str(temporary), weight_type=QuantType.QInt8, per_channel=per_channel
                    )
                finally:
                    root.removeHandler(silent)
                os.replace(temporary, target)
    return target


def export_onnx(model_path: Path, cache_dir: Path, task: Task = "feature-extraction") -> Path:
    """The ONNX file for the transformer in `model_path`, exported on first use (a few seconds)."""
    target = cache_dir / _model_key(model_path, task) / "model.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / ".lock")):
        if target.is_file():
            return target
        import warnings

        import torch
        from transformers import AutoModel, AutoModelForQuestionAnswering
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        transformers_logging.set_verbosity_error()
        inputs, outputs = _SIGNATURES[task]
        loader = AutoModelForQuestionAnswering if task == "question-answering" else AutoModel
        # Eager attention exports to the plain MatMul/Softmax pattern that ONNX Runtime fuses;
        # float32 whatever the stored weights (the reader's are fp16).
        model = loader.from_pretrained(str(model_path), attn_implementation="eager", dtype=torch.float32).eval()

        class _Outputs(torch.nn.Module):
            def __init__(self, inner: torch.nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *args: Any) -> Any:
                result = self.inner(**dict(zip(inputs, args, strict=True)))
                return tuple(result[name] for name in outputs)

        example = torch.ones((2, 8), dtype=torch.long)
        temporary = target.with_suffix(".onnx.tmp")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Outputs(model),
                tuple(torch.zeros_like(example) if name == "token_type_ids" else example for name in inputs),
                str(temporary),
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*inputs, *outputs)},
                opset_version=17,
                dynamo=False,
            )
        os.replace(temporary, target)
    return target


def load_onnx(
    model_path: Path, cache_dir: Path, quantize: bool, task: Task = "feature-extraction", threads: int = 0
) -> Any:
    """A session on the model's ONNX export, made on first use. A cached export that does not load
    (cut short, damaged) is deleted and made again, once, with a one-line note; if that fails too,
    the error says which folder to remove."""
    path = onnx_model(model_path, cache_dir, quantize, task)
    try:
        return onnx_session(path, threads)
    except Exception as damaged:  # ONNX Runtime raises its own classes (InvalidProtobuf, Fail, ...)
        logger.warning("The ONNX export %s does not load (%s): making it again", path, _first_line(damaged))
    folder = path.parent
    with FileLock(str(folder / ".lock")):
        for stale in (folder / "model.onnx", path):
            stale.unlink(missing_ok=True)
    try:
        return onnx_session(onnx_model(model_path, cache_dir, quantize, task), threads)
    except Exception as again:
        raise QabotError(
            f"the ONNX export of {model_path.name} in {folder} does not load ({_first_line(again)}): "
            "remove that folder and try again"
        ) from again


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__


def onnx_session(path: Path, threads: int = 0) -> Any:
    """An ONNX Runtime session on the CPU, quiet, with `threads` intra-op threads (0: all cores)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # Idle threads sleep instead of spinning: a question runs the embedding model and then the
    # reader, each with its own thread pool, and the pool that just finished would otherwise spin
    # on the cores the next one needs (measured: the reader's run over one window took 42 ms
    # with spinning and 25 ms without; sentence answers alone are no slower).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
