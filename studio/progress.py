"""Progress bars for the terminal: one tqdm bar per pipeline stage, fed by the pipeline's callback."""

from __future__ import annotations

from collections.abc import Sequence

from tqdm import tqdm


class StageBars:
    """A context manager whose ``update(stage, fraction)`` drives one bar per stage (in stage order)."""

    def __init__(self, stages: Sequence[str], resolution: int = 100):
        self._stages = tuple(stages)
        self._resolution = resolution
        self._bars: dict[str, tqdm] = {}

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, *exc_info) -> None:
        for bar in self._bars.values():
            bar.close()

    def update(self, stage: str, fraction: float) -> None:
        if stage not in self._bars:
            self._bars[stage] = tqdm(
                total=self._resolution,
                desc=f"{stage:<12}",
                position=len(self._bars),
                bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}",
            )
        bar = self._bars[stage]
        bar.update(round(fraction * self._resolution) - bar.n)
