"""Procedural chairs, tables and cars, their renderer and the upstream turntable layouts.

    obj = make_object("chairs", index=7, seed=0)
    view = Renderer(image_size=64).render(obj, azimuth_deg=30.0, elevation_deg=20.0)

See docs/data.md for the layouts, the keypoints file and the camera model.
"""

from chairgen.procedural.camera import CAMERA_DISTANCE, FIELD_OF_VIEW_DEG
from chairgen.procedural.objects import (FAMILIES, ProceduralObject, find_object, make_object,
                                         object_name)
from chairgen.procedural.render_process import RendererProcess, open_renderer
from chairgen.procedural.renderer import KEYPOINT_DEPTH_TOLERANCE, Renderer, View
from chairgen.procedural.turntables import (
    AUBRY_AZIMUTHS,  # 31 azimuths int(i * 360 / 31), no 360.
    AUBRY_DISTANCE_TAG,  # The `r096` of Aubry file names.
    AUBRY_ELEVATIONS,  # (20, 30).
    LAYOUTS,
    R2N2_AZIMUTHS,  # 0..350 step 10.
    R2N2_ELEVATIONS,  # 0..40 step 10: the paper's 180-view grid.
    R2N2_EXTRA_ELEVATIONS,  # 50..90 step 10: ground truth for extrapolation (section 5.3).
    SYNSETS,
    ViewSpec,
    render_turntable,
    views_for,
    write_aubry_names,
    write_model,
)

__all__ = [
    "AUBRY_AZIMUTHS", "AUBRY_DISTANCE_TAG", "AUBRY_ELEVATIONS", "CAMERA_DISTANCE", "FAMILIES",
    "FIELD_OF_VIEW_DEG", "KEYPOINT_DEPTH_TOLERANCE", "LAYOUTS", "ProceduralObject",
    "R2N2_AZIMUTHS", "R2N2_ELEVATIONS", "R2N2_EXTRA_ELEVATIONS", "Renderer", "RendererProcess",
    "SYNSETS", "View", "ViewSpec", "find_object", "make_object", "object_name", "open_renderer",
    "render_turntable", "views_for",
    "write_aubry_names", "write_model",
]
