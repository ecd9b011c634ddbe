"""Batched multi-view camera geometry in plain numpy: the camera model, triangulation, rotations, alignment.

Every later stage of the engine (2D keypoints to 3D joints, camera calibration checks, evaluation
alignment) needs the same handful of operations: move points between the world and a camera, apply or
remove lens distortion, cast rays through pixels, intersect rays from several views, average rotations
and fit a similarity transform between point sets. They live here once, vectorised over arbitrary
leading batch dimensions, so callers never loop over frames, persons, joints or views.

Conventions:
    * World coordinates are in metres.
    * Camera frame is OpenCV: x right, y down, z forward (along the optical axis).
    * Extrinsics ``R`` (3x3) and ``t`` (3,) map world to camera: ``X_cam = R @ X_world + t``; the camera
      centre in the world frame is ``C = -R^T t``.
    * Intrinsics ``K`` are the usual 3x3 pinhole matrix in pixels.
    * Distortion is the OpenCV 5-vector ``(k1, k2, p1, p2, k3)`` applied to normalized image coordinates.
    * Quaternions are in scipy / roma order ``(x, y, z, w)``; function names say so.

Axis vocabulary for shapes: T frames, V views, P persons, J joints, N points.
"""

from core.geometry.alignment import apply_sim3, umeyama_sim3
from core.geometry.camera import (
    camera_centers,
    distort_normalized,
    pixel_rays,
    project_points,
    undistort_normalized,
    undistort_pixels,
    world_to_camera,
)
from core.geometry.rotations import average_quaternions_xyzw
from core.geometry.triangulation import (
    line_distances,
    point_ray_distances,
    triangulate_pixels,
    triangulate_rays,
    triangulate_rays_robust,
)

__all__ = [
    "apply_sim3",
    "average_quaternions_xyzw",
    "camera_centers",
    "distort_normalized",
    "line_distances",
    "pixel_rays",
    "point_ray_distances",
    "project_points",
    "triangulate_pixels",
    "triangulate_rays",
    "triangulate_rays_robust",
    "umeyama_sim3",
    "undistort_normalized",
    "undistort_pixels",
    "world_to_camera",
]
