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
    """Overlap of consecutive square tiles."""
    fine_tile_scale: float = 0.0
    """Side of a second, finer pass's tiles as a share of the frame's short side (0: no such pass; 0.5
    finds people about 400 px tall in 1080p views from above, which the coarse windows miss). It runs on
    a view that finds fewer people than two other views of the same instant do. Off by default: on the
    Pose2Sim demo it triples the detection time and adds a one-view person."""


@dataclass(frozen=True)
class RecallConfig:
    """How people the detector missed in a view are looked for again where the other views place them."""

    enabled: bool = True
    min_views: int = 2
    """A person is projected into the views that missed them at the frames where at least this many
    views saw them (one view alone places a person too loosely to say where to look)."""
    min_inside: float = 0.6
    """Share of the projected body's landmarks that must fall inside the image (else too little of the
    person is in the view to read)."""
    min_presence: float = 0.3
    """A recalled person is kept when the landmark model's presence is at least this: lower than for a
    detection (``BlazePoseConfig.min_presence``), because the other views already say someone is there
    and the read must also land on the projection."""
    gate: float = 0.15
    """A recalled person is kept when the median distance between its landmarks and the projected ones is
    below this share of the projected body's height (else the model read someone or something else)."""


@dataclass(frozen=True)
class BlazePoseConfig:
    """How people are found and kept in each view."""

    detector: DetectorConfig = field(default_factory=DetectorConfig)
    recall: RecallConfig = field(default_factory=RecallConfig)
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
