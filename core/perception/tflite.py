"""A TFLite model run with LiteRT on batches of any size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import InputError


class TFLiteModel:
    """One LiteRT interpreter whose input batch follows each call's batch (re-allocated on change only)."""

    def __init__(self, path: Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter  # heavy import, only when a model is used

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: model file not found; run `python -m studio assets` to install it")
        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise InputError(f"{path}: not a readable TFLite model ({error})") from error
        self._input = self._interpreter.get_input_details()[0]
        self._outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["name"])
        self.input_shape = tuple(int(s) for s in self._input["shape"][1:])
        self._batch = 0

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run on ``batch`` (B, *input_shape) float32; outputs in the model's output-name order, as the
        model lays them out (a model that folds the batch into another axis needs its caller to unfold it)."""
        size = batch.shape[0]
        if size == 0:
            return [np.zeros((0, *d["shape"][1:]), np.float32) for d in self._outputs]
        if size != self._batch:
            self._interpreter.resize_tensor_input(self._input["index"], [size, *self.input_shape])
            self._interpreter.allocate_tensors()
            self._batch = size
        self._interpreter.set_tensor(self._input["index"], np.ascontiguousarray(batch, dtype=np.float32))
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(d["index"]) for d in self._outputs]
