"""The float transforms on ONNX Runtime: g_a, h_a and g_s without torch.

Each transform is an ONNX graph exported from the torch model (``graph_export.py``) and shipped
beside the weights as ``<model id>-<g_a|h_a|g_s>.onnx``; g_a's rounds its input and weights to bf16 as
torch's bf16 autocast does (``bf16_autocast.py``), in float32 arithmetic.  A graph holds no weights of its own: its
initializers are declared as external data, and the session takes them from the tensors loaded
from the safetensors shards, so the shards stay the one copy of every tensor.  The shards' metadata records each graph's SHA-256, so
a graph that is damaged, swapped or left over from other weights is refused with one line before
ONNX Runtime reads it.  Sessions are made on first use: a decoder never loads g_a.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

__all__ = ["OnnxTransforms", "GRAPHS", "EXTERNAL_LOCATION", "graph_path"]

GRAPHS = ("g_a", "h_a", "g_s")
EXTERNAL_LOCATION = "safetensors"  # where a graph says its tensors are: supplied by the session
# A run covering more image pixels than this (a tile of a large image) goes to a session without ONNX
# Runtime's CPU arena, whose buffers come from malloc and go back to it as the run frees them.  An arena,
# even one shrunk after every run, fragments across a large image's tile shapes: over a 24-megapixel
# image's g_a tiles it peaked 0.33 GB higher and left up to 0.4 GB resident between runs, which reached
# the entropy path's peak, where torch has freed its buffers (benchmarks/results/runtime.md).
# Kodak-sized images stay below it and keep their arena from one run to the next (no page faults again).
ARENA_UP_TO_PIXELS = 1 << 20
IMAGE_PIXELS_PER_INPUT_PIXEL = {"g_a": 1, "h_a": 16 * 16, "g_s": 16 * 16}  # g_a's input is the image, the others' y


def graph_path(directory: Path, model_id: str, name: str) -> Path:
    return Path(directory) / f"{model_id}-{name}.onnx"


class OnnxTransforms:
    """``coder.FloatTransforms`` on ONNX Runtime's CPU engine.

    ``directory``: the weights' directory; ``metadata``: their shards' metadata (``graphs``: the
    JSON map of each graph's file name to its SHA-256 and the names of the tensors it takes);
    ``state``: their tensors (``shards.read_state``); ``threads``: intra-op threads (None: ONNX
    Runtime's default, one per physical core).  ``ValueError`` for a graph that is missing,
    damaged or not made for these weights.  Each graph has up to two sessions: one with an arena for
    runs up to ``ARENA_UP_TO_PIXELS`` image pixels, one without for larger runs."""

    def __init__(self, directory: Path, model_id: str, metadata: dict[str, str], state: dict[str, np.ndarray],
                 threads: int | None = None):
        try:
            listed = json.loads(metadata["graphs"])
        except (KeyError, ValueError):
            raise ValueError(f"{directory}: these weights list no ONNX graphs") from None
        self.state = state
        self.threads = threads
        self._graphs = {name: _read_graph(graph_path(directory, model_id, name), listed) for name in GRAPHS}
        for path, _, tensors in self._graphs.values():
            missing = sorted(set(tensors) - set(state))
            if missing:
                raise ValueError(f"{path}: takes tensors these weights lack ({', '.join(missing[:3])})")
        self._sessions: dict = {}

    def _session(self, name: str, arena: bool = True):
        if (name, arena) not in self._sessions:
            import onnxruntime as ort

            path, data, tensors = self._graphs[name]
            options = ort.SessionOptions()
            if self.threads:
                options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            # Without a memory pattern the second run at a new image size is as fast as the steady
            # state; with one, the first two runs both pay (benchmarks/results/runtime.md).
            options.enable_mem_pattern = False
            options.enable_cpu_mem_arena = arena
            # Idle workers sleep instead of spinning: a spinning second thread costs g_s a third more CPU
            # than one thread, a sleeping one 3 %; with a few dozen nodes of milliseconds each, waking
            # them costs far less than a millisecond per run.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(self.state[n])) for n in tensors]
            options.add_external_initializers(tensors, values)
            try:
                session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            except Exception as error:  # noqa: BLE001 - ONNX Runtime raises its own classes
                raise ValueError(f"{path}: ONNX Runtime cannot load it ({str(error).splitlines()[0]})") from None
            # The values must outlive the session, which reads them in place.
            self._sessions[name, arena] = (session, session.get_inputs()[0].name, values)
        return self._sessions[name, arena]

    def _run(self, name: str, x: np.ndarray) -> np.ndarray:
        arena = x.shape[-2] * x.shape[-1] * IMAGE_PIXELS_PER_INPUT_PIXEL[name] <= ARENA_UP_TO_PIXELS
        session, input_name, _ = self._session(name, arena)
        return session.run(None, {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def analyse(self, x: np.ndarray) -> np.ndarray:
        return self._run("g_a", x)

    def hyper_analyse(self, y: np.ndarray) -> np.ndarray:
        return self._run("h_a", y)

    def synthesise(self, y_hat: np.ndarray) -> np.ndarray:
        return self._run("g_s", y_hat)


def _read_graph(path: Path, listed: dict) -> tuple[Path, bytes, list[str]]:
    """(path, bytes, the tensors it takes) of a graph that the weights list, else ``ValueError``."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path}: cannot read the graph ({error.strerror or error})") from None
    entry = listed.get(path.name)
    if not isinstance(entry, dict) or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise ValueError(f"{path}: damaged, or not the graph of these weights")
    return path, data, list(entry.get("tensors", []))
