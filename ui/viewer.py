"""The Viser 3D viewer of one session: cameras, scene points, per-person meshes, and identity correction.

Every mesh is posed for every frame once (a person's frames in one batched body-model call), so that
scrubbing only swaps vertex arrays of existing scene nodes: nothing is rebuilt on a frame change. An
identity edit re-fuses the persons it touched (``studio.session.Session``), re-poses the frames of
those persons whose pose changed only, and replaces their nodes. The camera frustums show the clips'
thumbnails at the current frame, decoded around it into a bounded cache once a browser is connected
(``studio.thumbnails``), so that the viewer's memory does not grow with the clip's length.

Cameras estimated from the people (``calibration.source == "people"``) of a rig that also has a
calibration file can be overlaid with the file's cameras (orange), carried into the estimated world by the
Sim(3) of their centres (``core.cameras.alignment``).

GUI: frame slider, play/pause and speed; layer toggles and point size; a view selector that moves the
client's camera to a camera's viewpoint; the selected person (click a mesh, or pick it) with the pieces
(view, tracklet, frame span) that feed it, and the edits: reassign a piece, split it at the current
frame, merge two persons, swap two persons from the current frame on; undo and redo.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import viser
from scipy.spatial.transform import Rotation

from core.cameras.alignment import carried_into
from core.engine.editing import EditError, IdentityEdit, Merge, Reassign, Split, Swap
from core.engine.refusion import take_frames
from core.reconstruction import Reconstruction
from core.types import PersonTrack
from studio.export import person_vertices
from studio.inspection import identity_color, skeleton_bones
from studio.session import Session
from studio.thumbnails import ThumbnailCache

_NEW_PERSON = "new person"
_FRUSTUM_IMAGE_WIDTH = 320


def _camera_pose(camera) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """Viser's (wxyz, position, vertical field of view) of an OpenCV camera (world-from-camera)."""
    x, y, z, w = Rotation.from_matrix(camera.R.T).as_quat()
    position = tuple(float(c) for c in -camera.R.T @ camera.t)
    return (w, x, y, z), position, float(2 * np.arctan2(camera.height / 2, camera.K[1, 1]))


def _skeleton_segments(person: PersonTrack) -> np.ndarray:
    """(F, B, 2, 3) bone segments of every frame; non-finite bones collapsed to the pelvis."""
    bones = np.array(skeleton_bones(person.joint_names), dtype=np.int64).reshape(-1, 2)
    segments = person.joints[:, bones].astype(np.float32)
    bad = ~np.isfinite(segments).all(axis=(2, 3))
    return np.where(bad[..., None, None], person.transl[:, None, None].astype(np.float32), segments)


def _posed(body, person: PersonTrack, previous: _PersonNodes | None) -> np.ndarray:
    """(F, N, 3) float32 mesh vertices of every frame of ``person``; the frames whose pose and shape
    are those of ``previous`` (the person before an edit, which changes a few frames) are copied."""
    old = previous.person if previous is not None and previous.vertices is not None else None
    if old is None or old.shape_model != person.shape_model or not np.array_equal(old.shape, person.shape):
        return person_vertices(body, person).astype(np.float32)
    at = np.searchsorted(old.frames, person.frames).clip(max=len(old.frames) - 1)
    same = (
        (old.frames[at] == person.frames)
        & (old.global_orient[at] == person.global_orient).all(axis=1)
        & (old.transl[at] == person.transl).all(axis=1)
        & (old.body_pose[at] == person.body_pose).all(axis=(1, 2))
    )
    vertices = np.empty((len(person.frames), *previous.vertices.shape[1:]), dtype=np.float32)
    vertices[same] = previous.vertices[at[same]]
    if not same.all():
        vertices[~same] = person_vertices(body, take_frames(person, ~same))
    return vertices


@dataclass
class _PersonNodes:
    person: PersonTrack
    vertices: np.ndarray | None
    skeleton: np.ndarray
    mesh: viser.MeshHandle | None
    bones: viser.LineSegmentsHandle

    def hide(self) -> None:
        self.bones.visible = False
        if self.mesh is not None:
            self.mesh.visible = False

    def remove(self) -> None:
        self.bones.remove()
        if self.mesh is not None:
            self.mesh.remove()


class SessionViewer:
    """A Viser server showing one session; every browser connected to it sees the same scene.

    With ``compare``, another run of the same scene is shown too: its persons as wireframes in their
    identity colours, scrubbed with the first (edits apply to the first session only).
    """

    def __init__(
        self, session: Session, host: str = "127.0.0.1", port: int = 8080, compare: Session | None = None
    ) -> None:
        self.session = session
        self._compare = compare
        self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.server.scene.set_up_direction("+z")
        self._lock = threading.RLock()
        self._nodes: dict[int, _PersonNodes] = {}
        self._frame = 0
        self._selected: int | None = None
        self._thumbnails: ThumbnailCache | None = None
        self._build_static()
        self._build_gui()
        self._rebuild_persons(None)
        self._compared: dict[int, _PersonNodes] = {}
        if compare is not None:
            body = compare.body_model(compare.current)
            for person in compare.current.persons:
                self._compared[person.person_id] = self._add_person(person, body, "/compared", wireframe=True)
        self._refresh_panel()
        self.show_frame(self._slider.value)
        self._playing, self._stopped = threading.Event(), threading.Event()
        threading.Thread(target=self._play_loop, daemon=True).start()
        self.server.on_client_connect(lambda _: self.show_frame(self._frame))  # its first images

    @property
    def url(self) -> str:
        return f"http://{self.server.get_host()}:{self.server.get_port()}"

    @property
    def reconstruction(self) -> Reconstruction:
        return self.session.current

    def stop(self) -> None:
        self._stopped.set()
        self._playing.set()  # wakes the play loop, which ends (and no longer holds the viewer)
        if self._thumbnails is not None:
            self._thumbnails.close()
        self.server.stop()

    # scene ---------------------------------------------------------------------------------------

    def _build_static(self) -> None:
        rec = self.reconstruction
        scene = self.server.scene
        self._frustums = []
        for v, camera in enumerate(rec.cameras.cameras):
            wxyz, position, fov = _camera_pose(camera)
            frustum = scene.add_camera_frustum(
                f"/cameras/{camera.name}",
                fov=fov,
                aspect=camera.width / camera.height,
                scale=0.3,
                color=(60, 60, 60),
                wxyz=wxyz,
                position=position,
            )
            frustum.on_click(lambda event, v=v: self._go_to_view(event.client, v))
            self._frustums.append(frustum)
        self._calibrated = []
        reference = (
            None if rec.reference_cameras is None else carried_into(rec.reference_cameras, rec.cameras)
        )
        for camera in reference.cameras if reference is not None else ():
            wxyz, position, fov = _camera_pose(camera)
            self._calibrated.append(
                scene.add_camera_frustum(
                    f"/calibrated/{camera.name}",
                    fov=fov,
                    aspect=camera.width / camera.height,
                    scale=0.3,
                    color=(230, 120, 20),
                    wxyz=wxyz,
                    position=position,
                    visible=False,
                )
            )
        points = rec.points if len(rec.points) else np.zeros((0, 3))
        self._points = scene.add_point_cloud(
            "/points", points.astype(np.float32), rec.point_colors, point_size=0.02, point_shape="rounded"
        )
        scene.add_grid("/grid", width=10, height=10, visible=len(rec.points) == 0)

    def _rebuild_persons(self, affected: frozenset[int] | None) -> None:
        """(Re)create the nodes of ``affected`` persons (all if None) and drop persons gone."""
        rec = self.reconstruction
        body = self.session.body_model(rec)
        alive = {p.person_id: p for p in rec.persons}
        previous = {}
        for pid in list(self._nodes):
            if pid not in alive or affected is None or pid in affected:
                previous[pid] = self._nodes.pop(pid)
                previous[pid].remove()
        for pid, person in alive.items():
            if pid not in self._nodes:
                self._nodes[pid] = self._add_person(person, body, "/persons", False, previous.get(pid))
                if self._nodes[pid].mesh is not None:
                    self._nodes[pid].mesh.on_click(lambda _, pid=pid: self.select(pid))
        if self._selected not in alive:
            self._selected = min(alive) if alive else None

    def _add_person(
        self, person: PersonTrack, body, prefix: str, wireframe: bool, previous: _PersonNodes | None = None
    ) -> _PersonNodes:
        """A person's mesh (every frame posed now, or taken from ``previous`` where the pose is the
        same) and skeleton, hidden until ``show_frame``."""
        color = identity_color(person.person_id)
        name = f"{prefix}/{person.person_id}"
        vertices, mesh = None, None
        if body is not None and person.shape_model == body.name:
            vertices = _posed(body, person, previous)
            faces = body.faces.astype(np.uint32)
            mesh = self.server.scene.add_mesh_simple(
                f"{name}/mesh", vertices[0], faces, color=color, wireframe=wireframe, visible=False
            )
        skeleton = _skeleton_segments(person)
        bones = self.server.scene.add_line_segments(
            f"{name}/skeleton", skeleton[0], color, thickness=0.015, visible=False
        )
        return _PersonNodes(person, vertices, skeleton, mesh, bones)

    def show_frame(self, frame: int) -> None:
        """Swap every person's vertices to ``frame`` (no node is created or removed)."""
        with self._lock:
            self._frame = int(frame)
            show_mesh, show_bones = self._layers["meshes"].value, self._layers["skeletons"].value
            compared = self._compared.values() if self._compare and self._layers["compared run"].value else ()
            for nodes in self._compared.values():
                nodes.hide()
            for nodes in (*self._nodes.values(), *compared):
                row = np.searchsorted(nodes.person.frames, frame)
                present = row < len(nodes.person.frames) and nodes.person.frames[row] == frame
                if nodes.mesh is not None:
                    if present:
                        nodes.mesh.vertices = nodes.vertices[row]
                    nodes.mesh.visible = bool(present and show_mesh)
                if present:
                    nodes.bones.points = nodes.skeleton[row]
                nodes.bones.visible = bool(present and (show_bones or nodes.mesh is None))
            if self._layers["images"].value:
                self._update_images()

    def _update_images(self) -> None:
        """Each frustum shows its clip at the current frame once decoded (nothing is decoded while no
        browser is connected)."""
        if not self.server.get_clients():
            return
        if self._thumbnails is None:
            self._thumbnails = ThumbnailCache(self.reconstruction, _FRUSTUM_IMAGE_WIDTH, self._on_decoded)
        images = self._thumbnails.get(self._frame)
        if images is not None:
            for frustum, image in zip(self._frustums, images, strict=True):
                frustum.image = image

    def _on_decoded(self, start: int, stop: int) -> None:
        with self._lock:
            if start <= self._frame < stop and self._layers["images"].value:
                self._update_images()

    def _go_to_view(self, client: viser.ClientHandle, view: int) -> None:
        wxyz, position, fov = _camera_pose(self.reconstruction.cameras.cameras[view])
        with client.atomic():
            client.camera.wxyz = wxyz
            client.camera.position = position
            client.camera.fov = fov

    # GUI -----------------------------------------------------------------------------------------

    def _build_gui(self) -> None:
        gui = self.server.gui
        rec = self.reconstruction
        with gui.add_folder("Playback"):
            self._slider = gui.add_slider(
                "Frame", min=0, max=max(rec.num_frames - 1, 1), step=1, initial_value=rec.num_frames // 2
            )
            self._play = gui.add_checkbox("Play", initial_value=False)
            self._speed = gui.add_slider("Speed", min=0.1, max=4.0, step=0.1, initial_value=1.0)
        with gui.add_folder("Layers"):
            self._layers = {
                name: gui.add_checkbox(name.capitalize(), initial_value=default)
                for name, default in (
                    ("meshes", True),
                    ("skeletons", False),
                    ("points", True),
                    ("cameras", True),
                    ("images", True),
                    *((("compared run", True),) if self._compare is not None else ()),
                    *((("calibrated cameras", False),) if self._calibrated else ()),
                )
            }
            self._point_size = gui.add_slider(
                "Point size", min=0.002, max=0.1, step=0.002, initial_value=0.02
            )
            self._view = gui.add_dropdown("View", ("free", *rec.cameras.names), initial_value="free")
        with gui.add_folder("Identity"):
            self._person = gui.add_dropdown("Person", ("none",), initial_value="none")
            self._pieces_text = gui.add_markdown("")
            self._piece = gui.add_dropdown("Piece", ("none",), initial_value="none")
            self._target = gui.add_dropdown("Target", (_NEW_PERSON,), initial_value=_NEW_PERSON)
            self._reassign = gui.add_button("Reassign piece to target")
            self._split = gui.add_button("Split piece at frame")
            self._merge = gui.add_button("Merge person into target")
            self._swap = gui.add_button("Swap with target from frame")
            self._undo = gui.add_button("Undo")
            self._redo = gui.add_button("Redo")
            self._status = gui.add_markdown("")

        self._slider.on_update(lambda _: self.show_frame(self._slider.value))
        self._play.on_update(lambda _: self._playing.set() if self._play.value else self._playing.clear())
        for checkbox in self._layers.values():
            checkbox.on_update(lambda _: self._apply_layers())
        self._point_size.on_update(lambda _: setattr(self._points, "point_size", self._point_size.value))
        self._view.on_update(self._on_view)
        self._person.on_update(
            lambda _: self._person.value != "none" and self.select(int(self._person.value))
        )
        self._reassign.on_click(lambda _: self._edit_piece("reassign"))
        self._split.on_click(lambda _: self._edit_piece("split"))
        self._merge.on_click(lambda _: self._edit_persons("merge"))
        self._swap.on_click(lambda _: self._edit_persons("swap"))
        self._undo.on_click(lambda _: self.undo())
        self._redo.on_click(lambda _: self.redo())

    def _apply_layers(self) -> None:
        self._points.visible = self._layers["points"].value
        for frustum in self._frustums:
            frustum.visible = self._layers["cameras"].value
            if not self._layers["images"].value:
                frustum.image = None
        for frustum in self._calibrated:
            frustum.visible = self._layers["calibrated cameras"].value
        self.show_frame(self._frame)

    def _on_view(self, event: viser.GuiEvent) -> None:
        if self._view.value != "free" and event.client is not None:
            self._go_to_view(event.client, self.reconstruction.cameras.names.index(self._view.value))

    def _play_loop(self) -> None:
        while True:
            self._playing.wait()
            if self._stopped.is_set():
                return
            fps = self.reconstruction.fps * self._speed.value
            time.sleep(1.0 / max(fps, 1e-3))
            if self._playing.is_set():
                self._slider.value = (self._frame + 1) % max(self.reconstruction.num_frames, 1)

    # identity correction -------------------------------------------------------------------------

    def pieces(self, person_id: int) -> list[int]:
        """Rows of the assignment feeding ``person_id``, by view then first frame."""
        a = self.reconstruction.assignment
        rows = np.flatnonzero(a.person == person_id)
        return rows[np.lexsort((a.frame_start[rows], a.view[rows]))].tolist()

    def select(self, person_id: int) -> None:
        """Make ``person_id`` the selected person and list its pieces."""
        with self._lock:
            self._selected = person_id
            self._refresh_panel()

    def _refresh_panel(self) -> None:
        rec = self.reconstruction
        ids = [str(p.person_id) for p in rec.persons]
        self._person.options = tuple(ids) or ("none",)
        self._person.value = str(self._selected) if self._selected is not None else self._person.options[0]
        others = [i for i in ids if i != self._person.value]
        self._target.options = (_NEW_PERSON, *others)
        self._target.value = others[0] if others else _NEW_PERSON
        a, names = rec.assignment, rec.cameras.names
        rows = self.pieces(self._selected) if self._selected is not None else []
        labels = [
            f"{r}: {names[a.view[r]]} t{a.tracklet[r]} {a.frame_start[r]}-{a.frame_end[r]}" for r in rows
        ]
        self._piece.options = tuple(labels) or ("none",)
        self._piece.value = self._piece.options[0]
        person = next((p for p in rec.persons if p.person_id == self._selected), None)
        residual = np.nanmean(person.residuals_px) if person is not None else float("nan")
        self._pieces_text.content = (
            f"**Person {self._selected}**: {len(rows)} pieces, "
            f"{0 if person is None else len(person.frames)} frames, reprojection {residual:.1f} px"
        )
        for nodes in self._nodes.values():
            if nodes.mesh is not None:
                nodes.mesh.opacity = None if nodes.person.person_id == self._selected else 0.6

    def edit(self, edit: IdentityEdit) -> str:
        """Apply ``edit`` to the session and update the scene; the status line shown."""
        return self._run(lambda: self.session.edit(edit), edit.kind)

    def undo(self) -> str:
        return self._run(self.session.undo, "undone")

    def redo(self) -> str:
        return self._run(self.session.redo, "redone")

    def _target_person(self) -> int | None:
        return None if self._target.value == _NEW_PERSON else int(self._target.value)

    def _edit_piece(self, kind: str) -> None:
        if self._piece.value == "none":
            self._status.content = "no piece selected"
            return
        piece = int(self._piece.value.split(":")[0])
        if kind == "reassign":
            edit = Reassign(piece, self._target_person())
        else:
            edit = Split(piece, self._frame)
        self.edit(edit)

    def _edit_persons(self, kind: str) -> None:
        target = self._target_person()
        if self._selected is None or target is None:
            self._status.content = f"{kind}: pick a person and another person as the target"
            return
        edit = Merge(self._selected, target) if kind == "merge" else Swap(self._selected, target, self._frame)
        self._run(lambda: self.session.edit(edit), kind)

    def _run(self, action, verb: str) -> str:
        """Apply an edit (or undo/redo), re-pose the touched persons, report how long it took."""
        with self._lock:
            start = time.perf_counter()
            try:
                affected = action()
            except EditError as error:
                self._status.content = f"not done: {error}"
                return self._status.content
            self._rebuild_persons(affected)
            self._refresh_panel()
            self.show_frame(self._frame)
            seconds = time.perf_counter() - start
            touched = ", ".join(map(str, sorted(affected))) or "nothing"
            self._status.content = f"{verb}: persons {touched} updated in {seconds:.2f} s (saved)"
            return self._status.content
