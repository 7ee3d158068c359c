"""The renderer in a child interpreter, for processes that have imported TensorFlow.

TensorFlow and Mesa's llvmpipe cannot draw in one process: after `import tensorflow`, the first
draw call segfaults (seen with tensorflow-cpu 2.21 and Mesa's llvmpipe on LLVM 15, for a single
triangle, whichever was loaded first; both carry LLVM). A TensorFlow user who builds
`procedural_turntables` through `tfds.load` has TensorFlow loaded, so the builder renders
through `open_renderer`, which starts a fresh interpreter (`python -c` importing this module,
never the caller's `__main__`, which may import TensorFlow itself) holding one `Renderer`; views come back pickled over a pipe and are
identical to in-process ones. Without TensorFlow loaded, `open_renderer` gives the ordinary
in-process `Renderer`.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import struct
import subprocess
import sys
import traceback
from collections.abc import Sequence
from typing import Any, BinaryIO

from chairgen.procedural.objects import ProceduralObject
from chairgen.procedural.renderer import Renderer, View

_HEADER = struct.Struct("<Q")


def _send(stream: BinaryIO, message: Any) -> None:
  data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
  stream.write(_HEADER.pack(len(data)) + data)
  stream.flush()


def _receive(stream: BinaryIO) -> Any:
  header = stream.read(_HEADER.size)
  if len(header) < _HEADER.size:
    raise EOFError("render process closed its pipe")
  (size,) = _HEADER.unpack(header)
  return pickle.loads(stream.read(size))


class RendererProcess:
  """`Renderer.render_views` and `render`, run by a child interpreter with its own GL context."""

  def __init__(self, image_size: int):
    self.image_size = int(image_size)
    self._child = subprocess.Popen(
        [sys.executable, "-c", "from chairgen.procedural import render_process as m; "
         f"m._serve({self.image_size})"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    self._call("ping")

  def _call(self, *request: Any) -> Any:
    if self._child.poll() is not None:
      raise RuntimeError(f"the render process exited with code {self._child.returncode}")
    try:
      _send(self._child.stdin, request)
      status, value = _receive(self._child.stdout)
    except (EOFError, BrokenPipeError) as e:
      raise RuntimeError(f"the render process died (exit code {self._child.wait()}); its "
                         "error is printed above") from e
    if status == "error":
      raise RuntimeError(f"in the render process:\n{value}")
    return value

  def render_views(self, obj: ProceduralObject,
                   angles: Sequence[tuple[float, float]]) -> list[View]:
    return self._call("render_views", obj, [tuple(map(float, a)) for a in angles])

  def render(self, obj: ProceduralObject, azimuth_deg: float, elevation_deg: float) -> View:
    return self.render_views(obj, [(azimuth_deg, elevation_deg)])[0]

  def release(self) -> None:
    if self._child.poll() is None:
      self._child.stdin.close()
      self._child.wait()


def open_renderer(image_size: int) -> Renderer | RendererProcess:
  """A `Renderer`, in this process unless TensorFlow is installed (module docstring)."""
  if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
    return RendererProcess(image_size)
  return Renderer(image_size)


def _serve(image_size: int) -> None:
  """Child side: answers requests on stdin until it closes; stdout carries only replies."""
  requests, replies = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb")
  os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # Stray prints cannot corrupt replies.
  renderer = Renderer(image_size)
  while True:
    try:
      request = _receive(requests)
    except EOFError:
      break
    try:
      method, *args = request
      value = None if method == "ping" else getattr(renderer, method)(*args)
      _send(replies, ("ok", value))
    except Exception:  # pylint: disable=broad-except
      _send(replies, ("error", traceback.format_exc()))
  renderer.release()
