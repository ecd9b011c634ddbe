"""Progress bars for the terminal: one tqdm bar per pipeline stage, fed by the pipeline's callback."""

from __future__ import annotations

from tqdm import tqdm


class StageBars:
    """A context manager whose ``update(stage, fraction)`` drives one bar per stage; a stage's bar is
    closed when the next stage reports, so each line ends with that stage's own time."""

    def __init__(self, resolution: int = 100):
        self._resolution = resolution
        self._stage: str | None = None
        self._bar: tqdm | None = None

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, stage: str, fraction: float) -> None:
        if stage != self._stage:
            if self._bar is not None:
                self._bar.close()
            self._stage = stage
            self._bar = tqdm(
                total=self._resolution,
                desc=f"{stage:<12}",
                bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}",
            )
        self._bar.update(round(fraction * self._resolution) - self._bar.n)
