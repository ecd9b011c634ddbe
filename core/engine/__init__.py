"""The paper's optimisation-free test-time stages, one module each, in the order they run:

``tracking`` (per view: detections → tracklets), ``association`` (across views: tracklets → persons),
``world_tracking`` (persons followed in the world frame by frame, tracklets cut where their person
changes; or ``refinement``: tracklets cut where they stop agreeing with their fused person),
``handedness`` (left/right labels agreed across views), ``fusion`` (view-invariant averages,
view-dependent triangulation), ``scale`` (head–pelvis ratio). ``pipeline`` wires them over
observations, ``video_pipeline`` over clips (ingest, perception, bodies, floor); ``editing`` and
``refusion`` are an annotator's identity edits and what they re-run; ``timing`` times every stage.

Import the stage modules themselves (``from core.engine.fusion import fuse``): this package re-exports
nothing, so that importing one stage does not import the whole engine.
"""
