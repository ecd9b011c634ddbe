"""Settings of the camera stage: where the cameras come from, and how the people calibrate them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CameraSource = Literal["auto", "file", "people", "pi3x"]


@dataclass(frozen=True)
class CameraHints:
    """What a user may know about an uncalibrated rig; every hint is optional."""

    fov_deg: float | None = None
    """Horizontal field of view of every camera, degrees (ignored where a focal length is given)."""
    focal_px: tuple[float, ...] = ()
    """Focal length in pixels: one value for every camera, or one per camera in clip order."""
    height_m: float | None = None
    """Standing height of the tallest person, metres: fixes the metric scale (else the body priors do)."""


@dataclass(frozen=True)
class SelfCalibrationConfig:
    """How the cameras are found from the people's keypoints (``cameras.source = "people"``)."""

    min_shared_frames: int = 15
    """Two tracklets of two views are a candidate match when they share at least this many frames."""
    min_keypoint_confidence: float = 0.5
    """Keypoints below this confidence are not used as correspondences."""
    epipolar_threshold: float = 0.01
    """RANSAC inlier threshold on the epipolar (Sampson) error, as a fraction of the image's long side."""
    min_inlier_ratio: float = 0.5
    """A tracklet pair whose keypoint matches agree with the epipolar geometry less than this is not a
    match."""
    max_landmark_rotation_deg: float = 35.0
    """A view pair's relative rotation from the epipolar geometry and from the people's 3D landmarks
    (their body orientation in each view) must agree within this."""
    min_pair_matches: int = 60
    """A view pair needs this many inlier keypoint matches to be placed relative to each other."""
    frame_stride: int = 2
    """The bundle adjustment uses every this-many-th frame (neighbours add little but time)."""
    refine_k1: bool = True
    """Refine one radial distortion coefficient per camera."""
    k1_prior: float = 0.05
    """How far k1 may stray from 0 (the prior's sigma, as strong as all a camera's residuals): looser
    fits lenses that bend much (wide-angle phones), at the cost of trading k1 with the focal length."""
    refine_principal: bool = False
    """Refine each camera's principal point in the last round, with k1 (held near the image centre).
    Off by default: on the Pose2Sim demo, whose principal points are up to 31 px off centre, it still
    made the focal lengths worse (9.8 % against 5.9 %): BlazePose's keypoints do not pin it."""
    principal_prior: float = 0.02
    """How far the principal point may stray from the image centre, as a fraction of the long side."""
    reprojection_scale_px: float = 4.0
    """Soft-L1 scale of the bundle adjustment's reprojection residuals: errors well beyond it count
    linearly, so that outlier keypoints do not pull the cameras."""
    bone_weight: float = 200.0
    """Weight, per metre of bone-length change over time, against a pixel of reprojection error."""
    max_bundle_iterations: int = 60
    """Iterations of each bundle adjustment round (``least_squares`` ``max_nfev``)."""


@dataclass(frozen=True)
class CameraConfig:
    """Where the cameras come from."""

    source: CameraSource = "auto"
    """Where the cameras come from: file (the calibration given), people (self-calibration from the
    people's keypoints), pi3x (the scene network); auto: file with a calibration, else pi3x with
    --scene pi3x, else people."""
    hints: CameraHints = field(default_factory=CameraHints)
    people: SelfCalibrationConfig = field(default_factory=SelfCalibrationConfig)
