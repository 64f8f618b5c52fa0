"""Frame sources: webcam, video file, network stream, image folder or glob, Python iterables.

Every source is an iterable of ``Frame`` (index, timestamp in seconds, BGR uint8 image of
shape (H, W, 3), ``captured_at`` from ``time.perf_counter()``) and a context manager.

Two kinds of sources behave differently on purpose:

* **File sources** (video file, image folder) never drop a frame. They decode in the thread
  that iterates them (in the pipeline, the "capture" stage thread), so the pipeline's
  backpressure slows decoding down instead of losing frames.
* **Live sources** (camera, network stream, ``IterableSource(live=True)``) run a grabber
  thread that always keeps only the newest frame: when the consumer is slower than the
  source, the oldest unread frame is dropped and counted in ``dropped``, so latency stays
  bounded.

A video that fails to decode part-way (corrupt or truncated data) yields every frame that
decoded and then raises ``SourceDecodeError`` (an ``InputError``) naming the file and the
number of good frames; the pipeline processes and writes those frames before reporting it.
A video whose container cannot be opened at all (e.g. an MP4 truncated before its index)
raises ``InputError`` from ``open_source``.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from simplepose.errors import InputError
from simplepose.types import Frame

_logger = logging.getLogger(__name__)

#: File name suffixes treated as images by ``ImageFolderSource`` (lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: URL schemes opened as live network streams.
STREAM_SCHEMES: tuple[str, ...] = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp", "srt")

_POLL_SECONDS = 0.1


class SourceDecodeError(InputError):
    """A video stopped decoding part-way; the frames before it were delivered."""


class Source:
    """Base class of every frame source.

    Attributes:
        name: what was opened (path, URL or camera index), for messages.
        live: ``True`` when the source keeps only the newest frame (camera, stream).
        fps: nominal frame rate in frames per second, or ``None`` when unknown.
        time_base: time base of the timestamps (video files: the stream's), or ``None``.
        num_frames: number of frames when known in advance (files), else ``None``.
        size: ``(width, height)`` of the frames when known in advance, else ``None``.
    """

    name: str = ""
    live: bool = False
    fps: float | None = None
    time_base: Fraction | None = None
    num_frames: int | None = None
    size: tuple[int, int] | None = None

    def __init__(self) -> None:
        self._closed = threading.Event()
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Frames lost because the consumer was slower than a live source (0 for files)."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed.is_set()

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; iteration ends within about 0.1 s. Idempotent."""
        self._closed.set()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, live={self.live}, fps={self.fps})"


class _LiveBuffer:
    """Holds the newest frame from a grabber thread; overwriting an unread frame drops it."""

    def __init__(self, owner: Source) -> None:
        self._owner = owner
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._ended = False
        self._error: BaseException | None = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self._owner._dropped += 1
            self._frame = frame
            self._cond.notify()

    def end(self, error: BaseException | None = None) -> None:
        with self._cond:
            self._ended = True
            self._error = error
            self._cond.notify()

    def frames(self) -> Iterator[Frame]:
        while not self._owner.closed:
            with self._cond:
                if self._frame is None and not self._ended:
                    self._cond.wait(_POLL_SECONDS)
                frame, self._frame = self._frame, None
                ended, error = self._ended, self._error
            if frame is not None:
                yield frame
            elif ended:
                if error is not None:
                    raise error
                return


class _LiveSource(Source):
    """A source whose ``_grab`` loop runs in a daemon thread feeding a ``_LiveBuffer``."""

    live = True

    def __init__(self) -> None:
        super().__init__()
        self._buffer = _LiveBuffer(self)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _grab(self) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
        """Yield (timestamp seconds, BGR image) until the source ends."""
        raise NotImplementedError
        yield  # pragma: no cover

    def _produce(self) -> Iterator[Frame]:
        """Yield numbered frames built from ``_grab``."""
        for index, (timestamp, image) in enumerate(self._grab()):
            yield Frame(index, timestamp, image, time.perf_counter())

    def _run(self) -> None:
        try:
            for frame in self._produce():
                if self.closed:
                    break
                self._buffer.put(frame)
        except BaseException as error:  # handed to the consumer, which re-raises it
            self._buffer.end(error)
        else:
            self._buffer.end()
        finally:
            self._release()

    def _release(self) -> None:
        """Free the device; called from the grabber thread when it ends."""

    def __iter__(self) -> Iterator[Frame]:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"simplepose-grab-{self.name}", daemon=True
                )
                self._thread.start()
        return self._buffer.frames()

    def close(self) -> None:
        super().close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        elif self._thread is None:
            self._release()


#: Frames larger than this are asked for in MJPG by default: uncompressed YUYV over USB 2
#: carries 640 x 480 at 30 FPS, while most UVC cameras deliver 720p / 1080p at 30 FPS
#: only as MJPG (and otherwise fall back, silently, to a few FPS or a smaller size).
MJPG_ABOVE_PIXELS = 640 * 480


def fourcc_text(code: float) -> str:
    """``cv2.CAP_PROP_FOURCC``'s number -> its four characters (``""`` when unknown)."""
    number = int(code)
    if number <= 0:
        return ""
    text = number.to_bytes(4, "little").decode("latin-1")
    return text if text.isprintable() else ""


class CameraSource(_LiveSource):
    """A webcam opened with OpenCV (``cv2.VideoCapture``).

    Timestamps are seconds of the capture clock since the first frame. Cameras silently
    fall back to what they can do, so the values they report after the request are kept in
    ``size``, ``fps`` and ``fourcc`` (and ``describe()`` says both).

    Args:
        index: camera index (``0`` is the first camera).
        size: ``(width, height)`` to ask for; ``None``: the camera's default.
        fps: frame rate to ask for; ``None``: the camera's default.
        fourcc: pixel format to ask for (``"MJPG"``, ``"YUYV"``, ...); ``None``: MJPG when
            ``size`` is larger than 640 x 480, else the camera's default.

    Raises:
        InputError: no camera with that index can be opened.
    """

    def __init__(
        self,
        index: int,
        *,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
    ) -> None:
        import cv2

        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise TypeError(f"camera index must be an int >= 0, got {index!r}")
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise ValueError(f"camera size must be (width, height) >= 1, got {size!r}")
        if fps is not None and not fps > 0:
            raise ValueError(f"camera fps must be > 0, got {fps!r}")
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"fourcc must have 4 characters, got {fourcc!r}")
        if fourcc is None and size is not None and size[0] * size[1] > MJPG_ABOVE_PIXELS:
            fourcc = "MJPG"
        self.requested_size = size
        self.requested_fps = fps
        self.requested_fourcc = fourcc
        super().__init__()
        self.name = str(index)
        # OpenCV logs its own warnings for a missing device; our error says it in one line.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._capture = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._capture.isOpened():
            self._capture.release()
            raise InputError(f"camera {index} is not available (no device or no permission)")
        # The pixel format first, then the size, then the rate: V4L2 drivers pick the rates
        # they offer per format and size.
        if fourcc is not None:
            self._capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc))
        if size is not None:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            self._capture.set(cv2.CAP_PROP_FPS, fps)
        self.fourcc = fourcc_text(self._capture.get(cv2.CAP_PROP_FOURCC))
        delivered_fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = delivered_fps if delivered_fps > 0 else None
        width = int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (width, height) if width > 0 and height > 0 else None
        self.time_base = Fraction(1, 1000)

    def describe(self) -> str:
        """What the camera delivers (and what was asked when it differs), in one line."""
        size = f"{self.size[0]}x{self.size[1]}" if self.size else "unknown size"
        fps = f"{self.fps:g} FPS" if self.fps else "unknown FPS"
        text = f"camera {self.name}: {size} at {fps}, {self.fourcc or 'unknown format'}"
        wanted = []
        size_asked, fps_asked = self.requested_size, self.requested_fps
        if size_asked is not None and tuple(size_asked) != self.size:
            wanted.append(f"{size_asked[0]}x{size_asked[1]}")
        if fps_asked is not None and (self.fps is None or abs(fps_asked - self.fps) > 0.5):
            wanted.append(f"{fps_asked:g} FPS")
        if self.requested_fourcc is not None and self.requested_fourcc != self.fourcc:
            wanted.append(self.requested_fourcc)
        if wanted:
            text += f" (asked for {', '.join(wanted)}; the camera fell back)"
        return text

    def _grab(self) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
        start: float | None = None
        while not self.closed:
            ok, image = self._capture.read()
            if not ok:
                _logger.warning("camera %s: no more frames", self.name)
                return
            now = time.perf_counter()
            start = now if start is None else start
            yield now - start, np.ascontiguousarray(image, dtype=np.uint8)

    def _release(self) -> None:
        self._capture.release()


def _open_container(
    spec: str, options: dict[str, str] | None = None, timeout: float | None = None
) -> Any:
    import av

    try:
        container = av.open(spec, options=options or {}, timeout=timeout)
    except av.FFmpegError as error:
        raise InputError(f"cannot open video {spec!r}: {_av_reason(error)}") from error
    if not container.streams.video:
        container.close()
        raise InputError(f"{spec!r} has no video stream")
    return container


def _av_reason(error: BaseException) -> str:
    # PyAV messages end with the file name that we already print; keep the reason only.
    return str(getattr(error, "strerror", None) or error)


class VideoFileSource(Source):
    """A video file decoded with PyAV; never drops a frame.

    Frames come in presentation order; ``timestamp`` is ``(pts - start_time) * time_base``
    in seconds (``index / fps`` when a frame has no pts). FFmpeg's own frame threads speed
    up decoding; the pipeline runs this iterator in its capture thread.

    Args:
        path: the video file.

    Raises:
        FileNotFoundError: (as ``InputError``) the file does not exist.
        InputError: the container cannot be opened or holds no video stream.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.name = str(path)
        if not Path(path).is_file():
            raise _missing(self.name)
        self._container = _open_container(self.name)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else None
        self.time_base = stream.time_base
        self.num_frames = int(stream.frames) or None
        width, height = stream.codec_context.width, stream.codec_context.height
        self.size = (int(width), int(height)) if width and height else None
        self._iterating = False

    def __iter__(self) -> Iterator[Frame]:
        import av

        if self._iterating:
            raise RuntimeError(f"{self.name!r} is already being read; open it again instead")
        self._iterating = True
        start = self._stream.start_time or 0
        time_base = self.time_base or Fraction(1, 1)
        index = 0
        try:
            for av_frame in self._container.decode(self._stream):
                if self.closed:
                    return
                image = av_frame.to_ndarray(format="bgr24")
                if av_frame.pts is not None:
                    timestamp = float((av_frame.pts - start) * time_base)
                else:
                    timestamp = index / self.fps if self.fps else 0.0
                yield Frame(index, timestamp, image, time.perf_counter())
                index += 1
        except av.FFmpegError as error:
            if self.closed:
                return
            raise SourceDecodeError(
                f"video {self.name!r} is corrupt or truncated: decoding stopped after "
                f"{index} good frames ({_av_reason(error)})"
            ) from error
        if self.num_frames is not None and index < self.num_frames and not self.closed:
            _logger.warning(
                "video %r: decoded %d of the %d frames its header announces (truncated?)",
                self.name,
                index,
                self.num_frames,
            )

    def close(self) -> None:
        super().close()
        self._container.close()


class StreamSource(_LiveSource):
    """A network stream (RTSP, RTMP, HTTP, UDP, ...) decoded with PyAV; keeps the newest frame.

    Timestamps come from the stream's time base when frames carry them, else from the
    capture clock.

    Args:
        url: the stream address.
        timeout: seconds to wait when opening and reading before giving up.

    Raises:
        InputError: the stream cannot be opened.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__()
        self.name = url
        options = {"rtsp_transport": "tcp"} if url.lower().startswith("rtsp") else {}
        self._container = _open_container(url, options, timeout=timeout)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.time_base = stream.time_base
        width, height = stream.codec_context.width, stream.codec_context.height
        self.size = (int(width), int(height)) if width and height else None

    def _grab(self) -> Iterator[tuple[float, npt.NDArray[np.uint8]]]:
        import av

        first_pts: int | None = None
        start = time.perf_counter()
        try:
            for av_frame in self._container.decode(self._stream):
                if self.closed:
                    return
                if av_frame.pts is not None and av_frame.time_base is not None:
                    first_pts = av_frame.pts if first_pts is None else first_pts
                    timestamp = float((av_frame.pts - first_pts) * av_frame.time_base)
                else:
                    timestamp = time.perf_counter() - start
                yield timestamp, av_frame.to_ndarray(format="bgr24")
        except av.FFmpegError as error:
            if not self.closed:
                raise SourceDecodeError(
                    f"stream {self.name!r} failed: {_av_reason(error)}"
                ) from error

    def _release(self) -> None:
        self._container.close()


class ImageFolderSource(Source):
    """Images from a folder (sorted by name) or a glob pattern, decoded with OpenCV.

    Timestamps are ``index / fps`` (``fps`` given) or 0. An image that cannot be decoded
    raises ``InputError`` naming it, after the images before it were delivered.

    Args:
        spec: a folder, or a glob pattern such as ``"frames/*.png"``.
        fps: nominal frame rate for timestamps and for a video sink, or ``None``.

    Attributes:
        paths: the image files, in delivery order.

    Raises:
        InputError: nothing matches, or the folder holds no images.
    """

    def __init__(self, spec: str | os.PathLike[str], fps: float | None = None) -> None:
        super().__init__()
        self.name = str(spec)
        if Path(spec).is_dir():
            paths = [p for p in Path(spec).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            paths = [
                Path(p) for p in glob.glob(str(spec)) if Path(p).suffix.lower() in IMAGE_SUFFIXES
            ]
        if not paths:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {self.name!r}")
        self.paths: list[Path] = sorted(paths)
        self.fps = fps
        self.num_frames = len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        import cv2

        for index, path in enumerate(self.paths):
            if self.closed:
                return
            decoded = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if decoded is None:
                raise SourceDecodeError(f"cannot decode image {str(path)!r}")
            image: npt.NDArray[np.uint8] = np.asarray(decoded, np.uint8)
            timestamp = index / self.fps if self.fps else 0.0
            yield Frame(index, timestamp, image, time.perf_counter())


FrameLike = Union[Frame, npt.NDArray[np.uint8]]


class IterableSource(_LiveSource):
    """Frames from any Python iterable of BGR uint8 (H, W, 3) images or ``Frame`` objects.

    Useful for synthetic sources and for frames that come from elsewhere. Images are
    numbered in order; timestamps are ``index / fps`` (``fps`` given) or the capture clock.

    Args:
        frames: the images or frames.
        live: behave like a camera: read in a grabber thread and keep only the newest frame.
        fps: nominal frame rate, or ``None``.
    """

    def __init__(
        self, frames: Iterable[FrameLike], live: bool = False, fps: float | None = None
    ) -> None:
        super().__init__()
        self.name = type(frames).__name__
        self.live = live
        self.fps = fps
        self._frames = frames

    def _produce(self) -> Iterator[Frame]:
        start = time.perf_counter()
        for index, item in enumerate(self._frames):
            if isinstance(item, Frame):
                yield Frame(item.index, item.timestamp, item.image, time.perf_counter())
                continue
            image = np.asarray(item)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise TypeError(
                    "frames must be uint8 (H, W, 3) BGR images, got "
                    f"{image.dtype} {image.shape} at index {index}"
                )
            now = time.perf_counter()
            timestamp = index / self.fps if self.fps else now - start
            yield Frame(index, timestamp, image, now)

    def __iter__(self) -> Iterator[Frame]:
        if self.live:
            return super().__iter__()
        return self._iterate_closable()

    def _iterate_closable(self) -> Iterator[Frame]:
        for frame in self._produce():
            if self.closed:
                return
            yield frame


def _missing(spec: str) -> InputError:
    return InputError(
        f"input {spec!r} does not exist (expected a video file, an image "
        "folder or glob, a camera index such as 0, or an rtsp:// / http:// URL)"
    )


def open_source(
    spec: str | int | os.PathLike[str],
    *,
    fps: float | None = None,
    camera: dict[str, Any] | None = None,
) -> Source:
    """Open a frame source, recognising its kind from ``spec``.

    Args:
        spec: a camera index (``0`` or ``"0"``), a URL (``rtsp://``, ``http(s)://``,
            ``rtmp://``, ``udp://``, ...), a folder of images, a glob pattern
            (``"frames/*.jpg"``) or a video file.
        fps: nominal frame rate for image folders (timestamps ``index / fps``).
        camera: keyword arguments of ``CameraSource`` (``size``, ``fps``, ``fourcc``) used
            when ``spec`` is a camera index.

    Returns:
        The opened ``Source``; close it (or use it as a context manager) when done.

    Raises:
        InputError: unknown URL scheme, missing file, unavailable camera, unreadable video.
        TypeError: ``spec`` is not a str, int or path.
    """
    if isinstance(spec, bool) or not isinstance(spec, (str, int, os.PathLike)):
        raise TypeError(f"source must be a str, int or path, got {type(spec).__name__}")
    if isinstance(spec, int):
        return CameraSource(spec, **(camera or {}))
    text = os.fspath(spec)
    if isinstance(spec, str) and text.strip().isdigit():
        return CameraSource(int(text), **(camera or {}))
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme == "file":
            return open_source(text.split("://", 1)[1], fps=fps)
        if scheme not in STREAM_SCHEMES:
            raise InputError(
                f"unknown URL scheme {scheme!r} in {text!r}; expected one of "
                f"{', '.join(STREAM_SCHEMES)}"
            )
        return StreamSource(text)
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource(path, fps=fps)
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return ImageFolderSource(glob.escape(text), fps=fps)
        return VideoFileSource(path)
    if glob.has_magic(text):
        return ImageFolderSource(text, fps=fps)
    raise _missing(text)
