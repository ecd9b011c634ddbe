"""The optimisation-free test-time stages wired together: observations in, a Reconstruction out.

validate → tracking → association → fusion → scale. Each stage is timed; every stage is a function of
its inputs and its own config, so the studio can re-run fusion and scale alone after an identity edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from jaxtyping import Int

from core.config import ReconstructionConfig
from core.engine.association import associate
from core.engine.fusion import PersonCells, fuse, reprojection_residuals
from core.engine.handedness import orient_left_right
from core.engine.joint_speed import checked_persons
from core.engine.refinement import refine_assignment
from core.engine.scale import adjust_scale, monocular_scale
from core.engine.timing import timed
from core.engine.tracking import track
from core.engine.world_tracking import world_assignment
from core.errors import InputError
from core.reconstruction import Reconstruction
from core.types import Assignment, CameraRig, Diagnostics, Observations, PersonTrack, Tracklets

ProgressCallback = Callable[[str, float], None]
"""Called with (stage name, fraction of the run done) as stages finish."""

TEST_TIME_STAGES = (
    "validate",
    "tracking",
    "association",
    "world tracking",
    "refinement",
    "fusion",
    "scale",
    "joint speed",
)

_ESSENTIAL = (
    "score",
    "head2d",
    "pelvis2d",
    "position_cam",
    "global_orient_cam",
    "body_pose",
    "shape",
    "canonical_pose",
    "embedding",
)


def validate_observations(
    observations: Observations, cameras: CameraRig, num_frames: int
) -> tuple[Observations, int]:
    """Drop observations with a non-finite essential field; zero the confidence of non-finite keypoints.

    Returns the cleaned observations and how many were dropped. Observations that reference a view or a
    frame outside the scene are an input error, not noise.
    """
    if len(cameras) == 0:
        raise InputError("no cameras: a reconstruction needs at least one calibrated view")
    if len(observations) and (observations.view.min() < 0 or observations.view.max() >= len(cameras)):
        raise InputError(
            f"observations reference view {observations.view.max()} but there are {len(cameras)} cameras"
        )
    if len(observations) and (observations.frame.min() < 0 or observations.frame.max() >= num_frames):
        raise InputError(
            f"observations reference frame {observations.frame.max()} of a {num_frames}-frame scene"
        )
    finite = np.ones(len(observations), dtype=bool)
    for name in _ESSENTIAL:
        values = getattr(observations, name)
        finite &= np.isfinite(values).all(axis=tuple(range(1, values.ndim)))
    cleaned = observations.take(finite)
    bad_keypoints = ~np.isfinite(cleaned.keypoints2d).all(axis=-1)
    if bad_keypoints.any():
        cleaned = replace(
            cleaned,
            keypoints2d=np.where(bad_keypoints[..., None], 0.0, cleaned.keypoints2d),
            keypoint_confidence=np.where(bad_keypoints, 0.0, cleaned.keypoint_confidence),
        )
    return cleaned, int((~finite).sum())


def assigned_observations(
    observations: Observations,
    tracklets: Tracklets,
    assignment: Assignment,
    cameras: CameraRig,
    num_frames: int,
    config: ReconstructionConfig,
) -> tuple[Observations, Int[np.ndarray, " N"], Int[np.ndarray, " M"]]:
    """What fusion reads: the observations with left/right labels agreed across each person's views,
    the person of each (-1: none), and the observations whose labels were swapped."""
    person = assignment.person_of(tracklets.observation_tracklet, observations.frame)
    oriented, mirrored = orient_left_right(
        observations, person, cameras, num_frames, config.fusion.min_keypoint_confidence
    )
    return oriented, person, mirrored


def fuse_and_scale(
    observations: Observations,
    tracklets: Tracklets,
    assignment: Assignment,
    cameras: CameraRig,
    num_frames: int,
    fps: float,
    config: ReconstructionConfig,
    seconds: dict[str, float],
) -> tuple[tuple[PersonTrack, ...], CameraRig, Diagnostics]:
    """Left/right orientation, fusion, scale adjustment, the joints' speed check (in metres, so after
    the scale) and residuals for a given assignment. The detections stay as detected; the ones read
    mirror-wise, and the joint positions rejected as too fast, are listed in the diagnostics."""
    with timed(seconds, "fusion"):
        observations, person, mirrored = assigned_observations(
            observations, tracklets, assignment, cameras, num_frames, config
        )
        persons = fuse(observations, person, cameras, num_frames, config.fusion)
    with timed(seconds, "scale"):
        persons, cameras, estimate = adjust_scale(
            persons, observations, person, cameras, num_frames, config.scale
        )
    with timed(seconds, "joint speed"):
        persons, rejected = checked_persons(persons, fps, config.joint_speed)
    persons = with_residuals(persons, observations, person, cameras, num_frames, config)
    diagnostics = Diagnostics(
        rejected_joints=rejected,
        stage_seconds=seconds,
        scale_factor=estimate.factor,
        scale_samples=estimate.samples,
        scale_sample_person=estimate.person,
        scale_sample_frame=estimate.frame,
        scale_sample_view=estimate.view,
        scale_sample_inlier=estimate.inlier,
        mirrored_observations=mirrored,
    )
    return persons, cameras, diagnostics


def with_residuals(
    persons: tuple[PersonTrack, ...],
    observations: Observations,
    person: Int[np.ndarray, " N"],
    cameras: CameraRig,
    num_frames: int,
    config: ReconstructionConfig,
) -> tuple[PersonTrack, ...]:
    """The persons with their per-view reprojection errors against the observations they came from."""
    num_persons = int(person.max()) + 1 if person.size else 0
    cells = PersonCells.build(observations, person, num_persons, num_frames, len(cameras)).index
    max_error = config.fusion.keypoint_max_error_px if observations.bare_keypoints else np.inf
    return tuple(
        replace(
            p,
            residuals_px=reprojection_residuals(
                p, observations, cells[p.person_id], cameras, config.fusion.min_keypoint_confidence, max_error
            ),
        )
        for p in persons
    )


def view_agreement_messages(
    persons: tuple[PersonTrack, ...], observations: Observations, cameras: CameraRig, minimum: float = 0.5
) -> list[str]:
    """Name the views whose detections rarely agree with the other views (a wrong or misordered
    calibration makes a view an outlier everywhere, while the others still reconstruct)."""
    if len(cameras) < 2 or not persons:
        return []
    agreeing = np.zeros(len(cameras))
    for person in persons:
        multi_view = person.views.sum(axis=1) >= 2
        agreeing += person.views[multi_view].sum(axis=0)
    detections = np.bincount(observations.view, minlength=len(cameras))
    share = agreeing / np.maximum(detections, 1)
    return [
        f"view {name} agrees with the other views for only {share[v]:.0%} of its {detections[v]} detections: "
        "check that the calibration is for this rig and that the clips are in its camera order"
        for v, name in enumerate(cameras.names)
        if detections[v] >= 10 and share[v] < minimum
    ]


def _refined(
    observations: Observations,
    tracklets: Tracklets,
    assignment: Assignment,
    cameras: CameraRig,
    num_frames: int,
    config: ReconstructionConfig,
) -> Assignment:
    """Rounds of matching every observation to the persons fused from the last round's assignment
    (``refine_assignment``): tracklets that followed two people are cut where they swapped."""
    for _ in range(config.refinement.rounds):
        oriented, person, _ = assigned_observations(
            observations, tracklets, assignment, cameras, num_frames, config
        )
        persons = fuse(oriented, person, cameras, num_frames, config.fusion)
        refined = refine_assignment(
            oriented, tracklets, assignment, persons, cameras, num_frames, config.refinement
        )
        changed = refined.person_of(tracklets.observation_tracklet, observations.frame) != person
        assignment = refined
        if changed.mean() <= config.refinement.settled_share:
            break  # settled: another round would fuse nearly the same persons
    return assignment


def fit_to_clip(config: ReconstructionConfig, num_frames: int) -> tuple[ReconstructionConfig, list[str]]:
    """The settings for a clip of ``num_frames``, and what to tell the user about them.

    On a clip shorter than the frames a tracklet must last, or two tracklets must share to be linked,
    every person would be lost; there the whole clip is asked instead, which still drops a detection
    that flickers in and out.
    """
    tracking, association = config.tracking, config.association
    needed = max(tracking.min_tracklet_frames, association.min_shared_frames)
    if num_frames >= needed:
        return config, []
    frames = f"{num_frames} frame{'s' if num_frames > 1 else ''}"
    message = (
        f"the clip has {frames}, fewer than the {needed} a tracklet needs to be kept and linked "
        "(tracking.min_tracklet_frames, association.min_shared_frames): the people seen in every frame "
        "are kept"
    )
    return replace(
        config,
        tracking=replace(tracking, min_tracklet_frames=min(tracking.min_tracklet_frames, num_frames)),
        association=replace(association, min_shared_frames=min(association.min_shared_frames, num_frames)),
    ), [message]


def reconstruct_from_observations(
    observations: Observations,
    cameras: CameraRig,
    num_frames: int,
    fps: float,
    config: ReconstructionConfig | None = None,
    progress: ProgressCallback | None = None,
) -> Reconstruction:
    """Run the test-time stages on per-view observations of a calibrated (possibly mis-scaled) scene.

    Behaviour on degenerate input (documented in the README): no observation → a reconstruction with no
    person and a message; a single view → each tracklet is its own person, positions are monocular; a
    non-finite essential field → that observation is dropped and counted.
    """
    config = config or ReconstructionConfig()
    report = progress or (lambda stage, fraction: None)
    seconds: dict[str, float] = {}
    messages: list[str] = []
    with timed(seconds, "validate"):
        observations, dropped = validate_observations(observations, cameras, num_frames)
    if dropped:
        messages.append(f"{dropped} observations dropped: a non-finite essential field")
    if len(cameras) == 1:
        messages.append("single view: no cross-view association or triangulation; positions are monocular")
    report("validate", 0.1)
    clip_config, short_clip = fit_to_clip(config, num_frames)
    messages += short_clip
    with timed(seconds, "tracking"):
        tracklets = track(observations, len(cameras), clip_config.tracking)
    report("tracking", 0.4)
    with timed(seconds, "association"):
        metres_per_unit = monocular_scale(observations, cameras, config.scale)
        association = associate(observations, tracklets, cameras, clip_config.association, metres_per_unit)
    report("association", 0.6)
    assignment = association.assignment
    with timed(seconds, "world tracking"):
        if config.world_tracking.enabled and len(cameras) > 1:
            proposal = assignment.person_of(tracklets.observation_tracklet, observations.frame)
            assignment = world_assignment(
                observations,
                tracklets,
                proposal,
                cameras,
                num_frames,
                fps,
                config.world_tracking,
                config.refinement.min_single_view_frames,
            )
    report("world tracking", 0.65)
    with timed(seconds, "refinement"):
        if config.refinement.enabled and not config.world_tracking.enabled and len(cameras) > 1:
            assignment = _refined(observations, tracklets, assignment, cameras, num_frames, config)
    report("refinement", 0.7)
    persons, scaled_cameras, diagnostics = fuse_and_scale(
        observations, tracklets, assignment, cameras, num_frames, fps, config, seconds
    )
    report("fusion", 0.9)
    report("scale", 1.0)
    if not persons:
        messages.append("no person found: no tracklet lasted long enough to be kept")
    messages += view_agreement_messages(persons, observations, scaled_cameras)
    messages += [
        f"person {p.person_id} is seen by one view only: its position is that view's monocular estimate"
        for p in persons
        if len(cameras) > 1 and p.views.sum(axis=1).max(initial=0) < 2
    ]
    diagnostics = replace(
        diagnostics,
        association_cost=association.costs.mean_cost,
        association_shared_frames=association.costs.shared_frames,
        dropped_observations=dropped,
        messages=tuple(messages),
    )
    return Reconstruction(
        cameras=scaled_cameras,
        observations=observations,
        tracklets=tracklets,
        assignment=assignment,
        persons=persons,
        config=config,
        diagnostics=diagnostics,
        fps=fps,
        num_frames=num_frames,
    )
