"""Every URDF under the given folders through ``metarobot inspect`` as an arm (``reach-v2``) and as
a wheeled base (``navigate``), each in a fresh process: what loads, and why the rest is refused.
A refusal must be one ``Error:`` line with exit code 2; anything else (a traceback, PyBullet's
output on stdout) counts as a failure, and the script exits 1 if there is one.

The files are public robot descriptions as they ship on PyPI, for example::

    pip download --no-deps example-robot-data==6.0.0 airo-models==0.0.12 \\
        hello-robot-stretch-urdf==0.1.2 -d /tmp/robots
    cd /tmp/robots && for w in *.whl; do unzip -q -o "$w" -d "${w%%-*}"; done
    python bench/robot_files_sweep.py /tmp/robots --skip-dir meshes

A second batch (humanoids, iCubs, ARMAR; bench/RESULTS.md, "Held-out robot files, a second
batch")::

    pip download --no-deps gym-ignition-models==1.1.1 icub-models==3.2.0 gb-robot-models==0.1.0 \
        dexmate-urdf==0.8.4 fourier-robot-descriptions==0.2.7 cookie-description==1.2.1 armar==1.1.0 \
        jvrc-description==1.1.1 hello-robot-stretch4-urdf==2026.10.20 -d /tmp/robots2

``--family`` narrows the families; ``--match`` keeps the paths containing a substring.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

NOISE = ("b3Warning", "b3Printf", "No inertial data")
SHOWN = ("ee_link", "joints", "drive", "mass_kg", "max_wheel_speed_rad_s", "wheel_torque_Nm")


def inspect(family: str, path: Path) -> tuple[str, str]:
    """(``ok`` | ``refused`` | ``FAILED``, what it printed or why)."""
    proc = subprocess.run(
        [sys.executable, "-m", "metarobot.cli", "inspect", "--family", family, "--urdf", str(path)],
        capture_output=True,
        text=True,
    )
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 0 and not any(w in proc.stdout for w in NOISE):
        read = dict(ln.split(": ", 1) for ln in proc.stdout.splitlines() if ": " in ln)
        return "ok", ", ".join(f"{k}={read[k]}" for k in SHOWN if k in read)
    if proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("Error: "):
        return "refused", lines[0][len("Error: ") :].replace(str(path), "FILE")
    return "FAILED", f"rc={proc.returncode} " + " | ".join(lines[-3:])[-400:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--family", action="append", help="reach-v2, navigate (default: both)")
    parser.add_argument("--match", default="", help="only paths containing this")
    parser.add_argument("--skip-dir", action="append", default=[], help="folder names to leave out")
    args = parser.parse_args()
    families = args.family or ["reach-v2", "navigate"]
    files = sorted(
        f
        for folder in args.folders
        for f in folder.rglob("*.urdf")
        if args.match in str(f) and not set(f.parts) & set(args.skip_dir)
    )
    counts: dict[str, int] = {}
    for path in files:
        for family in families:
            t0 = time.perf_counter()
            status, what = inspect(family, path)
            counts[status] = counts.get(status, 0) + 1
            shown = path.relative_to(next(f for f in args.folders if path.is_relative_to(f)))
            print(f"{family:9s} {status:8s} {shown}  ({time.perf_counter() - t0:.1f} s)  {what}", flush=True)
    print(f"{len(files)} files x {len(families)} families: {counts}")
    sys.exit(1 if counts.get("FAILED") else 0)


if __name__ == "__main__":
    main()
