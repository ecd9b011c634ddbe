"""Settings of the embedded detector, kept apart from the models so that configs import nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DetectorConfig:
    """How people are found in a frame."""

    min_score: float = 0.7
    """Detections below this confidence are discarded (MediaPipe uses 0.5, which on the Pose2Sim demo
    also finds a second, smaller "person" in one person's legs)."""
    nms_iou: float = 0.3
    """Face boxes overlapping more than this are one person (merged, score-weighted)."""
    tile_overlap: float = 0.5
    """Overlap of consecutive square tiles along the frame's long side."""


@dataclass(frozen=True)
class BlazePoseConfig:
    """How people are found and kept in each view."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    min_presence: float = 0.5
    """People whose landmark model presence is below this are dropped."""
    region_scale: float = 1.25
    """A person's crop is the full-body circle's square enlarged by this factor."""
    duplicate_distance: float = 0.1
    """A result half of whose landmarks lie closer than this fraction of its body height to the same
    landmarks of a more confident one is a duplicate (or a chimera of two overlapping people)."""
    max_people: int = 12
    """At most this many people per view and frame (the most confident)."""
    threads: int = 1
    """LiteRT threads per model."""
    workers: int = 2
    """Views searched at once, each by its own copy of the two models (one per core: the model calls and
    the image work of different views then overlap)."""
