"""Failure inspection: the images and curves a researcher looks at to see why a case failed.

A wrong reconstruction is explained by what the engine saw and what it concluded from it: which
detections went to which person (identity colours, the same in every view), where the fused joints land
against those detections (the skeleton reprojected into the source frame), how well each view agreed
over time (reprojection error per view), how confidently the person's tracklets were grouped
(association cost) and what the head–pelvis scale evidence said. Everything here returns RGB uint8
images drawn with OpenCV, so the UI only has to show them.
"""

from __future__ import annotations

import colorsys
import functools
import itertools
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from jaxtyping import Float, Int, UInt8

from core.geometry import project_points
from core.io.video import ClipInfo, FrameRange, iter_frames, probe_clip
from core.reconstruction import Reconstruction
from core.skeleton import JOINT_NAMES, PARENTS
from core.types import Camera, PersonTrack
from studio.summary import view_file_frames

_GOLDEN = 0.618033988749895
"""Hue step between consecutive person ids: never repeats, keeps neighbouring ids far apart."""
_UNASSIGNED = (128, 128, 128)
_CANVAS_GREY = 40
"""Grey level of the stand-in frame of a view without a clip."""
_MAX_WIDTH = 1280
_TILE_WIDTH = 640
_MATRIX_SIDE = 600
_MATRIX_MARGIN = 170
"""Pixels left of and above the heat-map for the tracklet labels."""
_PLOT_HEIGHT, _PLOT_WIDTH = 360, 900
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_ASCII = str.maketrans({"→": ">", "–": "-"})
"""OpenCV's Hershey fonts draw ASCII only."""
_VIEW_COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (127, 127, 127),
)
"""One colour per view in plots (tab10), distinct from the person colours' role."""
_LIMBS = (
    ("left_shoulder", "right_shoulder"),
    ("left_hip", "right_hip"),
    *((f"{side}_shoulder", f"{side}_hip") for side in ("left", "right")),
    *(
        (f"{side}_{upper}", f"{side}_{lower}")
        for side in ("left", "right")
        for upper, lower in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))
    ),
)
"""COCO-style limbs, by name, for joints named after BlazePose or COCO keypoints."""


def identity_color(person_id: int) -> tuple[int, int, int]:
    """RGB colour of a person, the same in every view, frame and session; grey for -1 (unassigned).

    >>> identity_color(0), identity_color(-1)
    ((242, 36, 36), (128, 128, 128))
    """
    if person_id < 0:
        return _UNASSIGNED
    r, g, b = colorsys.hsv_to_rgb(person_id * _GOLDEN % 1.0, 0.85, 0.95)
    return round(255 * r), round(255 * g), round(255 * b)


def source_frame(reconstruction: Reconstruction, view: int, frame: int) -> UInt8[np.ndarray, "H W 3"]:
    """The clip image of ``view`` at reconstruction frame ``frame``, RGB; a dark grey canvas of the
    camera's size when there is no clip to show (synthetic scenes, a clip moved away)."""
    camera = reconstruction.cameras.cameras[view]
    path = Path(reconstruction.clips[view]) if reconstruction.clips else None
    if path is None or not path.is_file():
        return np.full((camera.height, camera.width, 3), _CANVAS_GREY, dtype=np.uint8)
    with closing(iter_frames(_as_read(reconstruction, view, path), FrameRange(frame, frame + 1))) as it:
        return next(it)[1]


def source_thumbnails(
    reconstruction: Reconstruction, view: int, width: int, start: int = 0
) -> Iterator[UInt8[np.ndarray, "h w 3"]]:
    """The reconstruction frames of ``view``'s clip from ``start`` on, ``width`` pixels wide, as one
    stream: a viewer scrubbing forward reads on, and a jump costs one seek to the keyframe before it
    (seeking for every frame costs about 0.3 s a frame). One dark grey canvas for every frame when
    there is no clip to show."""
    camera = reconstruction.cameras.cameras[view]
    size = (width, max(1, round(camera.height * width / camera.width)))
    path = Path(reconstruction.clips[view]) if reconstruction.clips else None
    if path is None or not path.is_file():
        canvas = np.full((size[1], size[0], 3), _CANVAS_GREY, dtype=np.uint8)
        yield from itertools.repeat(canvas, max(reconstruction.num_frames - start, 0))
        return
    frames = FrameRange(start)
    with closing(iter_frames(_as_read(reconstruction, view, path), frames)) as images:
        for _, image in images:
            yield cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _as_read(reconstruction: Reconstruction, view: int, path: Path) -> ClipInfo:
    """``view``'s clip as the reconstruction read it: its frame t is reconstruction frame t."""
    first, step = view_file_frames(reconstruction, view)
    info = _probe(path, path.stat().st_mtime_ns)
    return replace(info, start=first, stride=step, num_frames=reconstruction.num_frames)


@functools.lru_cache(maxsize=32)
def _probe(path: Path, modified_ns: int) -> ClipInfo:
    """Probing may demux a whole clip to count its frames: once per file version, not per image shown."""
    return probe_clip(path)


def overlay(
    reconstruction: Reconstruction,
    person_id: int | None,
    frame: int,
    view: int,
    image: UInt8[np.ndarray, "H W 3"] | None = None,
) -> UInt8[np.ndarray, "h w 3"]:
    """The view's frame (``image``, default :func:`source_frame`) with every detection thin in its
    person's colour, and the selected person's fused joints reprojected as a thick skeleton labelled
    with the view's reprojection error. Frames wider than 1280 px are drawn at 1280 px wide.

    Raises:
        KeyError: ``person_id`` is not a person of the reconstruction.
    """
    camera = reconstruction.cameras.cameras[view]
    canvas = source_frame(reconstruction, view, frame) if image is None else image
    width = min(canvas.shape[1], _MAX_WIDTH)
    if width == canvas.shape[1]:
        canvas = canvas.copy()
    else:
        canvas = cv2.resize(canvas, (width, round(canvas.shape[0] * width / canvas.shape[1])), cv2.INTER_AREA)
    scale = width / camera.width  # camera pixels → canvas pixels
    _draw_detections(canvas, reconstruction, frame, view, scale)
    if person_id is not None:
        _draw_person(canvas, _person(reconstruction, person_id), frame, view, camera, scale)
    return canvas


def _draw_detections(
    canvas: np.ndarray, reconstruction: Reconstruction, frame: int, view: int, scale: float
) -> None:
    obs = reconstruction.observations
    rows = np.flatnonzero((obs.view == view) & (obs.frame == frame))
    tracklet = reconstruction.tracklets.observation_tracklet[rows]
    person = reconstruction.assignment.person_of(tracklet, obs.frame[rows])
    for row, p in zip(rows, person, strict=True):
        color = identity_color(int(p))
        corners = _pixels(obs.bbox[row].reshape(2, 2) * scale)
        if len(corners) == 2:
            cv2.rectangle(canvas, corners[0], corners[1], color, 1, cv2.LINE_AA)
        for point in _pixels(obs.keypoints2d[row] * scale):
            cv2.circle(canvas, point, 2, color, -1, cv2.LINE_AA)


def _draw_person(
    canvas: np.ndarray, person: PersonTrack, frame: int, view: int, camera: Camera, scale: float
) -> None:
    row = int(np.searchsorted(person.frames, frame))
    if row == person.frames.size or person.frames[row] != frame:
        return
    pixels = project_points(person.joints[row], camera.K, camera.dist, camera.R, camera.t) * scale  # (J, 2)
    color = identity_color(person.person_id)
    thick = max(2, round(canvas.shape[1] / 320))
    for a, b in skeleton_bones(person.joint_names):
        ends = _pixels(pixels[[a, b]])
        if len(ends) == 2:
            cv2.line(canvas, ends[0], ends[1], color, thick, cv2.LINE_AA)
    joints = _pixels(pixels)
    for point in joints:
        cv2.circle(canvas, point, thick, color, -1, cv2.LINE_AA)
    error = person.residuals_px[row, view]
    text = f"P{person.person_id}  " + (f"{error:.1f} px" if np.isfinite(error) else "not seen")
    anchor = (joints.min(axis=0) - [0, 3 * thick]) if len(joints) else np.array([8, 24])
    anchor = np.clip(anchor, [0, 16], [canvas.shape[1] - 120, canvas.shape[0] - 4])
    _text(canvas, text, anchor, color, max(0.5, canvas.shape[1] / 1600))


def skeleton_bones(names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Bones as joint index pairs: the SMPL-X kinematic tree, else COCO-style limbs found by name."""
    if names == JOINT_NAMES:
        return [(int(PARENTS[j]), j) for j in range(1, len(names))]
    index = {name: j for j, name in enumerate(names)}
    return [(index[a], index[b]) for a, b in _LIMBS if a in index and b in index]


def _pixels(points: Float[np.ndarray, "N 2"]) -> Int[np.ndarray, "M 2"]:
    """The finite points as integer pixels (clipped so that OpenCV's fixed point cannot overflow)."""
    finite = points[np.isfinite(points).all(axis=1)]
    return np.clip(np.round(finite), -1e6, 1e6).astype(np.int32)


def _text(
    canvas: np.ndarray, text: str, origin: Int[np.ndarray, 2] | tuple[int, int], color, size: float = 0.6
) -> None:
    """Text with a dark outline, readable on any background."""
    origin = tuple(int(v) for v in origin)
    text = text.translate(_ASCII)
    cv2.putText(canvas, text, origin, _FONT, size, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, _FONT, size, color, 1, cv2.LINE_AA)


def _person(reconstruction: Reconstruction, person_id: int) -> PersonTrack:
    for person in reconstruction.persons:
        if person.person_id == person_id:
            return person
    raise KeyError(f"no person {person_id} in this reconstruction")


def overlay_grid(
    reconstruction: Reconstruction, person_id: int | None, frame: int
) -> UInt8[np.ndarray, "H W 3"]:
    """Every view's :func:`overlay`, 640 px wide tiles named by camera, two columns; the tile height
    follows the first camera's aspect ratio."""
    first = reconstruction.cameras.cameras[0]
    tile_height = round(_TILE_WIDTH * first.height / first.width)
    tiles = []
    for view, name in enumerate(reconstruction.cameras.names):
        tile = cv2.resize(overlay(reconstruction, person_id, frame, view), (_TILE_WIDTH, tile_height))
        _text(tile, name, (8, tile_height - 10), (255, 255, 255))
        tiles.append(tile)
    columns = min(2, len(tiles))
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def rejected_joints_markdown(
    reconstruction: Reconstruction, person_id: int, frame: int, rows: int = 12
) -> str:
    """The person's joint positions rejected as faster than a human joint moves, nearest ``frame``
    first, as a Markdown table: what the body fit left out, and why."""
    d = reconstruction.diagnostics.rejected_joints
    mine = np.flatnonzero(d.person == person_id)
    bound = reconstruction.config.joint_speed.max_speed
    if mine.size == 0:
        return f"No joint of person {person_id} moved faster than {bound:g} m/s."
    names = _person(reconstruction, person_id).joint_names
    near = mine[np.argsort(np.abs(d.frame[mine] - frame), kind="stable")][:rows]
    lines = [
        f"**{mine.size} joint positions of person {person_id} moved faster than {bound:g} m/s** off the "
        "joint's accepted positions: left out of the body fit, placed between their neighbours in time.",
        "",
        "| frame | joint | speed (m/s) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {d.frame[k]} | {names[d.joint[k]]} | {d.speed[k]:.0f} |"
        for k in sorted(near, key=lambda k: d.frame[k])
    ]
    return "\n".join(lines)


def person_timeseries(reconstruction: Reconstruction, person_id: int) -> dict[str, np.ndarray]:
    """A person's evidence over time: ``frames`` (F,), ``reprojection_px`` (F, V), ``views`` (F,) seeing
    it, head–pelvis ``scale_frames``/``scale_ratios`` (S,), and ``association_cost`` (F,), the mean cost
    between its tracklets present at each frame (NaN where fewer than two are comparable).

    Raises:
        KeyError: ``person_id`` is not a person of the reconstruction.
    """
    person = _person(reconstruction, person_id)
    diagnostics = reconstruction.diagnostics
    sample = diagnostics.scale_sample_person == person_id
    return {
        "frames": person.frames,
        "reprojection_px": person.residuals_px,
        "views": person.views.sum(axis=1),
        "scale_frames": diagnostics.scale_sample_frame[sample],
        "scale_ratios": diagnostics.scale_samples[sample],
        "association_cost": _tracklet_cost(reconstruction, person),
    }


def _tracklet_cost(reconstruction: Reconstruction, person: PersonTrack) -> Float[np.ndarray, " F"]:
    obs = reconstruction.observations
    tracklet = reconstruction.tracklets.observation_tracklet
    mine = (reconstruction.assignment.person_of(tracklet, obs.frame) == person.person_id) & np.isin(
        obs.frame, person.frames
    )
    ids, column = np.unique(tracklet[mine], return_inverse=True)
    present = np.zeros((person.frames.size, ids.size))  # (F, Kp): tracklet k has an observation at frame f
    present[np.searchsorted(person.frames, obs.frame[mine]), column] = 1.0
    cost = _association_cost(reconstruction)[np.ix_(ids, ids)]
    comparable = np.isfinite(cost) & ~np.eye(ids.size, dtype=bool)
    total = np.einsum("fi,ij,fj->f", present, np.where(comparable, cost, 0.0), present)
    pairs = np.einsum("fi,ij,fj->f", present, comparable.astype(float), present)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, total / pairs, np.nan)


def _association_cost(reconstruction: Reconstruction) -> Float[np.ndarray, "K K"]:
    """The tracklet cost matrix; all inf when the diagnostics lack it (a re-fusion does not recompute it)."""
    cost = reconstruction.diagnostics.association_cost
    count = len(reconstruction.tracklets)
    return cost if cost.shape == (count, count) else np.full((count, count), np.inf)


def association_matrix(
    reconstruction: Reconstruction, frame: int
) -> tuple[list[str], Float[np.ndarray, "k k"]]:
    """The tracklets with an observation at ``frame``, labelled ``cam/t<id>→P<person>`` (``P–``: none)
    and ordered by person then view, and their association costs (inf: never comparable)."""
    obs = reconstruction.observations
    tracklets = reconstruction.tracklets
    at_frame = tracklets.observation_tracklet[obs.frame == frame]
    alive = np.unique(at_frame[at_frame >= 0])
    person = reconstruction.assignment.person_of(alive, np.full(alive.shape, frame))
    view = tracklets.view[alive]
    order = np.lexsort((alive, view, np.where(person >= 0, person, np.iinfo(np.int64).max)))
    alive, person, view = alive[order], person[order], view[order]
    names = reconstruction.cameras.names
    labels = [
        f"{names[v]}/t{k}→" + (f"P{p}" if p >= 0 else "P–")
        for k, p, v in zip(alive.tolist(), person.tolist(), view.tolist(), strict=True)
    ]
    return labels, _association_cost(reconstruction)[np.ix_(alive, alive)]


def matrix_image(labels: list[str], matrix: Float[np.ndarray, "k k"]) -> UInt8[np.ndarray, "600 600 3"]:
    """A 600×600 heat-map of an :func:`association_matrix` (viridis: low cost purple, high cost yellow;
    near-black cells: not comparable), tracklet labels on rows and columns."""
    image = np.full((_MATRIX_SIDE, _MATRIX_SIDE, 3), 245, dtype=np.uint8)
    count = len(labels)
    if count == 0:
        cv2.putText(image, "no tracklet at this frame", (20, 40), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        return image
    cell = max(1, (_MATRIX_SIDE - _MATRIX_MARGIN - 10) // count)
    finite = np.isfinite(matrix)
    low, high = (matrix[finite].min(), matrix[finite].max()) if finite.any() else (0.0, 1.0)
    level = np.where(finite, (matrix - low) / max(high - low, 1e-12), 0.0)
    heat = cv2.applyColorMap(np.round(255 * level).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    heat = np.where(finite[..., None], heat, np.uint8(30))
    side = count * cell
    end = _MATRIX_MARGIN + side
    image[_MATRIX_MARGIN:end, _MATRIX_MARGIN:end] = cv2.resize(
        heat, (side, side), interpolation=cv2.INTER_NEAREST
    )
    strip = _label_strip(labels, cell)
    image[_MATRIX_MARGIN:end, :_MATRIX_MARGIN] = strip
    image[:_MATRIX_MARGIN, _MATRIX_MARGIN:end] = np.rot90(strip)  # column labels read bottom-up
    for line, text in enumerate(
        (f"cost {low:.3g} (purple)", f"to {high:.3g} (yellow)", "black: not comparable")
    ):
        cv2.putText(image, text, (8, 20 + 18 * line), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def _label_strip(labels: list[str], cell: int) -> UInt8[np.ndarray, "H 170 3"]:
    """One label per ``cell`` rows, left-aligned, on the heat-map's background."""
    strip = np.full((len(labels) * cell, _MATRIX_MARGIN, 3), 245, dtype=np.uint8)
    size = min(0.45, max(0.25, cell / 30))
    for row, label in enumerate(labels):
        baseline = row * cell + (cell + round(18 * size)) // 2
        cv2.putText(strip, label.translate(_ASCII), (4, baseline), _FONT, size, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def person_plot(
    timeseries: dict[str, np.ndarray], camera_names: tuple[str, ...]
) -> UInt8[np.ndarray, "360 900 3"]:
    """A 900×360 plot of a :func:`person_timeseries` over frames: reprojection error per view (one
    colour per view, broken where the view did not see the person), association cost, scale samples."""
    image = np.full((_PLOT_HEIGHT, _PLOT_WIDTH, 3), 24, dtype=np.uint8)
    frames, ratios = timeseries["frames"], timeseries["scale_ratios"]
    span = np.concatenate([frames, timeseries["scale_frames"]])
    first, last = (int(span.min()), int(span.max())) if span.size else (0, 1)
    left, right = 60, _PLOT_WIDTH - 120

    def x_of(f: np.ndarray) -> np.ndarray:
        return left + (f - first) / max(last - first, 1) * (right - left)

    error = timeseries["reprojection_px"]
    panel = _panel(image, (left, 8, right, 190), "reprojection px", _value_range(error, 0.0))
    for view in range(error.shape[1]):
        color = _VIEW_COLORS[view % len(_VIEW_COLORS)]
        cv2.polylines(image, _runs(frames, x_of(frames), panel(error[:, view])), False, color, 1, cv2.LINE_AA)
        _text(image, camera_names[view], (right + 10, 24 + 18 * view), color, 0.45)
    cost = timeseries["association_cost"]
    panel = _panel(image, (left, 200, right, 270), "association cost", _value_range(cost, 0.0))
    cv2.polylines(image, _runs(frames, x_of(frames), panel(cost)), False, (230, 230, 230), 1, cv2.LINE_AA)
    low, high = _value_range(ratios, 1.0)
    panel = _panel(image, (left, 280, right, 340), "head-pelvis scale", (min(low, 0.9), max(high, 1.1)))
    unit = int(panel(np.array(1.0)))  # ratio 1: the scale needs no correction
    cv2.line(image, (left, unit), (right, unit), (90, 90, 90), 1)
    dots = np.stack([x_of(timeseries["scale_frames"]), panel(ratios)], axis=-1).round().astype(np.int32)
    cv2.polylines(image, list(np.repeat(dots[:, None], 2, axis=1)), False, (255, 200, 60), 3, cv2.LINE_AA)
    for f, x in ((first, left), (last, right)):
        cv2.putText(
            image, str(f), (int(x) - 8, _PLOT_HEIGHT - 6), _FONT, 0.4, (200, 200, 200), 1, cv2.LINE_AA
        )
    return image


def _value_range(values: np.ndarray, floor: float) -> tuple[float, float]:
    """Axis limits from ``floor`` (or the lowest value, if lower) to the highest finite value."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return floor, floor + 1.0
    low, high = min(floor, float(finite.min())), float(finite.max())
    return low, max(high, low + 1e-6)


def _panel(image: np.ndarray, box: tuple[int, int, int, int], title: str, limits: tuple[float, float]):
    """Draws a panel's frame, title and limits; returns the map from values to its pixel rows."""
    x0, y0, x1, y1 = box
    low, high = limits
    cv2.rectangle(image, (x0, y0), (x1, y1), (90, 90, 90), 1)
    cv2.putText(image, title, (x0 + 6, y0 + 14), _FONT, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
    for value, y in ((high, y0 + 10), (low, y1)):
        cv2.putText(image, f"{value:.3g}", (4, y), _FONT, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
    return lambda values: y1 - (values - low) / (high - low) * (y1 - y0)


def _runs(frames: Int[np.ndarray, " F"], x: np.ndarray, y: np.ndarray) -> list[Int[np.ndarray, "M 2"]]:
    """Polyline pieces over consecutive frames with finite values: a NaN or a skipped frame breaks the
    line; a lone sample becomes a dot (a two-point piece)."""
    keep = np.flatnonzero(np.isfinite(y))
    points = np.stack([x[keep], y[keep]], axis=-1).round().astype(np.int32)
    pieces = np.split(points, np.flatnonzero(np.diff(frames[keep]) > 1) + 1)
    return [np.repeat(p, 2, axis=0) if len(p) == 1 else p for p in pieces if len(p)]
