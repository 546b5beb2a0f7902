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


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "metarobot.cli", *args], capture_output=True, text=True)


def test_unknown_family_is_a_one_line_error_with_exit_code_2():
    proc = _cli("families", "bogus")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "Error: unknown family 'bogus'; known families: "
        "cartpole, grasp, grasp-v1, navigate, navigate-v1, reach, reach-v1"
    ]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["families", "--help"], ["--version"]])
def test_help_and_version(args):
    proc = _cli(*args)
    assert proc.returncode == 0 and proc.stdout.strip()


def test_unknown_option_exits_2():
    proc = _cli("families", "--frobnicate")
    assert proc.returncode == 2 and "No such option" in proc.stderr
