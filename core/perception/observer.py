"""One interface for every human backend: people in synchronized multi-view frames → engine observations.

A backend (BlazePose's landmarks, Multi-HMR's bodies) is an :class:`Observer` with two steps: the
people of one synchronized frame of all views as per-person columns, then the columns of the whole
clip as :class:`~core.types.Observations`. The second step is separate so that what can be batched
over every detection of the clip (placing bodies in the camera, rotations, projections) is done once.
The loop over frames, the clips' health and the progress callback are here, once for all backends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from jaxtyping import Int, UInt8

from core.io.video import ClipHealth, ClipInfo, FrameRange, iter_synchronized
from core.types import CameraRig, Observations

PersonColumns = dict[str, np.ndarray]
"""An observer's own per-person arrays, each with the person axis first; ``"view"`` (int) is required."""


@dataclass(frozen=True)
class PerceptionResult:
    """Observations of every view plus what a user should hear about the clips."""

    observations: Observations
    messages: tuple[str, ...]
    columns: PersonColumns
    """The observer's own per-person arrays, to place the people again in other cameras."""
    frame: Int[np.ndarray, " N"]
    """Each person's frame."""

    def placed_in(
        self, observer: Observer, cameras: CameraRig, views: Int[np.ndarray, " W"]
    ) -> PerceptionResult:
        """The observations of ``views`` only (renumbered in that order) placed in ``cameras`` (one per
        view kept), e.g. once the cameras are known from the people themselves."""
        number = np.full(int(self.columns["view"].max(initial=0)) + 1, -1)
        number[views] = np.arange(len(views))
        keep = number[self.columns["view"].astype(np.int64)] >= 0
        columns = {key: value[keep] for key, value in self.columns.items()}
        columns["view"] = number[columns["view"].astype(np.int64)]
        frame = self.frame[keep]
        return PerceptionResult(
            observer.to_observations(columns, frame, cameras), self.messages, columns, frame
        )


class Observer(Protocol):
    """A human backend, as the perception loop drives it."""

    def detect(self, images: Sequence[UInt8[np.ndarray, "H W 3"]], cameras: CameraRig) -> PersonColumns:
        """The people of one synchronized frame: ``images[v]`` is view v's RGB frame."""
        ...

    def to_observations(
        self, columns: PersonColumns, frame: Int[np.ndarray, " N"], cameras: CameraRig
    ) -> Observations:
        """Observations of the people of many frames at once (``frame``: each person's frame)."""
        ...


def observe_clips(
    observer: Observer,
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    cameras: CameraRig,
    progress: Callable[[int, int], None] | None = None,
) -> PerceptionResult:
    """Run ``observer`` over the selected frames of all clips; frame k of the result is the k-th selected
    frame. ``progress(done, total)`` is called after each frame."""
    total = len(frames.indices(clips[0].num_frames))
    health = [ClipHealth() for _ in clips]
    found: list[PersonColumns] = []
    frame_of = []
    for step, (_, images) in enumerate(iter_synchronized(clips, frames)):
        for state, image in zip(health, images, strict=True):
            state.observe(image)
        people = observer.detect(images, cameras)
        found.append(people)
        frame_of.append(np.full(len(people["view"]), step))
        if progress:
            progress(step + 1, total)
    columns = {key: np.concatenate([people[key] for people in found]) for key in found[0]}
    frame = np.concatenate(frame_of)
    observations = observer.to_observations(columns, frame, cameras)
    return PerceptionResult(observations, _clip_messages(clips, health, observations), columns, frame)


def _clip_messages(
    clips: Sequence[ClipInfo], health: Sequence[ClipHealth], observations: Observations
) -> tuple[str, ...]:
    """Say which clips look broken and which saw nobody, naming the files."""
    messages = []
    seen = np.bincount(observations.view, minlength=len(clips))
    for view, (clip, state) in enumerate(zip(clips, health, strict=True)):
        problem = state.problem()
        if problem:
            messages.append(f"{clip.path}: the clip looks {problem}")
        if seen[view] == 0:
            messages.append(f"{clip.path}: no person detected in any selected frame")
    return tuple(messages)
