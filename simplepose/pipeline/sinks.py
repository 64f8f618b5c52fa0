"""Sinks: where results go (window, video file, JSON Lines, CSV, COCO results json).

Every file sink opens its file in the constructor, so an unwritable path fails before any
frame is processed; ``abort()`` closes it and deletes what it created (used when setting up
a run fails after some sinks were opened). Every sink writes incrementally and flushes per
frame, so after an interruption everything processed so far is valid and readable: JSON
Lines hold whole lines, the CSV whole rows, the COCO json is a complete JSON array after
every frame, and the video container is finalised by ``close()`` (which the pipeline calls
on every exit path, Ctrl-C included). An MP4 / MOV video is written as fragmented MP4, so it
stays playable even when the process is killed without a chance to finalise it (SIGKILL):
see ``VideoFileSink``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from simplepose import skeleton
from simplepose.errors import InputError
from simplepose.types import FrameResult

_logger = logging.getLogger(__name__)


class Sink:
    """Base class of the sinks.

    Attributes:
        needs_rendered: the sink uses ``FrameResult.rendered`` (the pipeline renders only
            when some sink needs it, unless told otherwise).
        main_thread: ``write`` must run in the thread that iterates the pipeline (GUI
            windows); other sinks run in the pipeline's sink thread.
        displays: the sink shows frames to a person (window, browser view); the pipeline
            records the capture-to-display latency when its ``write`` returns.
    """

    needs_rendered: bool = False
    main_thread: bool = False
    displays: bool = False

    def write(self, result: FrameResult) -> None:
        """Write one frame's result."""
        raise NotImplementedError

    def close(self) -> None:
        """Finalise and release the output. Idempotent."""

    def abort(self) -> None:
        """Close and delete whatever this sink created (nothing was processed yet)."""
        self.close()

    @property
    def stop_requested(self) -> bool:
        """Whether the sink asks the pipeline to stop (e.g. the window was closed)."""
        return False

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _open_text(path: Path, what: str) -> TextIO:
    """Open ``path`` for writing text, turning OS errors into one clear ``InputError``."""
    if path.is_dir():
        raise InputError(f"cannot write {what} to {str(path)!r}: it is a folder")
    if not path.parent.is_dir():
        raise InputError(
            f"cannot write {what} to {str(path)!r}: folder {str(path.parent)!r} does not exist"
        )
    try:
        return open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed by sink)
    except OSError as error:
        raise InputError(f"cannot write {what} to {str(path)!r}: {error.strerror}") from error


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        _logger.warning("could not remove %s: %s", path, error)


def _persons(result: FrameResult) -> list[dict[str, Any]]:
    poses = result.poses
    keypoints = np.round(poses.keypoints.astype(np.float64), 3).tolist()
    scores = np.round(poses.scores.astype(np.float64), 5).tolist()
    ids = result.track_ids.tolist() if result.track_ids is not None else [None] * len(poses)
    return [
        {"id": ids[p], "score": scores[p], "keypoints": keypoints[p]} for p in range(len(poses))
    ]


def frame_record(result: FrameResult) -> dict[str, Any]:
    """One frame as ``JsonLinesSink`` writes it: ``{"index", "timestamp", "persons"}``."""
    return {
        "index": result.frame.index,
        "timestamp": round(float(result.frame.timestamp), 6),
        "persons": _persons(result),
    }


class _TextFileSink(Sink):
    """A sink writing one text file, opened at construction; ``abort`` deletes it."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        self.path = Path(path)
        self._file: TextIO | None = _open_text(self.path, what)

    def _open_file(self) -> TextIO:
        if self._file is None:
            raise RuntimeError(f"{self.path} is closed")
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def abort(self) -> None:
        self.close()
        _remove(self.path)


class JsonLinesSink(_TextFileSink):
    """One JSON object per frame and line, flushed per line.

    Each line is ``{"index": int, "timestamp": seconds, "persons": [{"id": int | null,
    "score": float, "keypoints": [[x, y, score] * 17]}]}`` with keypoints in image pixels,
    COCO order; an unfound keypoint is ``[0, 0, 0]``.

    Args:
        path: the output file (overwritten).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "JSON Lines")

    def write(self, result: FrameResult) -> None:
        file = self._open_file()
        record = frame_record(result)
        file.write(json.dumps(record, separators=(",", ":")) + "\n")
        file.flush()


#: Column names of ``CsvSink``.
CSV_COLUMNS: tuple[str, ...] = (
    "frame", "timestamp", "person", "track_id", "person_score", "keypoint", "keypoint_name",
    "x", "y", "score",
)  # fmt: skip


class CsvSink(_TextFileSink):
    """One CSV row per keypoint (17 per person), with a header; flushed per frame.

    Columns are ``CSV_COLUMNS``; ``track_id`` is empty when tracking is off, and unfound
    keypoints have ``x = y = score = 0``.

    Args:
        path: the output file (overwritten).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "CSV")
        file = self._open_file()
        csv.writer(file, lineterminator="\n").writerow(CSV_COLUMNS)
        file.flush()

    def write(self, result: FrameResult) -> None:
        file = self._open_file()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        frame = result.frame
        for p, person in enumerate(_persons(result)):
            track_id = "" if person["id"] is None else person["id"]
            for k, (x, y, score) in enumerate(person["keypoints"]):
                writer.writerow(
                    (frame.index, round(float(frame.timestamp), 6), p, track_id,
                     person["score"], k, skeleton.COCO_KEYPOINT_NAMES[k], x, y, score)
                )  # fmt: skip
        # One write per frame, so an interruption never leaves half a frame's rows.
        file.write(buffer.getvalue())
        file.flush()


def coco_image_ids(paths: Sequence[str | os.PathLike[str]]) -> list[int]:
    """COCO image IDs for image files: the number in a COCO-style name, else the position.

    ``000000081988.jpg`` -> 81988; ``bus.jpg`` (third file) -> 2.
    """
    return [int(Path(p).stem) if Path(p).stem.isdigit() else i for i, p in enumerate(paths)]


class CocoResultsSink(_TextFileSink):
    """COCO keypoint results: a JSON array of ``{"image_id", "category_id": 1, "keypoints":
    [x, y, score] * 17 flattened, "score"}``, one entry per person.

    The file is a complete JSON array after every frame: each frame's entries are written
    over the closing bracket, followed by a new closing bracket, then flushed.

    Args:
        path: the output file (overwritten).
        image_ids: COCO image ID per frame index (a sequence or mapping); ``None`` uses the
            frame index.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        image_ids: Sequence[int] | Mapping[int, int] | None = None,
    ) -> None:
        super().__init__(path, "COCO results")
        self._image_ids = image_ids
        file = self._open_file()
        file.write("[\n]\n")
        file.flush()
        self._count = 0

    def write(self, result: FrameResult) -> None:
        file = self._open_file()
        index = result.frame.index
        image_id = int(self._image_ids[index]) if self._image_ids is not None else index
        entries = [json.dumps(e, separators=(",", ":")) for e in result.poses.to_coco(image_id)]
        if not entries:
            return
        # Overwrite the closing "]\n" (2 characters, ASCII) with the new entries.
        file.seek(file.tell() - 2)
        file.write(("," if self._count else "") + ",\n".join(entries) + "\n]\n")
        file.flush()
        self._count += len(entries)


#: Seconds of video per MP4 fragment: at most this much (plus the encoder's delay) is lost
#: when the process is killed before ``close()``.
FRAGMENT_SECONDS = 1.0


def container_options(path: str | os.PathLike[str]) -> dict[str, str]:
    """FFmpeg muxer options that keep a video written to ``path`` readable when the writer
    is killed: fragmented MP4 for ``.mp4`` / ``.m4v`` / ``.mov`` (a self-contained fragment
    per second, starting with an empty index, so no index has to be written at the end),
    and, for every container, each packet handed to the file system as it is written."""
    options = {"flush_packets": "1"}
    if Path(path).suffix.lower() in (".mp4", ".m4v", ".mov"):
        options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        options["frag_duration"] = str(int(FRAGMENT_SECONDS * 1e6))
    return options


def video_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class VideoFileSink(Sink):
    """Video file written with PyAV: H.264 (libx264, yuv420p) if available, else MPEG-4.

    An ``.mp4`` / ``.mov`` file is fragmented MP4 (see ``container_options``): if the process
    is killed before ``close()`` (SIGKILL), the file still plays up to the last
    complete fragment. Lost are the frames of the unfinished fragment (up to
    ``FRAGMENT_SECONDS``) and those still inside the encoder (libx264 holds back a few dozen
    frames for look-ahead and frame threads); every other frame written is there. Ctrl-C and
    SIGTERM lose nothing: the ``simplepose`` command closes the sink first.

    The container is opened in the constructor (an unwritable path fails at once); the
    stream is created on the first frame, whose size fixes the video size (later frames of
    another size are resized). Frame times come from the frame timestamps in ``time_base``
    (the source's), so the output keeps the source's timing and frame rate; a timestamp
    that does not increase (e.g. images, all at 0) becomes the previous one plus one tick.

    Args:
        path: the output file; the container format follows the extension (.mp4, .mkv, ...).
        fps: nominal frame rate (the encoder's rate control; and the time base when
            ``time_base`` is ``None``). ``None``: 30.
        time_base: time base of the output stream, e.g. the source stream's.
        codec: encoder name; ``None`` picks libx264, else mpeg4.
        options: encoder options (default for libx264: ``preset=veryfast``, ``crf=23``).
    """

    needs_rendered = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | Fraction | None = None,
        time_base: Fraction | None = None,
        codec: str | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        import av

        self.path = Path(path)
        rate = Fraction(fps).limit_denominator(1001000) if fps else Fraction(30)
        if rate <= 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.rate = rate
        self.time_base = time_base or 1 / rate
        self.codec = codec or video_codec()
        if options is None:
            options = {"preset": "veryfast", "crf": "23"} if self.codec == "libx264" else {}
        self._options = options
        # FFmpeg opens the file only when the header is written (first frame); create it
        # now so that an unwritable path fails before processing starts.
        _open_text(self.path, "video").close()
        try:
            self._container: Any = av.open(
                str(self.path), "w", container_options=container_options(self.path)
            )
        except (av.FFmpegError, OSError) as error:
            _remove(self.path)
            reason = getattr(error, "strerror", None) or error
            raise InputError(f"cannot write video to {str(self.path)!r}: {reason}") from error
        self._stream: Any = None
        self._size: tuple[int, int] | None = None
        self._last_pts = -1
        self.frames_written = 0
        self._closed = False

    def _open_stream(self, width: int, height: int) -> None:
        stream = self._container.add_stream(self.codec, rate=self.rate, options=self._options)
        # yuv420p needs even sizes; odd sizes are padded by one pixel at encode time.
        stream.width, stream.height = width + width % 2, height + height % 2
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        self._stream = stream
        self._size = (width, height)
        # Write the header now, not with the first packet (which the encoder's look-ahead
        # delays): a run killed early leaves an empty but valid video, not a 0-byte file.
        self._container.start_encoding()

    def write(self, result: FrameResult) -> None:
        import av
        import cv2

        if self._closed:
            raise RuntimeError(f"{self.path} is closed")
        image = sink_image(result)
        height, width = image.shape[:2]
        if self._stream is None:
            self._open_stream(width, height)
        assert self._size is not None
        if (width, height) != self._size:
            image = np.asarray(cv2.resize(image, self._size, interpolation=cv2.INTER_AREA))
        if self._size[0] % 2 or self._size[1] % 2:
            image = np.asarray(
                cv2.copyMakeBorder(
                    image, 0, self._size[1] % 2, 0, self._size[0] % 2, cv2.BORDER_REPLICATE
                )
            )
        pts = round(float(result.frame.timestamp) / self.time_base)
        pts = max(pts, self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = pts
        frame.time_base = self.time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._stream is not None:
                for packet in self._stream.encode():  # flush the encoder's delayed frames
                    self._container.mux(packet)
        finally:
            self._container.close()
        if self._stream is None:
            # A container without a stream is not a video; leave nothing behind.
            _logger.warning("no frame was written; removing %s", self.path)
            _remove(self.path)

    def abort(self) -> None:
        # Deliberate removal: no flush, and no "no frame was written" warning.
        if not self._closed:
            self._closed = True
            self._container.close()
        _remove(self.path)


def opencv_has_gui() -> bool:
    """Whether the installed OpenCV can open windows (``opencv-python``, not ``-headless``)."""
    import cv2

    info = cv2.getBuildInformation()
    gui_lines = [line for line in info.splitlines() if line.strip().startswith("GUI:")]
    return not (gui_lines and gui_lines[0].split(":", 1)[1].strip().upper() == "NONE")


def gui_problem() -> str | None:
    """Why a window cannot be shown here, or ``None`` when it can (as far as one can tell
    without opening it).

    On Linux a window needs a display; OpenCV's own window is used when the installed
    OpenCV has one, else a plain X11 window (``xwindow``). Elsewhere it needs an OpenCV
    with GUI support.
    """
    if sys.platform.startswith("linux"):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return "no display: neither DISPLAY nor WAYLAND_DISPLAY is set (headless or ssh?)"
        if not os.environ.get("DISPLAY") and not opencv_has_gui():
            return "Wayland without XWayland: DISPLAY is not set"
        return None
    if not opencv_has_gui():
        return (
            "the installed OpenCV has no GUI support (opencv-python-headless); install "
            "opencv-python instead to use a window"
        )
    return None


class WindowSink(Sink):
    """Shows the rendered frames in a window; ``q`` or Esc (or closing the window) asks the
    pipeline to stop.

    The window is OpenCV's when the installed OpenCV has GUI support, else (Linux) a plain
    X11 window (``simplepose.pipeline.xwindow``). Writes run in the thread that iterates
    the pipeline, as GUI toolkits require.

    Args:
        title: window title.

    Raises:
        InputError: no display, or no way to open a window here (the message says why).
    """

    needs_rendered = True
    main_thread = True
    displays = True

    def __init__(self, title: str = "simplepose") -> None:
        import cv2

        problem = gui_problem()
        if problem is not None:
            raise InputError(f"cannot show a window: {problem}")
        self.title = title
        self._xwindow: Any = None
        if opencv_has_gui():
            try:
                cv2.namedWindow(title, cv2.WINDOW_NORMAL)
            except cv2.error as error:
                raise InputError(f"cannot show a window: {error}") from error
        else:
            from simplepose.pipeline.xwindow import XWindow

            try:
                self._xwindow = XWindow(title)
            except InputError as error:
                raise InputError(f"cannot show a window: {error}") from error
        self._stop = False
        self._open = True

    def write(self, result: FrameResult) -> None:
        import cv2

        if self._xwindow is not None:
            self._xwindow.show(sink_image(result))
            self._stop = self._xwindow.closed
            return
        cv2.imshow(self.title, sink_image(result))
        key = cv2.waitKey(1) & 0xFF
        visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
        if key in (27, ord("q")) or visible < 1:
            self._stop = True

    @property
    def stop_requested(self) -> bool:
        return self._stop

    def close(self) -> None:
        import cv2

        if self._open:
            self._open = False
            if self._xwindow is not None:
                self._xwindow.close()
            else:
                cv2.destroyWindow(self.title)


def sink_image(result: FrameResult) -> npt.NDArray[np.uint8]:
    """The image a visual sink shows: the overlay when rendered, else the source frame."""
    return result.rendered if result.rendered is not None else result.frame.image
