"""``simplepose bench``: the report's schema and figures, the plots, the command, bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from simplepose.bench import SCHEMA, BenchSettings, check_report, format_table, run_bench
from simplepose.bench.report import make_plots, write_json
from simplepose.bench.synthetic import WalkingPeople, write_walking_video
from simplepose.errors import InputError
from simplepose.pipeline import open_source

STAGES = {
    "decode",
    "preprocess",
    "infer:onnxruntime",
    "infer:torch",
    "group:cpp",
    "group:numpy",
    "render",
    "encode",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One small run on the synthetic video with both CPU backends (nano model)."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("SIMPLEPOSE_CACHE")
    os.environ["SIMPLEPOSE_CACHE"] = str(cache)
    try:
        settings = BenchSettings(
            preset="nano",
            backends=("onnxruntime", "torch"),
            input_size=128,
            size_sweep=(64, 128, 192),
            frames=8,
            repeats=2,
            people=(1, 5, 20),
            threads=1,
        )
        lines: list[str] = []
        done: list[int] = []
        threads = torch.get_num_threads()
        result = run_bench(settings, log=lines.append, progress=lambda i, n: done.append(i))
        assert torch.get_num_threads() == threads, "the caller's thread setting is restored"
    finally:
        if old is None:
            os.environ.pop("SIMPLEPOSE_CACHE", None)
        else:
            os.environ["SIMPLEPOSE_CACHE"] = old
    assert done and done[-1] == 8, "progress reached the last frame"
    assert any("threaded pipeline" in line for line in lines)
    return result


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_report_schema_every_stage_has_positive_finite_median_and_p95(report: dict) -> None:
    assert report["schema"] == SCHEMA
    assert set(report["stages"]) == STAGES
    for name, values in report["stages"].items():
        assert _positive(values["median_ms"]) and _positive(values["p95_ms"]), name
        assert values["p95_ms"] >= values["median_ms"], name
    assert check_report(report) == []
    # JSON-ready: no NaN or Inf anywhere (allow_nan=False raises on them).
    json.dumps(report, allow_nan=False)


def test_report_environment_settings_and_weights_note(report: dict) -> None:
    env = report["environment"]
    assert env["versions"]["torch"] and env["versions"]["onnxruntime"]
    assert env["cpus"] >= 1
    assert env["gpu"] is None or isinstance(env["gpu"], str)
    assert report["settings"]["input_size"] == 128 and report["settings"]["frames"] == 8
    assert report["weights"]["kind"] == "deterministic"
    assert "speed does not depend" in report["weights"]["note"]
    assert report["source"] == {
        "kind": "synthetic", "path": None, "width": 640, "height": 480, "frames": 8, "people": 5,
    }  # fmt: skip


def test_grouping_speedup_and_people_sweep(report: dict) -> None:
    grouping = report["grouping"]
    assert [row["people"] for row in grouping["by_people"]] == [1, 5, 20]
    for row in grouping["by_people"]:
        assert _positive(row["cpp"]["median_ms"]) and _positive(row["numpy"]["median_ms"])
        assert row["speedup"] == pytest.approx(row["numpy"]["median_ms"] / row["cpp"]["median_ms"])
        # Ground-truth crowds: the grouping finds about as many people as were pasted.
        assert abs(row["found"] - row["people"]) <= max(1, row["people"] // 4)
    assert grouping["speedup_over_reference"] > 1.0
    # The C++ core's time grows with the crowd (same grid, more peaks and parts).
    rows = grouping["by_people"]
    assert rows[-1]["cpp"]["median_ms"] > rows[0]["cpp"]["median_ms"]


def test_inference_sweep_per_backend_and_size(report: dict) -> None:
    sweep = {(row["backend"], row["input_size"]): row for row in report["inference_sweep"]}
    assert set(sweep) == {(b, s) for b in ("onnxruntime", "torch") for s in (64, 128, 192)}
    for (backend, size), row in sweep.items():
        assert row["fps"] == pytest.approx(1e3 / row["median_ms"])
        # 640 x 480 frame, height -> size, width padded to a multiple of 64
        assert row["input_shape"][2] == size, (backend, row["input_shape"])
    # The stage table's network row is the sweep's row at the main size.
    assert sweep[("torch", 128)]["median_ms"] == report["stages"]["infer:torch"]["median_ms"]


def test_pipeline_end_to_end_and_explanation(report: dict) -> None:
    pipeline = report["pipeline"]
    assert pipeline["frames"] == 8 and pipeline["threaded"]
    assert _positive(pipeline["fps"])
    assert _positive(pipeline["latency_ms"]["median"]) and _positive(pipeline["latency_ms"]["p95"])
    assert pipeline["backend"] in ("onnxruntime", "torch")
    where = report["where_time_goes"]
    assert where["bottleneck"] in where["per_frame_ms"]
    assert sum(where["share"].values()) == pytest.approx(1.0)
    assert where["ceiling_fps"] >= where["serial_fps"] > 0


def test_live_view_cost_without_and_with_watching_pages(report: dict) -> None:
    live = report["live_view"]
    assert live["clients"] == 4 and live["frames"] == 12 * live["phase_frames"]
    assert live["intervals"]["alone"] > 0 and live["intervals"]["watched"] > 0
    for key in ("fps_alone", "fps_watched", "ratio", "server_cpu_ms_per_frame"):
        assert _positive(live[key]), key
    # One JPEG per frame for all four pages together, and none while nobody watches.
    assert live["jpegs_encoded"] <= live["frames_published"] == live["frames"]
    assert 0 < live["jpegs_per_frame"] <= 1.2  # fewer when the pipeline outruns 30 FPS
    assert live["server_cpu_ms_per_frame_alone"] < live["server_cpu_ms_per_frame"]
    assert "live view (simplepose run --serve)" in format_table(report)


def test_table_json_and_plots(report: dict, tmp_path: Path) -> None:
    table = format_table(report)
    for text in ("decode (640x480 synthetic)", "infer onnxruntime", "group C++", "speed-up",
                 "threaded pipeline", "where the time goes", "speed does not depend"):  # fmt: skip
        assert text in table, text
    path = write_json(report, tmp_path / "bench.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    plots = make_plots(report, tmp_path)
    assert [p.name for p in plots] == ["stages.png", "grouping.png", "input_size.png"]
    for plot in plots:
        image = cv2.imread(str(plot))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 300
        assert image.std() > 10, f"{plot.name} is blank"


def test_check_report_flags_missing_and_non_finite_figures(report: dict) -> None:
    broken = json.loads(json.dumps(report))
    broken["stages"]["decode"]["median_ms"] = float("nan")
    broken["stages"]["render"]["p95_ms"] = 0.0
    del broken["grouping"]["speedup_over_reference"]
    problems = check_report(broken)
    assert len(problems) == 3
    assert any("decode.median_ms" in p for p in problems)


def test_synthetic_video_decodes_with_its_scene(tmp_path: Path) -> None:
    path = tmp_path / "walk.mp4"
    scene = write_walking_video(path, frames=12, width=320, height=240, people=3)
    with open_source(str(path)) as source:
        frames = list(source)
    assert len(frames) == 12 and frames[0].image.shape == (240, 320, 3)
    poses = scene.poses(frames[5].timestamp)
    assert poses.keypoints.shape == (3, 17, 3)
    # Feet below heads, everyone inside the frame vertically, sizes as documented.
    assert np.all(poses.keypoints[:, 15:, 1].min(1) > poses.keypoints[:, 0, 1])
    assert np.all((poses.keypoints[..., 1] >= 0) & (poses.keypoints[..., 1] <= 240))
    moved = scene.poses(1.0).keypoints[:, 0, 0] - scene.poses(0.0).keypoints[:, 0, 0]
    assert np.all(moved != 0), "people walk"


def test_walking_people_are_deterministic() -> None:
    a, b = WalkingPeople(4, 640, 480, seed=3), WalkingPeople(4, 640, 480, seed=3)
    np.testing.assert_array_equal(a.poses(0.7).keypoints, b.poses(0.7).keypoints)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"frames": 0}, "frames"),
        ({"input_size": 32}, "input sizes"),
        ({"people": ()}, "people"),
        ({"backends": ("cuda",)}, "unknown backends"),
        ({"live_clients": -1}, "live_clients"),
    ],
)
def test_settings_are_checked(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BenchSettings(**change)


def _simplepose(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SIMPLEPOSE_CACHE": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "simplepose", *args],
        capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
    )  # fmt: skip


def test_cli_on_a_real_video_writes_table_json_and_plots(data_dir: Path, tmp_path: Path) -> None:
    video = data_dir / "videos" / "mmaction2_test_video_structuralize.mp4"
    result = _simplepose(
        "bench", "--preset", "nano", "--backend", "torch", "--source", str(video),
        "--frames", "6", "--input-size", "128", "--sizes", "64,128", "--repeats", "2",
        "--threads", "1", "--output-dir", "out", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "threaded pipeline (torch)" in result.stdout
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {
        "bench.json", "stages.png", "grouping.png", "input_size.png",
    }  # fmt: skip
    saved = json.loads((out / "bench.json").read_text())
    assert saved["source"]["kind"] == "file" and saved["source"]["path"] == str(video)
    assert saved["source"]["frames"] == 6
    assert "infer:onnxruntime" not in saved["stages"]
    assert check_report(saved) == []


def test_onnx_weights_with_only_the_torch_backend_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not read: the torch backend refuses .onnx files first")
    with pytest.raises(InputError, match="no backend can run these weights"):
        run_bench(BenchSettings(weights=str(fake), backends=("torch",), frames=2, repeats=1))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--frames", "0"], "frames must be >= 1"),
        (["--source", "missing.mp4"], "missing.mp4"),
        (["--sizes", "a,b"], "comma-separated integers"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = _simplepose("bench", "--preset", "nano", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
