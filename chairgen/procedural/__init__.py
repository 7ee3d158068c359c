"""Procedural chairs, tables and cars, their renderer and the upstream turntable layouts.

    obj = make_object("chairs", index=7, seed=0)
    view = Renderer(image_size=64).render(obj, azimuth_deg=30.0, elevation_deg=20.0)
"""

from chairgen.procedural.camera import CAMERA_DISTANCE, FIELD_OF_VIEW_DEG
from chairgen.procedural.objects import FAMILIES, ProceduralObject, make_object, object_name
from chairgen.procedural.renderer import KEYPOINT_DEPTH_TOLERANCE, Renderer, View

# Aubry et al.'s chairs: 31 azimuths int(i * 360 / 31) (no 360) x elevations 20 and 30.
AUBRY_AZIMUTHS = tuple(int(i * 360 / 31) for i in range(31))
AUBRY_ELEVATIONS = (20, 30)
AUBRY_DISTANCE_TAG = 96  # The `r096` of the file names; our distance is CAMERA_DISTANCE.
# The paper's ShapeNet turntables (3D-R2N2 layout): 36 azimuths x 5 elevations = 180 views.
R2N2_AZIMUTHS = tuple(range(0, 360, 10))
R2N2_ELEVATIONS = tuple(range(0, 50, 10))
R2N2_EXTRA_ELEVATIONS = tuple(range(50, 100, 10))  # Ground truth for extrapolation (sec. 5.3).
SYNSETS = {"chairs": "03001627", "tables": "04379243", "cars": "02958343"}

__all__ = [
    "AUBRY_AZIMUTHS", "AUBRY_DISTANCE_TAG", "AUBRY_ELEVATIONS", "CAMERA_DISTANCE", "FAMILIES",
    "FIELD_OF_VIEW_DEG", "KEYPOINT_DEPTH_TOLERANCE", "ProceduralObject", "R2N2_AZIMUTHS",
    "R2N2_ELEVATIONS", "R2N2_EXTRA_ELEVATIONS", "Renderer", "SYNSETS", "View", "make_object",
    "object_name",
]
