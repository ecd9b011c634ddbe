"""The camera stage: where a reconstruction's cameras come from.

``config`` (the source: a calibration file, the people, Pi3X; the user's hints), ``report`` (per camera:
focal length, reprojection error, inliers, placed or why not), and self-calibration from the people:
``pairs`` (which tracklet of one view is which of another, each view pair's epipolar geometry),
``people`` (focal lengths, placing the views, the rounds of adjustment), ``bundle`` (the sparse bundle
adjustment), ``world`` (metric scale, z up, the floor at z = 0). Import the modules themselves.
"""
