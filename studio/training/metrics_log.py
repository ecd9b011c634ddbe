"""A training run's metrics: one CSV row per logged step and split, TensorBoard event files beside it,
and a plot of the curves (``DIR/curves.png``) redrawn from the CSV. TensorBoard and matplotlib are the
``train`` extra's, imported when a log is opened."""

from __future__ import annotations

import csv
from pathlib import Path

COLUMNS = ("step", "split", "name", "value")
"""Long format: any set of terms per split without rewriting the header."""


class MetricsLog:
    """Append-only metrics of one run (a resumed run appends to the same files)."""

    def __init__(self, folder: Path, enabled: bool = True):
        self.folder = Path(folder)
        self.csv_path = self.folder / "metrics.csv"
        self._enabled = enabled
        self._writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder / "tensorboard"))
            if not self.csv_path.exists():
                with open(self.csv_path, "w", newline="") as file:
                    csv.writer(file).writerow(COLUMNS)

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        if not self._enabled:
            return
        with open(self.csv_path, "a", newline="") as file:
            csv.writer(file).writerows((step, split, name, f"{value:.6g}") for name, value in values.items())
        for name, value in values.items():
            self._writer.add_scalar(f"{split}/{name}", value, step)
        self._writer.flush()

    def plot(self) -> Path | None:
        """Every term's curve, one panel per term, train and validation together."""
        if not self._enabled:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        curves: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
        with open(self.csv_path, newline="") as file:
            for row in csv.DictReader(file):
                steps, values = curves.setdefault(row["name"], {}).setdefault(row["split"], ([], []))
                steps.append(int(row["step"]))
                values.append(float(row["value"]))
        if not curves:
            return None
        names = sorted(curves, key=lambda name: (name != "total", name))
        columns = min(3, len(names))
        rows = -(-len(names) // columns)
        figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
        for axis, name in zip(axes.flat, names, strict=False):
            for split, (steps, values) in sorted(curves[name].items()):
                axis.plot(steps, values, label=split, marker="." if split != "train" else None)
            axis.set_title(name)
            axis.set_xlabel("step")
            axis.legend()
        for axis in list(axes.flat)[len(names) :]:
            axis.axis("off")
        figure.tight_layout()
        path = self.folder / "curves.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        return path

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
