"""The command line: output, help, and one-line errors with exit code 2."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from metarobot.cli import cli


def test_families_lists_both_with_ranges():
    result = CliRunner().invoke(cli, ["families"])
    assert result.exit_code == 0
    for text in ("reach", "cartpole", "link_length", "pole_length", "metarobot/Reach-v0"):
        assert text in result.output
    data = json.loads(CliRunner().invoke(cli, ["families", "--json"]).output)
    assert set(data) >= {"reach", "cartpole"}
    assert "n_joints" in data["reach"]["ranges"]


def test_navigate_v1_lists_an_open_floor_and_navigate_its_obstacles():
    obstacle_fields = ("obstacle_kinds", "obstacle_xy", "obstacle_sizes", "obstacle_yaws")
    v1 = CliRunner().invoke(cli, ["families", "navigate-v1"])
    assert v1.exit_code == 0, v1.output
    lines = {line.split()[0]: line for line in v1.output.splitlines()[1:]}
    assert not set(obstacle_fields) & set(lines), v1.output
    assert "0 (not varied)" in lines["obstacles"] and "open floor" in lines["obstacles"]
    assert "right_wheel_scale" in lines
    v0 = json.loads(CliRunner().invoke(cli, ["families", "navigate", "--json"]).output)["navigate"]["ranges"]
    assert set(obstacle_fields) <= set(v0)
    assert v0["obstacles"].startswith("0, 1, 2, 3 (ood: 5, 6, 7)")
    nav = CliRunner().invoke(cli, ["families", "navigate"]).output
    assert "a robot from your file (--urdf): the shipped rma-online policy" in nav
    reach = json.loads(CliRunner().invoke(cli, ["families", "reach", "--json"]).output)["reach"]
    assert reach["robot_file_algo"] is None and reach["robot_file_family"] == "reach-v2"
    assert "a robot from your file (--urdf): runs as reach-v2" in CliRunner().invoke(cli, ["families", "reach"]).output


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "metarobot.cli", *args], capture_output=True, text=True)


def test_unknown_family_is_a_one_line_error_with_exit_code_2():
    proc = _cli("families", "bogus")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: unknown family 'bogus'; known families: "
        "cartpole, grasp, grasp-v1, grasp-v2, navigate, navigate-v1, reach, reach-v1, reach-v2"
    ]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["families", "--help"], ["--version"]])
def test_help_and_version(args):
    proc = _cli(*args)
    assert proc.returncode == 0 and proc.stdout.strip()


def test_unknown_option_exits_2():
    proc = _cli("families", "--frobnicate")
    assert proc.returncode == 2 and "No such option" in proc.stderr
