"""Load public robot and object files as a user would: ``metarobot inspect`` on each (a fresh
process, stdout and stderr captured apart), then every ``pybullet_data/random_urdfs`` object in
this process with file descriptor 1 watched. Prints one line per file and a summary; exits 1 if
any file failed to load or anything reached stdout besides metarobot's own report.

    python bench/real_robot_files.py [--random-limit N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pybullet_data

DATA = Path(pybullet_data.getDataPath())
NOISE = ("b3Warning", "b3Printf", "No inertial data", "processing", "Simplify convex-hulls")

FILES = [
    ("reach", ["--urdf", "franka_panda/panda.urdf"]),
    ("reach", ["--urdf", "kuka_iiwa/model.urdf"]),
    ("reach", ["--urdf", "xarm/xarm6_robot.urdf"]),
    ("reach", ["--urdf", "xarm/xarm6_with_gripper.urdf"]),
    ("navigate", ["--urdf", "husky/husky.urdf"]),
    ("navigate", ["--urdf", "racecar/racecar.urdf"]),
    ("grasp", ["--object-urdf", "duck_vhacd.urdf"]),
    ("grasp", ["--object-urdf", "teddy_vhacd.urdf"]),
    ("grasp", ["--object-urdf", "objects/mug.urdf"]),
    ("grasp", ["--object-urdf", "cube_small.urdf"]),
    ("grasp", ["--object-mesh", "objects/mug.obj", "--object-mass", "0.2"]),
    ("grasp", ["--object-mesh", "duck.obj", "--object-density", "300", "--object-scale", "0.05"]),
    ("grasp", ["--object-mesh", "teddy2_VHACD_CHs.obj", "--object-mass", "0.1", "--object-scale", "0.1"]),
    ("grasp", ["--object-mesh", "random_urdfs/000/000.obj", "--object-mass", "0.1", "--object-scale", "0.015"]),
    ("grasp", ["--object-mesh", "l_finger.stl", "--object-mass", "0.05"]),
]


def _metarobot() -> list[str]:
    return [sys.executable, "-m", "metarobot.cli"]


def inspect_files() -> int:
    bad = 0
    for family, args in FILES:
        argv = [a if not a.endswith((".urdf", ".obj", ".stl")) else str(DATA / a) for a in args]
        t0 = time.perf_counter()
        proc = subprocess.run([*_metarobot(), "inspect", "--family", family, *argv], capture_output=True, text=True)
        noisy = [w for w in NOISE if w in proc.stdout]
        ok = proc.returncode == 0 and not noisy
        bad += not ok
        shown = " ".join(args).replace(str(DATA) + "/", "")
        first = {k: v for k, v in (ln.split(": ", 1) for ln in proc.stdout.splitlines() if ": " in ln)}
        summary = ", ".join(
            f"{k}={first[k]}"
            for k in ("ee_link", "joints", "drive", "length_m", "mass_kg", "width_m", "height_m", "collision")
            if k in first
        )
        status = "ok" if ok else f"FAILED rc={proc.returncode} {noisy} {proc.stderr.strip()[-300:]}"
        print(f"{family:8s} {shown:75s} {status} ({time.perf_counter() - t0:.1f} s) {summary}")
    return bad


def random_objects(limit: int) -> int:
    from metarobot.envs.grasp import object_task_from_urdf

    from metarobot.errors import MetarobotError

    paths = sorted((DATA / "random_urdfs").glob("*/*.urdf"))[:limit]
    sink = tempfile.TemporaryFile()
    saved = os.dup(1)
    os.dup2(sink.fileno(), 1)
    refused: list[str] = []
    t0 = time.perf_counter()
    try:
        for path in paths:
            try:
                object_task_from_urdf(path)
            except MetarobotError as exc:
                refused.append(f"{path.name}: {exc}")
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    sink.seek(0)
    leaked = sink.read().decode(errors="replace")
    print(
        f"random_urdfs: {len(paths) - len(refused)}/{len(paths)} loaded, {len(refused)} refused, "
        f"{len(leaked)} bytes on stdout, {time.perf_counter() - t0:.0f} s"
    )
    for line in refused[:10]:
        print("  refused:", line)
    return len(refused) + bool(leaked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-limit", type=int, default=1000, help="random_urdfs objects to load")
    args = parser.parse_args()
    bad = inspect_files() + random_objects(args.random_limit)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
