"""What a finished reconstruction holds, in a few numbers per person (``python -m studio summary``)."""

from __future__ import annotations

import numpy as np

from core.reconstruction import Reconstruction


def clip_frame_numbers(reconstruction: Reconstruction, frames: np.ndarray) -> np.ndarray:
    """Reconstruction frame indices → frame numbers of the source clips."""
    return reconstruction.first_frame + frames * reconstruction.frame_step


def view_file_frames(reconstruction: Reconstruction, view: int) -> tuple[int, float]:
    """The frame of ``view``'s file that is reconstruction frame 0, and its file's frames per
    reconstruction frame (the nearest frame is shown where that is fractional)."""
    if reconstruction.view_frames:
        first, step = reconstruction.view_frames[view]
        return int(first), float(step)
    return reconstruction.first_frame, float(reconstruction.frame_step)


def largest_joint_step(person) -> float | None:
    """The farthest any joint of the person moves between two consecutive frames, metres."""
    consecutive = np.flatnonzero(np.diff(person.frames) == 1)
    if consecutive.size == 0:
        return None
    step = np.linalg.norm(person.joints[consecutive + 1] - person.joints[consecutive], axis=-1)
    return round(float(np.nanmax(step)), 3) if np.isfinite(step).any() else None


def summarize(reconstruction: Reconstruction) -> dict:
    """Persons with their clip frame spans and reprojection errors, the scale factor, seconds per stage."""
    names = reconstruction.cameras.names
    persons = []
    for person in reconstruction.persons:
        frames = clip_frame_numbers(reconstruction, person.frames)
        residuals = person.residuals_px
        seen = np.isfinite(residuals)
        per_view = {
            names[v]: round(float(np.mean(residuals[seen[:, v], v])), 2)
            for v in range(residuals.shape[1])
            if seen[:, v].any()
        }
        persons.append(
            {
                "person_id": person.person_id,
                "first_frame": int(frames[0]),
                "last_frame": int(frames[-1]),
                "frames": int(frames.shape[0]),
                "reprojection_error_px": round(float(np.mean(residuals[seen])), 2) if seen.any() else None,
                "reprojection_error_px_per_view": per_view,
                "largest_joint_step_m": largest_joint_step(person),
                "joint_speed_rejections": int(
                    (reconstruction.diagnostics.rejected_joints.person == person.person_id).sum()
                ),
            }
        )
    diagnostics = reconstruction.diagnostics
    return {
        "persons": len(persons),
        "person": persons,
        "frames": reconstruction.num_frames,
        "fps": reconstruction.fps,
        "scale_factor": diagnostics.scale_factor,
        "cameras": camera_table(reconstruction),
        "sync_offsets": [
            {"camera": name, "offset": int(offset), "confidence": round(float(confidence), 3)}
            for name, offset, confidence in zip(
                names, diagnostics.sync_offsets, diagnostics.sync_confidence, strict=False
            )
        ],
        "recalled_per_camera": {
            name: int(count) for name, count in zip(names, diagnostics.recalled_observations, strict=False)
        },
        "stage_seconds": {stage: round(s, 3) for stage, s in diagnostics.stage_seconds.items()},
        "total_seconds": round(sum(diagnostics.stage_seconds.values()), 3),
        "messages": list(diagnostics.messages),
    }


def camera_table(reconstruction: Reconstruction) -> dict:
    """Where the cameras came from and, per camera, its focal length, reprojection error, keypoint
    inliers and verdict: the camera stage's own account when it estimated them, else (a calibration
    file) the focal lengths and the persons' mean reprojection error in each view."""
    report = reconstruction.calibration
    if report is not None and report.cameras:
        return {"source": report.source, "scale_from": report.scale_from, "table": report.table()}
    residuals = [p.residuals_px for p in reconstruction.persons]
    rows = []
    for v, camera in enumerate(reconstruction.cameras.cameras):
        errors = np.concatenate([r[:, v] for r in residuals]) if residuals else np.zeros(0)
        errors = errors[np.isfinite(errors)]
        rows.append(
            {
                "camera": camera.name,
                "placed": True,
                "focal_px": round(float(camera.K[0, 0]), 1),
                "reprojection_px": round(float(errors.mean()), 2) if errors.size else None,
                "inliers": None,
                "verdict": "given",
            }
        )
    return {
        "source": report.source if report is not None else "file",
        "scale_from": "calibration",
        "table": rows,
    }


def format_summary(summary: dict) -> str:
    """The summary as lines for a terminal."""
    lines = [f"{summary['persons']} persons over {summary['frames']} frames at {summary['fps']:g} fps"]
    for p in summary["person"]:
        error, step = p["reprojection_error_px"], p["largest_joint_step_m"]
        lines.append(
            f"  person {p['person_id']}: frames {p['first_frame']}–{p['last_frame']} ({p['frames']}), "
            f"reprojection {'n/a' if error is None else f'{error:.2f} px'}, largest joint step "
            f"{'n/a' if step is None else f'{step:.2f} m'}, {p['joint_speed_rejections']} too fast"
        )
    lines.append(f"scale factor {summary['scale_factor']:.4f}")
    cameras = summary["cameras"]
    lines.append(f"cameras from {cameras['source']} (scale: {cameras['scale_from']})")
    for row in cameras["table"]:
        error = row["reprojection_px"]
        lines.append(
            f"  {row['camera']}: focal {row['focal_px'] or float('nan'):.0f} px, reprojection "
            f"{'n/a' if error is None else f'{error:.2f} px'}, {row['verdict']}"
        )
    if summary["sync_offsets"]:
        lines.append(
            "in step with frame offsets "
            + ", ".join(
                f"{s['camera']} {s['offset']:+d} ({s['confidence']:.2f})" for s in summary["sync_offsets"]
            )
        )
    if any(summary["recalled_per_camera"].values()):
        lines.append(
            "recalled where the other views placed them (the detector had missed them): "
            + ", ".join(f"{name} {count}" for name, count in summary["recalled_per_camera"].items())
        )
    lines.append(
        "seconds: "
        + ", ".join(f"{k} {v:.2f}" for k, v in summary["stage_seconds"].items())
        + f" (total {summary['total_seconds']:.2f})"
    )
    lines += [f"note: {m}" for m in summary["messages"]]
    return "\n".join(lines)
