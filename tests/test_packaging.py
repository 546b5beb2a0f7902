"""The built wheel installs only ``metarobot`` (envs/policies/urdf inside it) and its data."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.fail(proc.stderr[-2000:])
    return next(out.glob("metarobot-*.whl"))


def test_wheel_has_one_top_level_package_and_the_data_files(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.startswith("metarobot-")}
    assert top == {"metarobot"}, top
    for required in (
        "metarobot/envs/reach.py",
        "metarobot/policies/masked.py",
        "metarobot/urdf/ground.urdf",
        "metarobot/py.typed",
        "metarobot/cli.py",
        "metarobot/algorithms/maml.py",
        "metarobot/policies/pretrained/cartpole-rma.pt",
    ):
        assert required in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "metarobot = metarobot.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_shared_urdf_loads_through_importlib_resources_from_any_directory(tmp_path):
    code = "from metarobot.envs.sim import shared_urdf; import os; print(os.path.isfile(shared_urdf('ground.urdf')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.stdout.strip() == "True", proc.stderr


def test_non_editable_install_runs_from_any_directory(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    code = (
        "import metarobot, sys; from metarobot.cli import main; "
        "assert metarobot.__file__.startswith(sys.argv[1]), metarobot.__file__; main(['families'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "reach" in proc.stdout and "cartpole" in proc.stdout
    assert not (target / "envs").exists() and not (target / "policies").exists() and not (target / "cli.py").exists()
