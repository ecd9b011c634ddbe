"""The body stage of the pipeline: a body model fitted to every fused person's 3D keypoints.

The fused tracks keep their triangulated joints (the measurement, what reprojection errors and the
joint export report) and gain SMPL-X-layout parameters in the semantics of the chosen model, so that
the viewer and the exports can pose its mesh. Keypoints named like a model joint but defined otherwise
are left out of the fit: the fused ``head`` and ``pelvis`` are the midpoints of the ears and of the hip
landmarks, not the models' skeleton joints. A joint triangulated from two views or more counts fully,
one placed on a single view's ray counts ``FitConfig.single_view_weight``, a guessed one not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from jaxtyping import Bool, Int

from core.body.anny_backend import AnnyBody
from core.body.config import BodyConfig, FitConfig
from core.body.fitting import FitResult, WarmStart, fit_track
from core.body.model import BodyModel
from core.body.smplx_backend import load_smplx
from core.types import PersonTrack

_NOT_ANATOMICAL = ("head", "pelvis")


def load_body_model(config: BodyConfig, device: str = "cpu") -> BodyModel | None:
    """The configured model (built or loaded once per process by its backend); None for ``none``."""
    if config.model == "anny":
        return AnnyBody(config.anny, device)
    if config.model == "smplx":
        return load_smplx(config.smplx, device)
    return None


def fit_person(
    person: PersonTrack,
    model: BodyModel,
    config: FitConfig,
    device: str = "cpu",
    warm_start: WarmStart | None = None,
) -> FitResult | None:
    """The model fitted to one person's triangulated joints (all its frames in one batched problem);
    None if the person has no joint the model knows."""
    use = [n for n in person.joint_names if n not in _NOT_ANATOMICAL and n in model.joint_names]
    if not use:
        return None
    index = [person.joint_names.index(n) for n in use]
    views = person.joint_views[:, index]
    weights = np.where(views >= 2, 1.0, np.where(views == 1, config.single_view_weight, 0.0))
    targets = person.joints[:, index]
    return fit_track(model, person.frames, targets, tuple(use), weights, config, device, warm_start)


def fit_persons(
    persons: Sequence[PersonTrack],
    model: BodyModel,
    config: FitConfig,
    device: str = "cpu",
    warm_starts: Mapping[int, WarmStart] | None = None,
) -> tuple[PersonTrack, ...]:
    """Every person's track with the model's parameters fitted to its triangulated joints; a person
    with a warm start (by id) starts from it and runs the second stage only."""
    fitted = []
    for person in persons:
        warm = (warm_starts or {}).get(person.person_id)
        result = fit_person(person, model, config, device, warm)
        fitted.append(person if result is None else with_fit(person, result, model))
    return tuple(fitted)


def with_fit(
    person: PersonTrack,
    result: FitResult,
    model: BodyModel,
    rows: Int[np.ndarray, " G"] | None = None,
    keep: Bool[np.ndarray, " R"] | None = None,
) -> PersonTrack:
    """``person`` carrying ``result``'s shape and poses at every frame; or, for a result fitted on some
    of its frames with its shape kept, the result's rows ``keep`` written at the track's rows ``rows``
    (every other frame, and the shape, left exactly as they were)."""
    fitted = {"global_orient": result.global_orient, "transl": result.transl, "body_pose": result.body_pose}
    if rows is None:
        return replace(person, **fitted, shape=result.shape, shape_model=model.name)
    fitted = {name: _written(getattr(person, name), rows, value[keep]) for name, value in fitted.items()}
    return replace(person, **fitted, shape_model=model.name)


def _written(array: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    copy = array.copy()
    copy[rows] = values
    return copy
