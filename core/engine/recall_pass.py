"""A second look at the clips for the people a view's detector missed, placed there by the other views.

The engine runs once on the detections; each fused person is projected into the views that missed them
(:mod:`core.perception.recall`), only those frames are decoded again, and the landmark model reads the
projected regions. The people it finds there join the detections, and the run goes on from those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Int

from core.config import ReconstructionConfig
from core.engine.pipeline import reconstruct_from_observations
from core.io.video import ClipInfo, FrameRange, iter_synchronized
from core.perception.blazepose import BlazePose, person_columns
from core.perception.landmarker import Landmarks
from core.perception.observer import PerceptionResult
from core.perception.recall import RecallRequests, kept_recalls, recall_requests
from core.types import CameraRig


@dataclass(frozen=True)
class Recalled:
    """The detections with the recalled people added, and how many each view gained."""

    perception: PerceptionResult
    per_view: Int[np.ndarray, " V"]


def with_recalled_people(
    perception: PerceptionResult,
    observer: object,
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    cameras: CameraRig,
    fps: float,
    config: ReconstructionConfig,
) -> Recalled:
    """``perception`` with the people found again where the fused persons say a view missed them
    (BlazePose only: the other backends have no separate landmark model to point at a region)."""
    none = np.zeros(len(clips), dtype=np.int64)
    settings = config.perception
    if not settings.recall.enabled or not isinstance(observer, BlazePose):
        return Recalled(perception, none)
    indices = frames.indices(clips[0].num_frames)
    first = reconstruct_from_observations(perception.observations, cameras, len(indices), fps, config)
    requests = recall_requests(first.persons, first.cameras, settings.recall, settings.region_scale)
    if not len(requests):
        return Recalled(perception, none)
    found = _read_requests(observer, clips, frames, indices, requests)
    keep = kept_recalls(
        found,
        requests,
        perception.observations,
        settings.recall.min_presence,
        settings.recall.gate,
        settings.duplicate_distance,
    )
    if not keep.any():
        return Recalled(perception, none)
    found, requests = found.take(keep), requests.take(keep)
    added = person_columns(found, requests.view)
    columns = {key: np.concatenate([perception.columns[key], added[key]]) for key in perception.columns}
    frame = np.concatenate([perception.frame, requests.frame])
    order = np.lexsort((columns["view"], frame))  # frame by frame, as detection leaves them
    columns = {key: value[order] for key, value in columns.items()}
    frame = frame[order]
    observations = observer.to_observations(columns, frame, cameras)
    recalled = PerceptionResult(observations, perception.messages, columns, frame)
    return Recalled(recalled, np.bincount(requests.view, minlength=len(clips)))


def _read_requests(
    observer: BlazePose,
    clips: Sequence[ClipInfo],
    frames: FrameRange,
    indices: np.ndarray,
    requests: RecallRequests,
) -> Landmarks:
    """The landmark model on every requested region, in request order; each frame needed decoded once
    and each of its views' regions read in one batch."""
    first, last = int(requests.frame.min()), int(requests.frame.max())
    span = FrameRange(int(indices[first]), int(indices[last]) + 1, frames.step)
    order = np.lexsort((requests.view, requests.frame))  # image by image
    image = (requests.frame * len(clips) + requests.view)[order]
    groups = np.split(order, np.flatnonzero(np.diff(image)) + 1)
    at: dict[int, list[np.ndarray]] = {}  # reconstruction frame → its images' groups, in group order
    for group in groups:
        at.setdefault(int(requests.frame[group[0]]), []).append(group)
    parts: list[Landmarks] = []
    for index, views in iter_synchronized(clips, span):
        for group in at.get((index - int(indices[0])) // frames.step, []):
            view = int(requests.view[group[0]])
            parts.append(observer.read_regions(views[view], requests.take(group).regions))
    return Landmarks.concatenate(parts).take(np.argsort(np.concatenate(groups)))
