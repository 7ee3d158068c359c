"""Unit tests of chairgen.datasets.common: features, PNG validation, masks, crops, archives."""

import io
import os
import sys
import tarfile
import time

import numpy as np
import PIL.Image
import pytest

from chairgen.datasets import common


def png_bytes(array, **kwargs) -> bytes:
  buf = io.BytesIO()
  PIL.Image.fromarray(array).save(buf, format="PNG", **kwargs)
  return buf.getvalue()


# -- features -------------------------------------------------------------------------------


def test_features_match_the_design_table():
  f = common.features(32)
  assert set(f.keys()) == {"image", "mask", "model_index", "model_name", "class", "azimuth",
                           "elevation", "view_index", "keypoints", "keypoints_visible"}
  assert f["image"].shape == (32, 32, 3) and f["image"].np_dtype == np.uint8
  assert f["mask"].shape == (32, 32, 1) and f["mask"].np_dtype == np.uint8
  assert f["model_index"].np_dtype == np.int64 and f["view_index"].np_dtype == np.int64
  assert f["azimuth"].np_dtype == np.float32 and f["elevation"].np_dtype == np.float32
  assert f["class"].names == ["chair", "table", "car"]
  assert f["keypoints"].shape == (None, 2) and f["keypoints"].np_dtype == np.float32
  assert f["keypoints_visible"].shape == (None,) and f["keypoints_visible"].np_dtype == np.bool_


def test_make_example_encodes_pngs_that_decode_to_the_input():
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
  mask = rng.random((8, 8)) > 0.5
  ex = common.make_example(image=image, mask=mask, model_index=3, model_name="m",
                           class_name="car", azimuth=10.0, elevation=20.0, view_index=5)
  np.testing.assert_array_equal(np.asarray(PIL.Image.open(io.BytesIO(ex["image"]))), image)
  np.testing.assert_array_equal(np.asarray(PIL.Image.open(io.BytesIO(ex["mask"]))), mask)
  assert ex["keypoints"].shape == (0, 2) and ex["keypoints_visible"].shape == (0,)
  with pytest.raises(ValueError, match="uint8"):
    common.make_example(image=image.astype(np.float32), mask=mask, model_index=0,
                        model_name="m", class_name="car", azimuth=0, elevation=0, view_index=0)


# -- PNG validation -------------------------------------------------------------------------


@pytest.fixture
def good_png(tmp_path):
  array = np.full((40, 40, 3), 255, np.uint8)
  array[10:30, 5:25] = (10, 200, 30)
  path = tmp_path / "good.png"
  path.write_bytes(png_bytes(array))
  return path, array


def test_read_png_decodes_a_good_file(good_png):
  path, array = good_png
  rgb, alpha = common.rgb_and_alpha(common.read_png(path, "fix it"))
  np.testing.assert_array_equal(rgb, array)
  assert alpha is None


@pytest.mark.parametrize("damage", ["truncated", "not_png", "bad_crc", "empty"])
def test_read_png_names_the_file_and_the_fix(good_png, damage):
  path, _ = good_png
  data = path.read_bytes()
  if damage == "truncated":
    data = data[:len(data) // 2]
  elif damage == "not_png":
    data = b"<html>404 Not Found</html>"
  elif damage == "bad_crc":  # Flip one byte inside the IDAT chunk's data.
    i = data.index(b"IDAT") + 8
    data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
  else:
    data = b""
  path.write_bytes(data)
  with pytest.raises(common.DatasetInputError) as e:
    common.read_png(path, "re-extract the archive")
  assert str(path) in str(e.value) and "Fix: re-extract the archive" in str(e.value)


def test_rgba_is_composited_on_white():
  rgba = np.zeros((2, 2, 4), np.uint8)
  rgba[..., :3] = (0, 100, 200)
  rgba[..., 3] = [[0, 255], [128, 255]]
  rgb, alpha = common.rgb_and_alpha(PIL.Image.fromarray(rgba, "RGBA"))
  out = common.composite_on_white(rgb, alpha)
  np.testing.assert_array_equal(out[0, 0], (255, 255, 255))
  np.testing.assert_array_equal(out[0, 1], (0, 100, 200))
  a = 128 / 255
  np.testing.assert_array_equal(out[1, 0], np.round(np.array([0, 100, 200]) * a + 255 * (1 - a)))


# -- masks, boxes and crops ------------------------------------------------------------------


def test_foreground_threshold_is_on_the_largest_channel_difference():
  rgb = np.full((1, 4, 3), 255, np.uint8)
  rgb[0, 1] = (245, 255, 255)  # difference 10: not above the threshold
  rgb[0, 2] = (255, 244, 255)  # difference 11
  rgb[0, 3] = (0, 0, 0)
  np.testing.assert_array_equal(common.foreground(rgb, 10)[0], [False, False, True, True])


def test_bounding_and_union_boxes():
  mask = np.zeros((10, 12), bool)
  mask[2:5, 3:9] = True
  assert common.bounding_box(mask) == common.Box(2, 3, 5, 9)
  assert common.bounding_box(np.zeros((3, 3), bool)) is None
  assert common.union_box([common.Box(2, 3, 5, 9), None, common.Box(0, 5, 4, 11)]) == (
      common.Box(0, 3, 5, 11))
  assert common.union_box([None]) is None


def test_square_box_centres_the_short_side_and_adds_the_border():
  # 116 rows x 80 columns: side 116, border round(0.05 * 116) = 6, 36 extra columns split 18/18.
  box = common.square_box(common.Box(30, 50, 146, 130), 0.05)
  assert box == common.Box(24, 26, 152, 154) and box.height == box.width == 128
  # An odd remainder goes to the bottom/right.
  assert common.square_box(common.Box(0, 0, 4, 1), 0.0) == common.Box(0, -1, 4, 3)


def test_crop_square_pads_outside_the_image():
  image = np.arange(16, dtype=np.uint8).reshape(4, 4)
  out = common.crop_square(image, common.Box(-1, 2, 3, 6), fill=255)
  expected = np.array([[255, 255, 255, 255], [2, 3, 255, 255], [6, 7, 255, 255],
                       [10, 11, 255, 255]], np.uint8)
  np.testing.assert_array_equal(out, expected)


def test_crop_resize_is_exact_for_integer_factors():
  rgb = np.full((12, 12, 3), 255, np.uint8)
  rgb[2:6, 4:8] = (0, 50, 100)
  fg = common.foreground(rgb, 10)
  image, mask = common.crop_resize(rgb, fg, common.Box(0, 0, 12, 12), 6)
  expected_mask = np.zeros((6, 6), bool)
  expected_mask[1:3, 2:4] = True
  np.testing.assert_array_equal(mask, expected_mask)
  np.testing.assert_array_equal(image[expected_mask], np.tile([0, 50, 100], (4, 1)))
  assert np.all(image[~expected_mask] == 255)


def test_resize_mask_keeps_pixels_at_least_half_covered():
  cov = np.zeros((4, 4), np.float32)
  cov[0, 0] = 1.0                 # 1/4 of output pixel (0, 0): dropped
  cov[2:4, 2] = 1.0               # 2/4 of output pixel (1, 1): kept
  np.testing.assert_array_equal(common.resize_mask(cov, 2), [[False, False], [False, True]])
  # Enlarging keeps the shape.
  big = common.resize_mask(np.eye(2, dtype=bool), 8)
  assert big.shape == (8, 8) and big[0, 0] and big[7, 7] and not big[0, 7]


# -- archives ------------------------------------------------------------------------------------


def make_tar(path, members):
  """members: list of (TarInfo, bytes or None)."""
  with tarfile.open(path, "w") as tar:
    for info, data in members:
      if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
      else:
        tar.addfile(info)


def file_info(name):
  return tarfile.TarInfo(name)


def link_info(name, target, kind=tarfile.SYMTYPE):
  info = tarfile.TarInfo(name)
  info.type = kind
  info.linkname = target
  return info


def test_safe_extract_tar_extracts_and_reuses(tmp_path):
  tar = tmp_path / "a.tar"
  make_tar(tar, [(file_info("root/x/y.txt"), b"hello"),
                 (link_info("root/x/z.txt", "y.txt"), None)])
  out = common.safe_extract_tar(tar, tmp_path / "out")
  assert (out / "root/x/y.txt").read_text() == "hello"
  assert (out / "root/x/z.txt").read_text() == "hello"
  assert not [p for p in os.listdir(tmp_path) if "incomplete" in p]
  os.remove(tar)  # A complete extraction is reused without reading the archive.
  assert common.safe_extract_tar(tar, tmp_path / "out") == out


@pytest.mark.parametrize("member, problem", [
    ((file_info("/etc/evil"), b"x"), "absolute path"),
    ((file_info("root/../../evil"), b"x"), "'..'"),
    ((link_info("root/link", "../../etc/passwd"), None), "links outside"),
    ((link_info("root/link", "/etc/passwd"), None), "links outside"),
    ((link_info("root/hard", "../outside", tarfile.LNKTYPE), None), "links outside"),
])
def test_safe_extract_tar_refuses_path_traversal(tmp_path, member, problem):
  tar = tmp_path / "evil.tar"
  make_tar(tar, [(file_info("root/ok.txt"), b"ok"), member])
  with pytest.raises(common.DatasetInputError, match=problem) as e:
    common.safe_extract_tar(tar, tmp_path / "out")
  assert str(tar) in str(e.value)
  assert not (tmp_path / "out").exists() and not (tmp_path / "evil").exists()
  assert [p for p in os.listdir(tmp_path) if p != "evil.tar"] == []


def test_safe_extract_tar_reports_a_truncated_archive(tmp_path):
  tar = tmp_path / "t.tar"
  make_tar(tar, [(file_info("root/big.bin"), bytes(100_000))])
  tar.write_bytes(tar.read_bytes()[:20_000])
  with pytest.raises(common.DatasetInputError, match="cannot extract"):
    common.safe_extract_tar(tar, tmp_path / "out")
  assert sorted(os.listdir(tmp_path)) == ["t.tar"]


# -- ordered_map -----------------------------------------------------------------------------


def test_ordered_map_keeps_order_and_raises():
  def slow_square(x):
    time.sleep(0.002 * ((7 * x) % 5))
    return x * x

  assert list(common.ordered_map(slow_square, list(range(20)), 4)) == [x * x for x in range(20)]
  assert list(common.ordered_map(slow_square, [3], 4)) == [9]

  def fail_on_3(x):
    if x == 3:
      raise ValueError("three")
    return x

  it = common.ordered_map(fail_on_3, list(range(10)), 2)
  assert [next(it) for _ in range(3)] == [0, 1, 2]
  with pytest.raises(ValueError, match="three"):
    next(it)


def test_common_does_not_import_tensorflow():
  assert "tensorflow" not in sys.modules
