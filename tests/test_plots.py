"""benchmarks/plots.py: learning curves from run logs, on small event logs written here."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image

from hmarl.training.logger import RunLogger

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "plots.py"


def _load_plots():
    spec = importlib.util.spec_from_file_location("hmarl_bench_plots", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


plots = _load_plots()


def _write_run(log_dir: Path, name: str, points: dict[int, float], tag: str = "eval/return") -> Path:
    group, scalar = tag.split("/")
    logger = RunLogger(log_dir, name)
    for step, value in points.items():
        logger.scalars(group, {scalar: value}, step)
    logger.scalars("train", {"loss": 1.0}, 0)
    logger.close()
    return log_dir / name


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    _write_run(tmp_path, "a_s0", {1000: 0.0, 2000: 0.5, 3000: 1.0})
    _write_run(tmp_path, "a_s1", {1000: 0.2, 2000: 0.7, 3000: 0.9})
    _write_run(tmp_path, "a_s2", {1000: 0.1, 2000: 0.3, 3000: 0.8})
    # Seed 1 of group b logs at other steps and stops early: alignment interpolates it.
    _write_run(tmp_path, "b_s0", {1000: 0.0, 3000: 1.0})
    _write_run(tmp_path, "b_s1", {1500: 0.5, 2500: 0.5})
    return tmp_path


def test_reads_the_logged_values(runs: Path) -> None:
    curve = plots.read_tag(runs / "a_s1", "eval/return")
    assert curve.steps.tolist() == [1000, 2000, 3000]
    np.testing.assert_allclose(curve.values, [0.2, 0.7, 0.9], rtol=1e-6)


def test_mean_and_std_over_seeds(runs: Path) -> None:
    curves = [plots.read_tag(run, "eval/return") for run in plots.find_runs(str(runs / "a_s*"))]
    assert len(curves) == 3
    group = plots.aggregate("a", curves, spread="std")
    table = np.array([[0.0, 0.5, 1.0], [0.2, 0.7, 0.9], [0.1, 0.3, 0.8]])
    assert group.steps.tolist() == [1000, 2000, 3000]
    np.testing.assert_allclose(group.mean, table.mean(0), rtol=1e-6)
    np.testing.assert_allclose(group.high - group.mean, table.std(0), rtol=1e-5)
    np.testing.assert_allclose(group.mean - group.low, table.std(0), rtol=1e-5)
    sem = plots.aggregate("a", curves, spread="sem")
    np.testing.assert_allclose(sem.high - sem.mean, table.std(0) / np.sqrt(3), rtol=1e-5)
    minmax = plots.aggregate("a", curves, spread="minmax")
    np.testing.assert_allclose(minmax.low, table.min(0), rtol=1e-6)
    np.testing.assert_allclose(minmax.high, table.max(0), rtol=1e-6)


def test_seeds_are_aligned_on_environment_steps(runs: Path) -> None:
    curves = [plots.read_tag(runs / name, "eval/return") for name in ("b_s0", "b_s1")]
    common = plots.aggregate("b", curves, span="common")
    # Only 1500-2500 is covered by both seeds; b_s0 is interpolated there.
    assert common.steps.tolist() == [1500, 2500]
    np.testing.assert_allclose(common.mean, [(0.25 + 0.5) / 2, (0.75 + 0.5) / 2], rtol=1e-6)
    everything = plots.aggregate("b", curves, span="all")
    assert everything.steps.tolist() == [1000, 1500, 2500, 3000]
    assert everything.count.tolist() == [1, 2, 2, 1]
    np.testing.assert_allclose(everything.mean[[0, 3]], [0.0, 1.0], atol=1e-7)
    held = plots.aggregate("b", curves, span="common", hold_last=True)
    # b_s1 holds 0.5 after its last step, so 3000 is covered by both.
    assert held.steps.tolist() == [1500, 2500, 3000]
    np.testing.assert_allclose(held.mean[-1], 0.75, rtol=1e-6)


def test_smoothing_is_a_running_mean() -> None:
    np.testing.assert_allclose(plots.smooth(np.array([0.0, 1.0, 2.0, 3.0]), 2), [0.0, 0.5, 1.5, 2.5])


def test_steps_to_target() -> None:
    curve = plots.Curve(Path("x"), np.array([10, 20, 30]), np.array([0.1, 0.96, 0.9]))
    assert plots.steps_to_target(curve, 0.95) == 20
    assert plots.steps_to_target(curve, 1.5) is None


def test_writes_the_image_with_its_command(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "img" / "curve.png"
    table = tmp_path / "curve.csv"
    argv = [
        "--runs",
        f"A={runs}/a_s*",
        "--runs",
        f"B={runs}/b_s*",
        "--out",
        str(out),
        "--csv",
        str(table),
        "--title",
        "test",
        "--target",
        "0.9",
    ]
    groups = plots.main(argv)
    assert [g.label for g in groups] == ["A", "B"]
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (640, 400)
        assert image.text["Command"] == plots.recorded_command(argv)
        assert "benchmarks/plots.py" in image.text["Command"] and "--title test" in image.text["Command"]
    rows = list(csv.DictReader(table.open()))
    a_rows = [r for r in rows if r["label"] == "A"]
    assert [int(r["step"]) for r in a_rows] == [1000, 2000, 3000]
    assert float(a_rows[1]["mean"]) == pytest.approx(0.5, rel=1e-5)
    assert {int(r["seeds"]) for r in a_rows} == {3}


def test_svg_records_its_command(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "curve.svg"
    plots.main(["--runs", f"{runs}/a_s*", "--out", str(out)])
    assert "benchmarks/plots.py" in out.read_text()


def test_no_runs_found(tmp_path: Path) -> None:
    with pytest.raises(plots.PlotError, match="no run directories"):
        plots.main(["--runs", f"x={tmp_path}/missing_*", "--out", str(tmp_path / "x.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(plots.PlotError, match="no run directories"):
        plots.main(["--runs", f"x={tmp_path}/empty", "--out", str(tmp_path / "x.png")])


def test_tag_missing_names_the_logged_tags(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(plots.PlotError, match=r"'eval/success' is not logged .*eval/return.*train/loss"):
        plots.main(["--runs", f"{runs}/a_s0", "--tag", "eval/success", "--out", str(tmp_path / "x.png")])


def test_bad_options(runs: Path, tmp_path: Path) -> None:
    with pytest.raises(plots.PlotError, match="must end in"):
        plots.main(["--runs", f"{runs}/a_s*", "--out", str(tmp_path / "x.jpg")])
    with pytest.raises(plots.PlotError, match="LABEL=PATTERN"):
        plots.main(["--runs", "=nothing", "--out", str(tmp_path / "x.png")])
    with pytest.raises(plots.PlotError, match="--smooth"):
        plots.main(["--runs", f"{runs}/a_s*", "--smooth", "0", "--out", str(tmp_path / "x.png")])
    with pytest.raises(plots.PlotError, match="share no logged step"):
        disjoint = [
            plots.Curve(Path("p"), np.array([1, 2]), np.array([0.0, 1.0])),
            plots.Curve(Path("q"), np.array([5, 6]), np.array([0.0, 1.0])),
        ]
        plots.aggregate("d", disjoint)


def test_command_line_errors_and_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--runs", f"{tmp_path}/none*", "--out", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "plots.py: error: --runs" in result.stderr and "Traceback" not in result.stderr
    help_text = plots.build_parser().format_help()
    for option in (
        "--runs",
        "--tag",
        "--out",
        "--title",
        "--spread",
        "--span",
        "--hold-last",
        "--smooth",
        "--target",
        "--csv",
        "--xlabel",
        "--ylabel",
        "--width",
        "--height",
        "--dpi",
    ):
        assert option in help_text
