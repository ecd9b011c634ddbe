"""Joints that move like joints: a fused joint faster than a human joint can move is not trusted.

A joint taken from the wrong person in one view, or triangulated from views that disagree, jumps
away from where it was a frame before and back later. Each joint of each person keeps the chain of its
positions that moves within ``max_speed`` from each to the next and carries the most views; a
position off that chain is rejected: it stands on no view for the body fit, and it is placed between
the accepted positions around it so that the track stays whole. The bound is a speed in metres per
second, so it holds at any frame rate, and a human one: a fast arm (a throw, a punch) stays under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from jaxtyping import Bool, Float, Int

from core.types import JointRejections, PersonTrack


@dataclass(frozen=True)
class JointSpeedConfig:
    """How fast a fused joint may move."""

    max_speed: float = 15.0
    """Metres per second no human joint exceeds between two frames (0.25 m at 60 fps; a baseball
    pitcher's hand, the fastest of human motions, reaches about 40 m/s only at release; a punch, a kick
    or a thrown arm: 5–12 m/s). 0 checks nothing."""
    speed_cost: float = 2.0
    """A step at the bound costs as much as this many views on the path (a quadratic in the speed): of
    two chains with as many views, the one that moves slower is the joint (two jumps in and out of a
    stretch taken from someone else, within the bound at a low frame rate, cost it)."""
    window_s: float = 0.5
    """Frames this far apart are compared by the bound; farther apart, they always chain."""
    noise: float = 0.0
    """Metres a joint's triangulation may wobble on top of its motion (worth a few centimetres at
    high frame rates, where the bound per frame nears the triangulation's noise: 6 cm at 240 fps)."""


def too_fast(
    joints: Float[np.ndarray, "F J 3"],
    frames: Int[np.ndarray, " F"],
    views: Int[np.ndarray, "F J"],
    fps: float,
    config: JointSpeedConfig,
) -> tuple[Bool[np.ndarray, "F J"], Float[np.ndarray, "F J"]]:
    """Which seen positions (``views`` > 0) lie off each joint's most credible speed-consistent path,
    and their speed from the path's last position before them (m/s, 0 on the path).

    The path is the chain of frames, each reachable from the one before within the bound, that carries
    the most views less its steps' ``speed_cost`` (dynamic programming over frames, every joint at
    once): a stretch taken from someone else leaves it by jumping in and out, whatever its length, and
    loses to the frames around it. Frames more than ``config.window_s`` apart always chain (the bound
    then spans the scene)."""
    F, J = views.shape
    rejected, speed = np.zeros((F, J), dtype=bool), np.zeros((F, J))
    if F < 2 or config.max_speed <= 0:
        return rejected, speed
    seen = views > 0
    time = frames / fps
    window = max(1, round(config.window_s * fps))
    score = np.full((F, J), -np.inf)  # the most views a path ending at (k, j) carries
    before = np.full((F, J), -1)  # its previous frame
    old_best = np.full(J, 0.0)  # the best path ending more than ``window`` frames back (or none)
    old_at = np.full(J, -1)
    for k in range(F):
        if k > window:
            better = score[k - window - 1] > old_best
            old_best = np.where(better, score[k - window - 1], old_best)
            old_at = np.where(better, k - window - 1, old_at)
        lo = max(0, k - window)
        if lo < k:
            step = np.linalg.norm(joints[lo:k] - joints[k], axis=-1)  # (w, J)
            elapsed = (time[k] - time[lo:k])[:, None]
            reach = step <= config.max_speed * elapsed + config.noise
            fast = (step / (config.max_speed * elapsed)) ** 2  # 1 at the bound
            carried = np.where(reach, score[lo:k] - config.speed_cost * fast, -np.inf)
            best = np.argmax(carried, axis=0)
            recent = carried[best, np.arange(J)]
        else:
            best, recent = np.zeros(J, dtype=np.int64), np.full(J, -np.inf)
        use_recent = recent >= old_best
        score[k] = np.where(seen[k], views[k] + np.maximum(recent, old_best), -np.inf)
        before[k] = np.where(seen[k], np.where(use_recent, lo + best, old_at), -1)
    on_path = np.zeros((F, J), dtype=bool)
    at = np.where(np.isfinite(score).any(axis=0), np.argmax(score, axis=0), -1)  # each joint's path end
    for k in range(F - 1, -1, -1):  # walk every joint's path back at once
        here = at == k
        on_path[k] = here
        at = np.where(here, before[k], at)
    rejected = seen & ~on_path
    # Each run of rejected frames is reported at the speed of its jump off the path.
    index = np.arange(F)[:, None]
    last = np.maximum.accumulate(np.where(on_path, index, -1), axis=0)  # the path's frame at or before k
    starts = rejected & ~np.concatenate([np.zeros((1, J), dtype=bool), rejected[:-1]])
    entry = np.maximum.accumulate(np.where(starts, index, -1), axis=0)  # the run's first frame
    frame, joint = np.nonzero(rejected)
    first, previous = entry[frame, joint], last[frame, joint]
    origin = np.maximum(previous, 0)
    distance = np.linalg.norm(joints[first, joint] - joints[origin, joint], axis=-1)
    elapsed = np.maximum(time[first] - time[origin], 1 / fps)
    speed[frame, joint] = np.where(previous >= 0, distance / elapsed, np.inf)
    return rejected, speed


def checked_persons(
    persons: Sequence[PersonTrack], fps: float, config: JointSpeedConfig
) -> tuple[tuple[PersonTrack, ...], JointRejections]:
    """The persons with their too-fast joint positions standing on no view and placed between the
    accepted ones around them; and the rejections."""
    checked, rows = [], []
    for person in persons:
        rejected, speed = too_fast(person.joints, person.frames, person.joint_views, fps, config)
        if rejected.any():
            frame, joint = np.nonzero(rejected)
            rows.append(
                (np.full(frame.size, person.person_id), person.frames[frame], joint, speed[frame, joint])
            )
            person = replace(
                person,
                joints=_bridged(person.joints, person.frames, (person.joint_views > 0) & ~rejected),
                joint_views=np.where(rejected, 0, person.joint_views),
            )
        checked.append(person)
    if not rows:
        return tuple(checked), JointRejections()
    person_id, frame, joint, speed = (np.concatenate(column) for column in zip(*rows, strict=True))
    return tuple(checked), JointRejections(person_id, frame, joint, speed)


def _bridged(
    joints: Float[np.ndarray, "F J 3"], frames: Int[np.ndarray, " F"], kept: Bool[np.ndarray, "F J"]
) -> Float[np.ndarray, "F J 3"]:
    """Every position not ``kept`` placed on the line between the kept ones before and after it in
    time (the nearest kept one at either end); a joint kept nowhere stays as it is."""
    F, J = kept.shape
    index = np.arange(F)[:, None]
    before = np.maximum.accumulate(np.where(kept, index, -1), axis=0)
    after = np.minimum.accumulate(np.where(kept, index, F)[::-1], axis=0)[::-1]
    has_before, has_after = before >= 0, after < F
    before = np.where(has_before, before, after)
    after = np.where(has_after, after, before)
    anywhere = kept.any(axis=0)[None, :] & (has_before | has_after)
    before, after = np.clip(before, 0, F - 1), np.clip(after, 0, F - 1)
    joint = np.arange(J)[None, :]
    span = (frames[after] - frames[before]).astype(float)
    weight = np.where(span > 0, (frames[:, None] - frames[before]) / np.maximum(span, 1), 0.0)
    placed = joints[before, joint] + weight[..., None] * (joints[after, joint] - joints[before, joint])
    return np.where((~kept & anywhere)[..., None], placed, joints)
