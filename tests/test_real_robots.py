"""Robot and object files as people have them: branching wrists, mimic fingers, ROS-style
fixed-joint roots, skid-steer bases on any horizontal axle, bare meshes; and every file that is
refused, with its one-line reason (CLI: exit code 2, one ``Error:`` line, no traceback)."""

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pybullet as p
import pytest
from metarobot.envs.grasp import object_task_from_mesh, object_task_from_urdf
from metarobot.envs.navigate import NavigateTask, wheel_layout, wheeled_task_from_urdf
from metarobot.envs.reach import arm_task_from_urdf, describe_arm
from metarobot.envs.urdf_builder import serial_arm_urdf
from test_grasp import scripted_grasp

import metarobot
from metarobot.cli import main
from metarobot.errors import MetarobotError

_INERTIA = '<inertia ixx="1e-3" ixy="0" ixz="0" iyy="1e-3" iyz="0" izz="1e-3"/>'


def _link(name: str, mass: float | None = 0.5, geometry: str = "", origin: str = "") -> str:
    """A link; ``mass=None`` leaves out <inertial> (as frames in real files do)."""
    inertial = f'<inertial><mass value="{mass}"/>{_INERTIA}</inertial>' if mass is not None else ""
    shape = f"{origin}<geometry>{geometry}</geometry>"
    body = f"<visual>{shape}</visual><collision>{shape}</collision>"
    return f'<link name="{name}">{inertial}{body if geometry else ""}</link>'


_LIMIT = '<limit lower="-2" upper="2" effort="50" velocity="2"/>'


def _joint(
    name: str, kind: str, parent: str, child: str, xyz="0 0 0", axis="0 0 1", rpy="0 0 0", extra="", limit=_LIMIT
) -> str:
    limit = limit if kind in ("revolute", "prismatic") else ""
    return (
        f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
        f'<origin xyz="{xyz}" rpy="{rpy}"/><axis xyz="{axis}"/>{limit}{extra}</joint>'
    )


def _robot(*parts: str) -> str:
    return '<?xml version="1.0"?>\n<robot name="test_robot">\n' + "\n".join(parts) + "\n</robot>\n"


def _arm_with_gripper(chain_mimic: bool = False) -> str:
    """Three revolute joints, then a wrist that branches: a tool frame with a tcp below it, a
    camera, and two prismatic fingers, the right one mimicking the left (x2 + 5 mm)."""
    rod = '<cylinder radius="0.02" length="0.2"/>'
    up = '<origin xyz="0 0 0.1"/>'
    finger_limit = '<limit lower="0.01" upper="0.04" effort="20" velocity="0.5"/>'
    mimic = '<mimic joint="j1" multiplier="1" offset="0"/>' if chain_mimic else ""
    return _robot(
        _link("base", 1.0, '<box size="0.1 0.1 0.05"/>'),
        _link("l1", 0.5, rod, up),
        _link("l2", 0.5, rod, up),
        _link("l3", 0.5, rod, up),
        _link("tool_frame", None),
        _link("tcp", None),
        _link("camera", None),
        _link("finger_left", 0.05, '<box size="0.01 0.01 0.04"/>'),
        _link("finger_right", 0.05, '<box size="0.01 0.01 0.04"/>'),
        _joint("j1", "revolute", "base", "l1", "0 0 0.05", "0 0 1"),
        _joint("j2", "revolute", "l1", "l2", "0 0 0.2", "0 1 0", extra=mimic),
        _joint("j3", "revolute", "l2", "l3", "0 0 0.2", "0 1 0"),
        _joint("tool", "fixed", "l3", "tool_frame", "0 0 0.2"),
        _joint("tcp_joint", "fixed", "tool_frame", "tcp", "0 0 0.05"),
        _joint("camera_joint", "fixed", "l3", "camera", "0.03 0 0.15"),
        _joint("finger_left_joint", "prismatic", "l3", "finger_left", "0 0.02 0.2", "0 1 0").replace(
            '<limit lower="-2" upper="2" effort="50" velocity="2"/>', finger_limit
        ),
        _joint(
            "finger_right_joint",
            "prismatic",
            "l3",
            "finger_right",
            "0 -0.02 0.2",
            "0 -1 0",
            extra='<mimic joint="finger_left_joint" multiplier="2" offset="0.005"/>',
        ).replace('<limit lower="-2" upper="2" effort="50" velocity="2"/>', finger_limit.replace("0.01", "0")),
    )


def _ros_skid_steer(front_radius: float = 0.05, rear_radius: float = 0.06, imu_xyz: str = "0 0 0.05") -> str:
    """A ROS-convention base: ``base_footprint`` (no inertial) -> fixed -> ``base_link``, four
    wheels on ``base_link`` whose axles run along x (so the robot's forward is +y), the rear pair
    bigger than the front."""
    wheels = []
    for name, x, y, r in (
        ("wl_front", -0.13, 0.1, front_radius),
        ("wl_rear", -0.13, -0.1, rear_radius),
        ("wr_front", 0.13, 0.1, front_radius),
        ("wr_rear", 0.13, -0.1, rear_radius),
    ):
        cyl = f'<cylinder radius="{r}" length="0.03"/>'
        wheels.append(_link(name, 0.2, cyl, '<origin rpy="0 1.5708 0"/>'))
        wheels.append(_joint(f"{name}_joint", "continuous", "base_link", name, f"{x} {y} {rear_radius - r}", "1 0 0"))
    return _robot(
        _link("base_footprint", None),
        _link("base_link", 3.0, '<box size="0.2 0.3 0.05"/>', '<origin xyz="0 0 0.03"/>'),
        _link("imu_link", None),
        _joint("base_joint", "fixed", "base_footprint", "base_link", f"0 0 {rear_radius}"),
        _joint("imu_joint", "fixed", "base_link", "imu_link", imu_xyz),
        *wheels,
    )


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def _cli(capfd, *args: str) -> tuple[int, str, str]:
    """Run the console script's entry point in-process; exit code, stdout and stderr (at the
    file-descriptor level, so PyBullet's C output would show)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capfd.readouterr()
    return int(exit_info.value.code or 0), out, err


def _empty_map(**changes) -> NavigateTask:
    fam = metarobot.get_family("navigate")
    task = fam.sample_tasks(1, "train", np.random.default_rng(11))[0]
    base = dict(start_yaw=0.0, goal_x=1.0, goal_y=0.0, obstacle_kinds=(), obstacle_xy=(), obstacle_sizes=())
    base.update(obstacle_yaws=(), floor_friction=0.9, wheel_friction=1.0)
    base.update(changes)
    return dataclasses.replace(task, **base)


# ---------------------------------------------------------------------------------------------
# arms


def test_branching_wrist_with_mimic_fingers_is_a_three_joint_arm(tmp_path):
    path = _write(tmp_path, "arm.urdf", _arm_with_gripper())
    task = arm_task_from_urdf(path)
    # deepest link of the longest revolute chain: the tcp below the tool frame
    assert task.ee_link == "tcp" and task.n_joints == 3 and task.joint_names == ("j1", "j2", "j3")
    assert task.link_lengths == pytest.approx((0.2, 0.2, 0.25))  # joint origins, then the tcp
    assert task.joint_axes == ("0 0 1", "0 1 0", "0 1 0")
    assert task.joint_limits == pytest.approx((2.0, 2.0, 2.0)) and task.joint_efforts == (50.0, 50.0, 50.0)
    # the last joint moves its link and everything hanging off it: 0.5 + 2 x 0.05 kg
    assert task.link_masses == pytest.approx((0.5, 0.5, 0.6))
    desc = describe_arm(task)
    assert desc["held_still"] == ["finger_left_joint", "finger_right_joint (mimics finger_left_joint)"]
    env = metarobot.make_env(task)
    try:
        c = env.sim.client
        names = {
            p.getJointInfo(env.robot, i, physicsClientId=c)[1].decode(): i
            for i in range(p.getNumJoints(env.robot, physicsClientId=c))
        }
        obs, info = env.reset(seed=0)
        tip0 = obs[28:31].copy()
        for _ in range(30):
            obs, reward, *_ = env.step(np.array([1.0, 0.5, -0.5, 1, 1, 1, 1]))
        assert np.linalg.norm(obs[28:31] - tip0) > 0.1  # the chain moves the tip
        q = [
            p.getJointState(env.robot, names[n], physicsClientId=c)[0]
            for n in ("finger_left_joint", "finger_right_joint")
        ]
        # fingers held: the left at 0 clamped into [0.01, 0.04], the right at 2 x that + 5 mm
        assert q == pytest.approx([0.01, 0.025], abs=2e-3)
    finally:
        env.close()


def test_revolute_gripper_fingers_are_not_taken_for_arm_joints(tmp_path):
    # xArm-style: the fingers turn on revolute joints, one driving and the other mimicking it;
    # the longest revolute chain runs into a finger, but the arm ends at the wrist's tcp
    text = _arm_with_gripper().replace('type="prismatic"', 'type="revolute"')
    task = arm_task_from_urdf(_write(tmp_path, "arm.urdf", text))
    assert task.ee_link == "tcp" and task.joint_names == ("j1", "j2", "j3")
    with pytest.raises(MetarobotError, match="'finger_left_joint' on its chain drives mimic joints"):
        arm_task_from_urdf(tmp_path / "arm.urdf", ee_link="finger_left")


def test_a_link_part_way_down_is_an_arm_of_its_own(tmp_path):
    path = _write(tmp_path, "arm.urdf", _arm_with_gripper())
    task = arm_task_from_urdf(path, ee_link="l2")
    assert task.n_joints == 2 and task.joint_names == ("j1", "j2")
    env = metarobot.make_env(task)
    try:
        obs, _ = env.reset(seed=1)
        assert obs[21:28].tolist() == [1, 1, 0, 0, 0, 0, 0]
    finally:
        env.close()


def test_goals_lie_within_half_of_each_joints_range_around_its_centre(tmp_path):
    # one joint whose range does not contain 0: goals and starts are drawn around its centre
    text = serial_arm_urdf([0.2, 0.2], ["z", "y"], [0.5, 0.5], [0.1, 0.1], [2.5, 2.5], [60, 60])
    text = text.replace('lower="-2.5" upper="2.5"', 'lower="0.5" upper="1.5"', 1)
    task = arm_task_from_urdf(_write(tmp_path, "arm.urdf", text))
    assert task.joint_centres == pytest.approx((1.0, 0.0)) and task.joint_limits == pytest.approx((0.5, 2.5))
    env = metarobot.make_env(task)
    try:
        c = env.sim.client
        for seed in range(5):
            env.reset(seed=seed)
            q0 = p.getJointState(env.robot, env._joints[0], physicsClientId=c)[0]
            assert 0.9 <= q0 <= 1.1  # start: centre +/- 0.1 of the half range
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------
# wheeled bases


def test_ros_skid_steer_with_a_fixed_joint_root_and_x_axles(tmp_path):
    path = _write(tmp_path, "base.urdf", _ros_skid_steer())
    layout = wheel_layout(path)
    assert set(layout.left) == {"wl_front_joint", "wl_rear_joint"} and set(layout.right) == {
        "wr_front_joint",
        "wr_rear_joint",
    }
    assert layout.heading_offset == pytest.approx(math.pi / 2)  # axles along x: forward is +y
    task = wheeled_task_from_urdf(path, map_from=_empty_map(goal_x=-1.0))  # the goal behind it
    radii = dict(zip(task.left_wheels + task.right_wheels, task.wheel_radii))
    assert radii == {"wl_front_joint": 0.05, "wl_rear_joint": 0.06, "wr_front_joint": 0.05, "wr_rear_joint": 0.06}
    assert task.chassis_mass == pytest.approx(3.8)  # the file's masses, not a template's
    assert task.track_width == pytest.approx(0.26, abs=1e-3) and task.heading_offset == pytest.approx(
        math.pi / 2, abs=1e-3
    )
    env = metarobot.make_env(task)
    try:
        env.reset(seed=0)
        target0 = env.camera()["target"]
        for _ in range(20):
            env.step(np.array([0.8, 0.8]))
        x, y, yaw, *_ = env._state()
        assert x > 0.25 and abs(y) < 0.1 and abs(yaw) < 0.2  # forward, along its start heading (0)
        # driving away from the map, it stays in the render camera's view: the camera follows
        assert env.camera()["target"][0] > target0[0] + 0.1
        env.reset(seed=0)
        for _ in range(20):
            env.step(np.array([-0.8, 0.8]))
        assert env._state()[2] > 0.3  # left side backward, right forward: it turns left
    finally:
        env.close()


def test_diff_drive_with_unequal_wheels_drives_straight(tmp_path):
    parts = [
        _link("base_link", 2.0, '<box size="0.25 0.16 0.04"/>', '<origin xyz="0 0 0.02"/>'),
        _link("left", 0.1, '<cylinder radius="0.04" length="0.02"/>', '<origin rpy="1.5708 0 0"/>'),
        _link("right", 0.1, '<cylinder radius="0.05" length="0.02"/>', '<origin rpy="1.5708 0 0"/>'),
        _link("front_caster", 0.02, '<sphere radius="0.02"/>'),
        _link("rear_caster", 0.02, '<sphere radius="0.02"/>'),
        _joint("left_joint", "continuous", "base_link", "left", "0 0.1 -0.01", "0 1 0"),
        _joint("right_joint", "continuous", "base_link", "right", "0 -0.1 0", "0 1 0"),
        _joint("fc", "fixed", "base_link", "front_caster", "0.1 0 -0.03"),
        _joint("rc", "fixed", "base_link", "rear_caster", "-0.1 0 -0.03"),
    ]
    task = wheeled_task_from_urdf(_write(tmp_path, "diff.urdf", _robot(*parts)), map_from=_empty_map())
    assert task.wheel_radii == (0.04, 0.05)
    env = metarobot.make_env(task)
    try:
        env.reset(seed=0)
        for _ in range(25):
            env.step(np.array([0.7, 0.7]))
        x, y, yaw, *_ = env._state()
        # the same rim speed on both wheels: straight on (uncompensated it turns ~34 degrees here)
        assert x > 0.3 and abs(yaw) < 0.12
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------
# objects

_CUBE_V = [(x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
_CUBE_F = [(1, 3, 4, 2), (5, 6, 8, 7), (1, 2, 6, 5), (3, 7, 8, 4), (1, 5, 7, 3), (2, 4, 8, 6)]


def _obj(vertices, faces) -> str:
    return "\n".join([f"v {x} {y} {z}" for x, y, z in vertices] + ["f " + " ".join(map(str, f)) for f in faces]) + "\n"


def _staple(half: float = 1.0) -> tuple[list, list]:
    """A U-shaped solid (not convex) from three boxes' worth of outline: a closed 2-D U
    extruded along y."""
    outline = [(-3, 0), (3, 0), (3, 4), (2, 4), (2, 1), (-2, 1), (-2, 4), (-3, 4)]
    n = len(outline)
    vertices = [(x * half, -half, z * half) for x, z in outline] + [(x * half, half, z * half) for x, z in outline]
    faces = [(i + 1, (i + 1) % n + 1, (i + 1) % n + n + 1, i + n + 1) for i in range(n)]
    faces += [(1, 2, 5, 6), (2, 3, 4, 5), (1, 6, 7, 8)]  # front face of the U (convex pieces)
    faces += [(n + 1, n + 6, n + 5, n + 2), (n + 2, n + 5, n + 4, n + 3), (n + 1, n + 8, n + 7, n + 6)]
    return vertices, faces


def test_a_bare_convex_mesh_is_an_object_that_can_be_grasped(tmp_path, monkeypatch):
    monkeypatch.setenv("METAROBOT_CACHE_DIR", str(tmp_path / "cache"))
    path = _write(tmp_path, "cube.obj", _obj(_CUBE_V, _CUBE_F))
    fam = metarobot.get_family("grasp")
    gripper = dataclasses.replace(
        fam.sample_tasks(1, "train", np.random.default_rng(0))[0],
        grip_force=30.0, pad_friction=1.0, max_opening=0.1, finger_length=0.06, object_x=0.0, object_y=0.0,
    )  # fmt: skip
    task = object_task_from_mesh(path, density=500.0, scale=0.02, gripper_from=gripper)
    assert task.object_shape == "mesh" and task.object_mass == pytest.approx(500.0 * 0.04**3)
    assert task.object_size == pytest.approx(0.02, abs=2e-3) and task.object_height == pytest.approx(0.04, abs=4e-3)
    assert fam.describe(task)["collision"] == "convex (its own hull)"
    assert not (tmp_path / "cache" / "vhacd").exists()  # nothing to decompose
    env = fam.make_env(task)
    try:
        assert scripted_grasp(env, task)["is_success"]
    finally:
        env.close()


def test_a_non_convex_mesh_is_decomposed_once_and_cached(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("METAROBOT_CACHE_DIR", str(cache))
    path = _write(tmp_path, "staple.obj", _obj(*_staple()))
    task = object_task_from_mesh(path, mass=0.1, scale=0.01)
    assert task.object_height == pytest.approx(0.04, abs=4e-3)
    assert metarobot.get_family("grasp").describe(task)["collision"] == "not convex: V-HACD decomposition"
    parts = list((cache / "vhacd").glob("*.obj"))
    assert len(parts) == 1 and sum(line.startswith("o ") for line in parts[0].read_text().splitlines()) >= 2
    stamp = parts[0].stat().st_mtime_ns
    object_task_from_mesh(path, mass=0.1, scale=0.01)
    assert parts[0].stat().st_mtime_ns == stamp  # reused, not recomputed


def _triangles(vertices, faces) -> np.ndarray:
    v = np.asarray(vertices, dtype=float)
    return np.array([[v[f[0] - 1], v[f[k] - 1], v[f[k + 1] - 1]] for f in faces for k in range(1, len(f) - 1)])


def test_stl_meshes_binary_and_ascii(tmp_path, monkeypatch):
    monkeypatch.setenv("METAROBOT_CACHE_DIR", str(tmp_path / "cache"))
    tri = _triangles(*_staple())  # not convex: converted to OBJ for V-HACD, then decomposed
    record = np.zeros(len(tri), dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    record["v"] = tri
    binary = tmp_path / "staple.stl"
    binary.write_bytes(b"\0" * 80 + np.uint32(len(tri)).tobytes() + record.tobytes())
    task = object_task_from_mesh(binary, mass=0.1, scale=0.01)
    assert task.object_height == pytest.approx(0.04) and task.object_size == pytest.approx(0.01)
    assert metarobot.get_family("grasp").describe(task)["collision"] == "not convex: V-HACD decomposition"
    cube = _triangles(_CUBE_V, _CUBE_F)
    facets = "".join(
        "facet normal 0 0 0\nouter loop\n" + "".join(f"vertex {x} {y} {z}\n" for x, y, z in t) + "endloop\nendfacet\n"
        for t in cube
    )
    ascii_stl = _write(tmp_path, "cube.stl", f"solid cube\n{facets}endsolid cube\n")
    task = object_task_from_mesh(ascii_stl, mass=0.1, scale=0.02)
    assert task.object_size == pytest.approx(0.02) and metarobot.get_family("grasp").describe(task)["collision"] == (
        "convex (its own hull)"
    )


def test_an_object_urdf_of_links_joined_by_fixed_joints_is_one_body(tmp_path):
    box = '<box size="0.04 0.04 0.04"/>'
    text = _robot(
        _link("body", 0.1, box), _link("handle", 0.02, '<box size="0.01 0.01 0.03"/>'),
        _joint("weld", "fixed", "body", "handle", "0 0 0.035"),
    ).replace('<link name="body">', '<link name="body"><contact><lateral_friction value="0.6"/></contact>')  # fmt: skip
    task = object_task_from_urdf(_write(tmp_path, "obj.urdf", text))
    assert task.object_shape == "urdf" and task.object_mass == pytest.approx(0.12) and task.object_friction == 0.6
    assert task.object_height == pytest.approx(0.07, abs=5e-3)  # body -2..2 cm, handle 2..5 cm


# ---------------------------------------------------------------------------------------------
# the CLI: inspect, clean stdout, and every refusal as one line


def test_inspect_prints_what_was_read_and_pybullet_stays_off_stdout(tmp_path, capfd):
    path = _write(tmp_path, "base.urdf", _ros_skid_steer())
    code, out, err = _cli(capfd, "inspect", "--family", "navigate", "--urdf", str(path))
    assert code == 0, err
    assert "drive: skid-steer (2 wheels a side)" in out and "root_link: base_footprint" in out
    assert "'wl_rear_joint': 0.06" in out and "mass_kg: 3.8" in out
    assert "b3Warning" not in out + err  # base_footprint and imu_link have no inertial data
    assert "hint: --family navigate-v1" in out  # the family measured to serve base files better
    code, out, err = _cli(capfd, "inspect", "--family", "navigate-v1", "--urdf", str(path))
    assert code == 0 and "drive: skid-steer" in out and "hint:" not in out
    code, out, err = _cli(capfd, "--debug", "inspect", "--family", "navigate", "--urdf", str(path))
    assert code == 0 and "b3Warning" not in out and "No inertial data" in err  # --debug shows them, on stderr
    arm = _write(tmp_path, "arm.urdf", _arm_with_gripper())
    code, out, _ = _cli(capfd, "inspect", "--family", "reach", "--urdf", str(arm))
    assert code == 0 and "ee_link: tcp" in out and "held_still: ['finger_left_joint'" in out
    code, out, _ = _cli(capfd, "inspect", "--family", "reach", "--urdf", str(arm), "--json")
    chain = json.loads(out)["chain"]
    assert code == 0 and [row["joint"] for row in chain] == ["j1", "j2", "j3"]
    assert chain[2]["range_rad"] == [-2.0, 2.0] and chain[2]["mass_moved_kg"] == 0.6
    # an iCub's axes are not of unit length: Bullet's inverse dynamics (the gravity hold) warns
    skew = _write(tmp_path, "skew.urdf", _arm_with_gripper().replace('<axis xyz="0 1 0"/>', '<axis xyz="0 2 0"/>'))
    code, out, err = _cli(capfd, "adapt", "--family", "reach", "--urdf", str(skew), "--steps", "0", "--episodes", "1",
                          "--out", str(tmp_path / "skew"))  # fmt: skip
    assert code == 0, err
    assert "b3Warning" not in out + err and "k  success" in out


def test_a_ros_substitution_left_in_a_sensor_joint_does_not_refuse_the_file(tmp_path, capfd):
    """Released URDFs carry roslaunch leftovers (the Husky's IMU origin is
    ``$(optenv HUSKY_IMU_XYZ 0.19 0 0.149)``): the file loads, and a task built from it runs."""
    text = _ros_skid_steer(imu_xyz="$(optenv BASE_IMU_XYZ 0.19 0 0.149)")
    path = _write(tmp_path, "base.urdf", text)
    code, out, err = _cli(capfd, "inspect", "--family", "navigate", "--urdf", str(path))
    assert code == 0, err
    assert "drive: skid-steer (2 wheels a side)" in out
    env = metarobot.make_env(wheeled_task_from_urdf(path, map_from=_empty_map()))
    try:
        obs, _ = env.reset(seed=0)
        for _ in range(5):
            obs, *_ = env.step(np.ones(env.action_space.shape, np.float32))
        assert np.isfinite(obs).all()
    finally:
        env.close()


PUBLIC_FILES = [
    ("reach", "--urdf", "franka_panda/panda.urdf", "ee_link: panda_grasptarget"),
    ("reach", "--urdf", "kuka_iiwa/model.urdf", "ee_link: lbr_iiwa_link_7"),
    ("reach", "--urdf", "xarm/xarm6_with_gripper.urdf", "ee_link: xarm_gripper_base_link"),
    ("navigate", "--urdf", "husky/husky.urdf", "drive: skid-steer (2 wheels a side)"),
    ("navigate", "--urdf", "racecar/racecar.urdf", "drive: differential"),
    ("grasp", "--object-urdf", "duck_vhacd.urdf", "mass_kg: 0.1"),
]


@pytest.mark.parametrize(("family", "flag", "name", "expected"), PUBLIC_FILES)
def test_public_robot_and_object_files_that_ship_with_pybullet_load(family, flag, name, expected, capfd):
    """The public models a user is most likely to try first (pybullet_data, installed with
    pybullet): each loads with no flag beyond the file, nothing from PyBullet on stdout."""
    import pybullet_data

    path = Path(pybullet_data.getDataPath()) / name
    code, out, err = _cli(capfd, "inspect", "--family", family, flag, str(path))
    assert code == 0, err
    assert expected in out and "b3Warning" not in out


def _refusal_cases(tmp_path):
    arm = _arm_with_gripper()
    rail = _robot(  # a prismatic joint within the arm (one before it is a torso lift, held still)
        _link("base"), _link("l0"), _link("carriage"), _link("l1"), _link("l2"),
        _joint("j0", "revolute", "base", "l0"), _joint("rail", "prismatic", "l0", "carriage", axis="1 0 0"),
        _joint("j1", "revolute", "carriage", "l1"), _joint("j2", "revolute", "l1", "l2", "0 0 0.2", "0 1 0"),
    )  # fmt: skip
    loop = arm.replace("</robot>", _joint("closing", "revolute", "l1", "l3", "0 0 0.3") + "</robot>")
    fifo = tmp_path / "pipe.obj"
    os.mkfifo(fifo)
    fifo_urdf = tmp_path / "pipe.urdf"
    os.mkfifo(fifo_urdf)
    w = lambda name, text: str(_write(tmp_path, name, text))  # noqa: E731
    cube = w("cube.obj", _obj(_CUBE_V, _CUBE_F))
    jointed = _robot(
        _link("a", 0.1, '<box size="0.04 0.04 0.04"/>'), _link("b", 0.1), _joint("hinge", "revolute", "a", "b")
    )
    xacro = arm.replace('<robot name="test_robot">', '<robot name="x" xmlns:xacro="http://www.ros.org/wiki/xacro">')
    xacro = xacro.replace("</robot>", '<xacro:include filename="more.xacro"/></robot>')
    many_parts = _ros_skid_steer().replace(
        "</robot>",
        "".join(
            _link(f"part_{i}", 0.01) + _joint(f"part_{i}_joint", "fixed", "base_link", f"part_{i}") for i in range(123)
        )
        + "</robot>",
    )
    placeholder = arm.replace(
        '<joint name="j2" type="revolute">',
        '<joint name="j2" type="revolute"><limit lower="0" upper="0" effort="0" velocity="0"/>',
    ).replace(
        '<limit lower="-2" upper="2" effort="50" velocity="2"/></joint>\n<joint name="j3"', '</joint>\n<joint name="j3"'
    )
    missing_mesh = arm.replace('<box size="0.1 0.1 0.05"/>', '<mesh filename="meshes/base.stl"/>')
    w("base.glb", "glTF")
    glb = arm.replace('<box size="0.1 0.1 0.05"/>', '<mesh filename="base.glb"/>')
    return [
        (
            ["inspect", "--family", "reach", "--urdf", w("rail.urdf", rail), "--ee-link", "l2"],
            "joint 'rail' on its chain is prismatic",
        ),
        (["inspect", "--family", "reach", "--urdf", w("arm.urdf.xacro", xacro)], "is a xacro file, not URDF"),
        (
            ["inspect", "--family", "reach", "--urdf", w("nomesh.urdf", missing_mesh)],
            "(missing mesh file(s): meshes/base.stl)",
        ),
        (["inspect", "--family", "reach", "--urdf", w("loop.urdf", loop)], "closed loop: link 'l3' is the child of"),
        (
            ["inspect", "--family", "reach", "--urdf", w("mimic.urdf", _arm_with_gripper(chain_mimic=True))],
            "joint 'j2' on its chain mimics 'j1'",
        ),
        (
            ["inspect", "--family", "reach", "--urdf", w("arm.urdf", arm), "--ee-link", "gripper"],
            "'gripper' is not a link of the file; links on candidate chains: l1, l2, l3, tool_frame, tcp, camera",
        ),
        (
            ["inspect", "--family", "reach", "--urdf", w("arm2.urdf", arm), "--ee-link", "finger_left"],
            "'finger_left' cannot be used: joint 'finger_left_joint' on its chain is prismatic",
        ),
        (
            ["inspect", "--family", "reach", "--urdf", w("base.urdf", _ros_skid_steer())],
            "looks like a wheeled base (wheel joints",
        ),
        (["inspect", "--family", "navigate", "--urdf", w("arm3.urdf", arm)], "found no left wheel"),
        (["inspect", "--family", "navigate", "--urdf", str(fifo_urdf)], "not a regular file"),
        (
            ["inspect", "--family", "grasp", "--object-mesh", cube],
            "needs its mass: give --object-mass KG or --object-density",
        ),
        (
            ["inspect", "--family", "grasp", "--object-mesh", cube, "--object-mass", "1", "--object-density", "100"],
            "needs its mass: give --object-mass KG or --object-density KG/M3 (one)",
        ),
        (["inspect", "--family", "grasp", "--object-mesh", cube, "--object-mass", "0.1"], "give --object-scale"),
        (["inspect", "--family", "grasp", "--object-mesh", str(fifo), "--object-mass", "0.1"], "not a regular file"),
        (
            ["inspect", "--family", "grasp", "--object-mesh", w("cube.ply", "ply"), "--object-mass", "0.1"],
            "must be an .obj or .stl file",
        ),
        (
            ["inspect", "--family", "grasp", "--object-urdf", cube, "--object-mass", "0.1"],
            "only apply together with --object-mesh",
        ),
        (
            ["inspect", "--family", "grasp", "--object-urdf", w("jointed.urdf", jointed)],
            "must be a single body; it has movable joints ['hinge']",
        ),
        (
            ["inspect", "--family", "navigate", "--object-mesh", cube, "--object-mass", "0.1"],
            "does not take an object from a mesh",
        ),
        (  # PyBullet answers no state query on a body of more links (bare frames are dropped)
            ["inspect", "--family", "navigate", "--urdf", w("many.urdf", many_parts)],
            "has 130 links and 129 joints (129 and 128 without its 1 bare frames); at most 128 and 127 are supported",
        ),
        (  # a quadruped's leg is a serial chain, but nobody means it by "an arm"
            ["inspect", "--family", "reach", "--urdf", w("quadruped.urdf", _quadruped())],
            "looks like a legged robot or a hand (4 limbs from its body: ['LF_HAA', 'RF_HAA', 'LH_HAA', 'RH_HAA'])",
        ),
        (  # dexmate's glTF visuals
            ["inspect", "--family", "reach", "--urdf", w("glb.urdf", glb)],
            "(mesh format(s) PyBullet cannot read: .glb; it reads .obj, .stl, .dae)",
        ),
        (  # SolidWorks' exporter writes <limit lower="0" upper="0"> when no range was set
            ["inspect", "--family", "reach", "--urdf", w("placeholder.urdf", placeholder)],
            "joint 'j2' has an empty range [0.0, 0.0] (an exporter's placeholder?",
        ),
    ]


def test_every_refused_file_is_one_error_line_with_exit_code_2(tmp_path, capfd):
    for args, message in _refusal_cases(tmp_path):
        code, out, err = _cli(capfd, *args)
        lines = err.strip().splitlines()
        assert code == 2, (args, err)
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], (args, err)
        assert "Traceback" not in err and out == "", (args, out)


def test_library_refusals_name_the_reason(tmp_path):
    with pytest.raises(MetarobotError, match="cannot read URDF .*: not a regular file"):
        fifo = tmp_path / "arm.urdf"
        os.mkfifo(fifo)
        arm_task_from_urdf(fifo)


def test_navigate_v1_takes_a_users_base_on_its_open_floor(tmp_path, capfd):
    """navigate-v1 (the family whose default method identifies a robot online) takes a URDF base:
    the robot as read from the file, wired as the file says, on a test task's open floor."""
    path = _write(tmp_path, "base.urdf", _ros_skid_steer())
    fam = metarobot.get_family("navigate-v1")
    floor = fam.heldout_tasks("test", 3)[2]
    task = fam.task_from_urdf(path, map_from=floor)
    assert type(task).__name__ == "NavigateV1Task" and task.urdf_path == str(path.resolve())
    assert task.chassis_mass == pytest.approx(3.8) and task.right_wheel_scale == 1.0
    assert (task.left_sign, task.right_sign) == (1, 1) and task.obstacle_kinds == ()
    assert (task.goal_x, task.goal_y, task.start_yaw) == (floor.goal_x, floor.goal_y, floor.start_yaw)
    env = fam.make_env(task)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == fam.observation_space_example()[0].shape
        obs, *_ = env.step(np.array([0.5, 0.5], np.float32))
        assert np.isfinite(obs).all()
    finally:
        env.close()
    code, out, err = _cli(capfd, "inspect", "--family", "navigate-v1", "--urdf", str(path))
    assert code == 0, err
    assert "drive: skid-steer (2 wheels a side)" in out


# ---------------------------------------------------------------------------------------------
# the class of real files: mobile manipulators, legged bodies, suspensions, Drake and ROS habits


def _mobile_manipulator(
    wheel_damping: float = 20.0,
    torso_mass: float = 5.0,
    torso_height: float = 0.6,
    lean: float = 0.0,
    box_wheels: bool = False,
) -> str:
    """A ROS-convention base carrying a torso and an arm, as TIAGo or a Stretch is: a massless
    ``base_footprint`` root; a body whose box reaches down to the wheels' lowest point (a convex
    hull of a skirt does); two driven wheels with heavy joint damping; two casters on fixed
    joints; a torso lift and an arm ending in gram-light fingers."""
    r = 0.08
    wheel = f'<cylinder radius="{r}" length="0.04"/>' if not box_wheels else f'<box size="{2 * r} {2 * r} 0.04"/>'
    light = (
        '<inertial><mass value="0.01"/><inertia ixx="1e-8" ixy="0" ixz="0" iyy="1e-8" iyz="0" izz="1e-8"/></inertial>'
    )
    finger = '<visual><geometry><box size="0.01 0.01 0.04"/></geometry></visual>'
    wheels = []
    for side, y in (("left", 0.18), ("right", -0.18)):
        wheels.append(_link(f"wheel_{side}", 1.0, wheel, '<origin rpy="1.5708 0 0"/>'))
        damping = f'<dynamics damping="{wheel_damping}"/>'
        wheels.append(
            _joint(
                f"wheel_{side}_joint", "continuous", "base_link", f"wheel_{side}", f"0 {y} 0", "0 1 0", extra=damping
            )
        )
    casters = []
    for name, x in (("caster_front", 0.2), ("caster_back", -0.2)):
        casters.append(_link(name, 0.05, '<sphere radius="0.03"/>'))
        casters.append(_joint(f"{name}_joint", "fixed", "base_link", name, f"{x} 0 {0.03 - r}"))
    return _robot(
        _link("base_footprint", None),
        _link("base_link", 20.0, '<box size="0.5 0.3 0.1"/>', f'<origin xyz="0 0 {0.05 - r}"/>'),
        _joint("base_footprint_joint", "fixed", "base_footprint", "base_link", f"0 0 {r}"),
        *wheels,
        *casters,
        f'<link name="torso"><inertial><origin xyz="{lean} 0 {torso_height / 2}"/>'
        f'<mass value="{torso_mass}"/>{_INERTIA}</inertial><collision><origin xyz="0 0 {torso_height / 2}"/>'
        f'<geometry><box size="0.15 0.15 {torso_height}"/></geometry></collision></link>',
        _joint("torso_lift_joint", "prismatic", "base_link", "torso", "-0.1 0 0.05", "0 0 1"),
        _link("arm_1", 1.0, '<box size="0.05 0.05 0.3"/>', '<origin xyz="0 0.15 0" rpy="1.5708 0 0"/>'),
        _joint("arm_1_joint", "revolute", "torso", "arm_1", "0.1 0.1 0.5", "0 0 1"),
        _link("arm_2", 1.0, '<box size="0.05 0.05 0.3"/>', '<origin xyz="0 0.15 0" rpy="1.5708 0 0"/>'),
        _joint("arm_2_joint", "revolute", "arm_1", "arm_2", "0 0.3 0", "1 0 0"),
        *(f'<link name="finger_{i}">{light}{finger}</link>' for i in range(3)),
        *(
            _joint(f"finger_{i}_joint", "revolute", "arm_2", f"finger_{i}", f"0 0.3 {0.02 * i}", "1 0 0")
            for i in range(3)
        ),
    )


def _tilt(env) -> float:
    _, orn = p.getBasePositionAndOrientation(env.robot, physicsClientId=env.sim.client)
    return math.degrees(math.acos(min(1.0, p.getMatrixFromQuaternion(orn)[8])))


def test_a_mobile_manipulator_stands_on_its_wheels_and_casters_and_drives(tmp_path):
    """Each of these broke a real base: the arm's joints held by motors shook TIAGo apart
    (gram-light fingers); a massless root left its casters and body taking no push from the
    floor; a body hull as low as the wheels left the Stretch resting on it; the Stretch's wheel
    damping spun its wheels up to 44 rad/s."""
    path = _write(tmp_path, "mobile.urdf", _mobile_manipulator())
    task = wheeled_task_from_urdf(path, map_from=_empty_map(goal_x=2.0))
    assert (task.left_wheels, task.right_wheels) == (("wheel_left_joint",), ("wheel_right_joint",))
    env = metarobot.make_env(task)
    c = env.sim.client
    try:
        kinds = {
            p.getJointInfo(env.robot, i, physicsClientId=c)[1].decode(): p.getJointInfo(
                env.robot, i, physicsClientId=c
            )[2]
            for i in range(p.getNumJoints(env.robot, physicsClientId=c))
        }
        held = ["torso_lift_joint", "arm_1_joint", "arm_2_joint", "finger_0_joint"]
        assert all(kinds[n] == p.JOINT_FIXED for n in held)  # the robot holds its arm: rigid
        assert kinds["wheel_left_joint"] == p.JOINT_REVOLUTE
        env.reset(seed=0)
        for _ in range(20):
            env.step(np.zeros(2, np.float32))
        load: dict[str, float] = {}
        for cp in p.getContactPoints(bodyA=env.robot, physicsClientId=c):
            name = "base" if cp[3] < 0 else p.getJointInfo(env.robot, cp[3], physicsClientId=c)[12].decode()
            load[name] = load.get(name, 0.0) + cp[9]
        weight = 9.81 * task.chassis_mass
        assert load.get("base_link", 0.0) < 0.01 * weight  # it does not rest on its body
        assert load.get("caster_front", 0.0) + load.get("caster_back", 0.0) > 0.05 * weight  # casters bear
        assert sum(load.values()) == pytest.approx(weight, rel=0.1)
        assert _tilt(env) < 3.0
        x0 = env._state()[0]
        for _ in range(30):
            env.step(np.array([1.0, 1.0], np.float32))
        assert env._state()[0] > x0 + 0.4 and _tilt(env) < 15.0
        speeds = [abs(p.getJointState(env.robot, j, physicsClientId=c)[1]) for j in env._joints]
        assert max(speeds) < 1.05 * task.max_wheel_speed
    finally:
        env.close()


def test_a_base_that_falls_over_reversing_at_full_speed_gets_a_ramped_drive(tmp_path):
    """A tall base that falls over on the test drive's full-speed reversal keeps its top speed
    and torque, and its drive ramps the wheel speeds (as a real drive's acceleration limit
    does); one that falls over whatever its drive is refused."""
    path = _write(tmp_path, "mobile.urdf", _mobile_manipulator())
    base = wheeled_task_from_urdf(path, map_from=_empty_map(goal_x=2.0))
    tall = _write(tmp_path, "tall.urdf", _mobile_manipulator(torso_mass=60.0, torso_height=2.4))
    task = wheeled_task_from_urdf(tall, map_from=_empty_map(goal_x=2.0))
    assert base.wheel_ramp == 0.0  # the short one drives as the generated robots do
    assert task.wheel_ramp > 0.0
    assert task.wheel_torque == pytest.approx(base.wheel_torque * task.chassis_mass / base.chassis_mass, rel=1e-3)
    assert task.max_wheel_speed == base.max_wheel_speed
    env = metarobot.make_env(task)
    try:
        env.reset(seed=0)
        env.step(np.ones(2, np.float32))
        speeds = [abs(p.getJointState(env.robot, j, physicsClientId=env.sim.client)[1]) for j in env._joints]
        assert max(speeds) < 0.25 * task.max_wheel_speed  # one 50 ms step of a ramp of 0.25 s or more
        env.reset(seed=0)
        for action in [(1.0, 1.0)] * 30 + [(-1.0, -1.0)] * 30 + [(0.0, 0.0)] * 20:
            env.step(np.array(action, np.float32))
        assert _tilt(env) < 15.0
    finally:
        env.close()
    toppling = _mobile_manipulator(torso_mass=60.0, torso_height=2.4, lean=0.6)  # its weight beyond a caster
    with pytest.raises(MetarobotError, match="falls over on a test drive"):
        wheeled_task_from_urdf(_write(tmp_path, "topple.urdf", toppling), map_from=_empty_map(goal_x=2.0))


def _quadruped() -> str:
    """A body with four legs of three joints each, hips turning about horizontal axes (ANYmal's,
    Solo's layout)."""
    legs = [_link("body", 10.0, '<box size="0.5 0.3 0.1"/>')]
    for name, x, y in (("LF", 0.25, 0.15), ("RF", 0.25, -0.15), ("LH", -0.25, 0.15), ("RH", -0.25, -0.15)):
        legs += [_link(f"{name}_hip", 0.5), _link(f"{name}_thigh", 0.5), _link(f"{name}_shank", 0.3)]
        legs.append(_joint(f"{name}_HAA", "revolute", "body", f"{name}_hip", f"{x} {y} 0", "1 0 0"))
        legs.append(_joint(f"{name}_HFE", "revolute", f"{name}_hip", f"{name}_thigh", "0 0 0", "0 1 0"))
        legs.append(_joint(f"{name}_KFE", "revolute", f"{name}_thigh", f"{name}_shank", "0 0 -0.2", "0 1 0"))
    return _robot(*legs)


def test_wheels_on_a_suspension_are_found_and_a_legged_body_is_not_a_wheeled_base(tmp_path):
    """TIAGo's wheels hang from +-5 mm prismatic joints; ANYmal's and Solo's hips turn about
    horizontal axes on the body, with the rest of each leg below them."""
    suspended = _mobile_manipulator()
    for side in ("left", "right"):
        suspended = suspended.replace(
            f'<parent link="base_link"/><child link="wheel_{side}"/>',
            f'<parent link="susp_{side}"/><child link="wheel_{side}"/>',
        )
        spring = '<limit lower="-0.005" upper="0.005" effort="100" velocity="1"/>'
        suspended = suspended.replace(
            "</robot>",
            _link(f"susp_{side}", 0.1)
            + f'<joint name="susp_{side}_joint" type="prismatic"><parent link="base_link"/><child link="susp_{side}"/>'
            f'<axis xyz="0 0 1"/>{spring}</joint></robot>',
        )
    layout = wheel_layout(_write(tmp_path, "suspended.urdf", suspended))
    assert (layout.left, layout.right) == (("wheel_left_joint",), ("wheel_right_joint",))
    with pytest.raises(MetarobotError, match=r"\['LF_HAA', 'RF_HAA', 'LH_HAA', 'RH_HAA'\] carry further joints"):
        wheel_layout(_write(tmp_path, "legged.urdf", _quadruped()))


def test_a_file_with_undeclared_prefixes_loads_as_pybullet_loads_it(tmp_path, capfd):
    """Drake's URDFs (the airo UR5e's) write ``drake:acceleration`` without declaring ``drake``."""
    arm = _arm_with_gripper().replace('effort="50"', 'drake:acceleration="2.5" effort="50"')
    path = _write(tmp_path, "drake.urdf", arm)
    code, out, err = _cli(capfd, "inspect", "--family", "reach", "--urdf", str(path))
    assert code == 0, err
    assert "joints: 3" in out
    undeclared_xacro = arm.replace("</robot>", '<xacro:include filename="more.xacro"/></robot>')
    code, out, err = _cli(
        capfd, "inspect", "--family", "reach", "--urdf", str(_write(tmp_path, "x.urdf", undeclared_xacro))
    )
    assert code == 2 and "is a xacro file, not URDF" in err


def test_a_held_joint_made_fixed_keeps_its_links_where_they_were(tmp_path):
    """``rigid_copy`` folds a held joint's angle into its origin: the copy's links sit where the
    original's do with that joint turned, and its mesh references load from anywhere."""
    from metarobot.envs.urdf_builder import rigid_copy

    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "tip.obj").write_text(
        "v 0 0 0\nv 0.02 0 0\nv 0 0.02 0\nv 0 0 0.02\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n"
    )
    arm = _arm_with_gripper().replace(
        '<link name="tcp"></link>',
        '<link name="tcp"><visual><geometry><mesh filename="meshes/tip.obj"/></geometry></visual></link>',
    )
    path = _write(tmp_path, "arm.urdf", arm)
    held = {"j1": 0.7, "j2": -1.1, "finger_left_joint": 0.03}
    copy = tmp_path / "elsewhere" / "copy.urdf"
    copy.parent.mkdir()
    copy.write_text(rigid_copy(path, held))
    c = p.connect(p.DIRECT)
    try:
        original = p.loadURDF(str(path), physicsClientId=c)
        fixed = p.loadURDF(str(copy), physicsClientId=c)
        names = [
            p.getJointInfo(original, i, physicsClientId=c)[1].decode()
            for i in range(p.getNumJoints(original, physicsClientId=c))
        ]
        for i, name in enumerate(names):
            if name in held:
                p.resetJointState(original, i, held[name], physicsClientId=c)
                assert p.getJointInfo(fixed, i, physicsClientId=c)[2] == p.JOINT_FIXED
        for i in range(len(names)):
            a = p.getLinkState(original, i, computeForwardKinematics=True, physicsClientId=c)
            b = p.getLinkState(fixed, i, computeForwardKinematics=True, physicsClientId=c)
            assert np.allclose(a[4], b[4], atol=1e-6) and abs(float(np.dot(a[5], b[5]))) == pytest.approx(1.0, abs=1e-6)
    finally:
        p.disconnect(c)
    assert str((tmp_path / "meshes" / "tip.obj").resolve()) in copy.read_text()


def _reach_v2_arm(tmp_path, name: str, text: str):
    """The reach-v2 task of an arm file written from ``text``, and its env."""
    fam = metarobot.get_family("reach-v2")
    task = fam.task_from_urdf(_write(tmp_path, name, text))
    return task, fam.make_env(task)


def _arm_angles(env) -> np.ndarray:
    """The angles (rad) of an arm env's chain joints, as PyBullet has them."""
    return np.array([s[0] for s in p.getJointStates(env.robot, env._joints, physicsClientId=env.sim.client)])


def _tip_agrees(env, seeds: int = 3) -> None:
    """reach-v2's nominal model puts the tip where PyBullet does, at several starts."""
    for seed in range(seeds):
        env.reset(seed=seed)
        believed, _ = env._kinematics.tip_and_jacobian(_arm_angles(env))
        actual = p.getLinkState(env.robot, env._ee, computeForwardKinematics=True, physicsClientId=env.sim.client)[4]
        assert np.allclose(believed, actual, atol=1e-5)


def test_a_ur_like_arm_lying_along_the_floor_starts_and_aims_clear_of_it(tmp_path):
    """UR arms have +-2 pi joints whose centres lay the arm along the floor 9 cm up: starts drawn
    around them put the arm inside the floor (jammed), and goals at +-pi were whole turns."""
    rod = '<cylinder radius="0.03" length="0.4"/>'
    along = '<origin xyz="0.2 0 0" rpy="0 1.5708 0"/>'
    wide = '<limit lower="-6.2832" upper="6.2832" effort="150" velocity="3"/>'
    ur = _robot(
        _link("base", 2.0, '<cylinder radius="0.07" length="0.05"/>', '<origin xyz="0 0 0.025"/>'),
        _link("shoulder", 1.0, '<cylinder radius="0.05" length="0.05"/>'),
        _link("upper", 3.0, rod, along),
        _link("fore", 2.0, rod, along),
        _link("tool", 0.3, '<box size="0.04 0.04 0.04"/>'),
        _joint("pan", "revolute", "base", "shoulder", "0 0 0.09", "0 0 1", limit=wide),
        _joint("lift", "revolute", "shoulder", "upper", "0 0 0", "0 1 0", limit=wide),
        _joint("elbow", "revolute", "upper", "fore", "0.4 0 0", "0 1 0", limit=wide),
        _joint("flange", "fixed", "fore", "tool", "0.4 0 0"),
    )
    task, env = _reach_v2_arm(tmp_path, "ur.urdf", ur)
    c = env.sim.client
    try:
        for seed in range(15):
            env.reset(seed=seed)
            assert np.all(np.abs(_arm_angles(env)) <= 0.1 * math.pi + 1e-9)  # a start within a tenth of a turn
            for link in (1, 2, 3):  # the upper arm and forearm clear of the floor at the start
                assert p.getAABB(env.robot, link, physicsClientId=c)[0][2] > 0.0
            assert env._goal[2] > 0.03
    finally:
        env.close()


def test_an_arm_on_a_pedestal_has_the_floor_under_it_and_motors_that_carry_its_weight(tmp_path):
    """Baxter's pedestal reaches 0.93 m below its root, and TALOS's arm file is rooted at the
    shoulder: the floor at the root's height cut through them. Their shoulders' files give less
    effort than gravity takes at some poses (the real Baxter has springs): each motor also gets
    the largest gravity torque of the goals' draw, as a gravity-compensating controller."""
    rod = '<cylinder radius="0.03" length="0.4"/>'
    down = '<origin xyz="0 0 -0.2"/>'
    weak = '<limit lower="-2" upper="2" effort="5" velocity="2"/>'
    arm = _robot(
        _link("pedestal", 20.0, '<box size="0.2 0.2 0.6"/>', '<origin xyz="0 0 -0.3"/>'),
        _link("upper", 5.0, rod, down),
        _link("fore", 5.0, rod, down),
        _link("hand", 0.5, '<box size="0.05 0.05 0.05"/>'),
        _joint("shoulder", "revolute", "pedestal", "upper", "0.15 0 0", "0 1 0", limit=weak),
        _joint("elbow", "revolute", "upper", "fore", "0 0 -0.4", "0 1 0", limit=weak),
        _joint("wrist", "fixed", "fore", "hand", "0 0 -0.4"),
    )
    task, env = _reach_v2_arm(tmp_path, "pedestal.urdf", arm)
    c = env.sim.client
    try:
        for seed in range(5):
            env.reset(seed=seed)
            floor = p.getBasePositionAndOrientation(env._ground, physicsClientId=c)[0][2]
            assert floor < -0.6  # under the pedestal, whose bottom is at -0.6 m
            assert env._goal[2] > floor + 0.03
            q = _arm_angles(env).tolist()
            tau = p.calculateInverseDynamics(env.robot, q, [0.0, 0.0], [0.0, 0.0], physicsClientId=c)
            assert all(f >= 5.0 + abs(t) - 1e-6 for f, t in zip(env._forces, tau))  # effort + weight
        # the shoulder turns at its commanded speed although gravity takes more than its 5 N*m
        env.reset(seed=0)
        q0 = p.getJointState(env.robot, env._joints[0], physicsClientId=c)[0]
        sign = task.actuator_signs[0] * np.sign(0.5 - q0)  # toward the middle of its range
        for _ in range(5):
            p.setJointMotorControlArray(
                env.robot, env._joints, p.VELOCITY_CONTROL, targetVelocities=[float(sign), 0.0],
                forces=env._forces, physicsClientId=c,
            )  # fmt: skip
            env.sim.step(6)
        moved = abs(p.getJointState(env.robot, env._joints[0], physicsClientId=c)[0] - q0)
        assert moved > 0.8 * 5 * 6 * env.sim.timestep  # 1 rad/s for 5 control steps, within 20%
    finally:
        env.close()


def test_wheels_that_collide_as_boxes_roll_as_cylinders(tmp_path):
    """The Stretch's file gives its wheels box collisions (and PyBullet takes a mesh as its convex
    hull): square wheels hopped, off the floor in 76% of the test drive's steps."""
    path = _write(tmp_path, "boxy.urdf", _mobile_manipulator(box_wheels=True))
    task = wheeled_task_from_urdf(path, map_from=_empty_map(goal_x=2.0))
    assert task.wheel_radii == pytest.approx((0.08, 0.08), abs=3e-3)
    env = metarobot.make_env(task)
    c = env.sim.client
    try:
        for j in env._joints:
            shapes = [shape[2] for shape in p.getCollisionShapeData(env.robot, j, physicsClientId=c)]
            assert len(shapes) == 1 and shapes[0] != p.GEOM_BOX  # a cylinder (PyBullet makes it a fine hull)
        env.reset(seed=0)
        x0, on_floor = env._state()[0], 0
        for _ in range(40):
            env.step(np.array([1.0, 1.0], np.float32))
            touching = {cp[3] for cp in p.getContactPoints(bodyA=env.robot, bodyB=env._ground, physicsClientId=c)}
            on_floor += all(j in touching for j in env._joints)
        assert on_floor >= 36 and env._state()[0] > x0 + 0.8
    finally:
        env.close()


def test_an_arm_file_on_reach_runs_as_reach_v2_unless_a_reach_policy_is_named(tmp_path, capfd):
    """reach's shipped policies reached 0-37% of goals on real arm files, reach-v2's 81-100% (88-100% at the best k):
    adapt and render run a file's arm as reach-v2, and say so; --checkpoint keeps reach."""
    from metarobot.policies.pretrained import pretrained_path

    path = str(_write(tmp_path, "arm.urdf", _arm_with_gripper()))
    code, out, err = _cli(
        capfd,
        "adapt",
        "--family",
        "reach",
        "--urdf",
        path,
        "--steps",
        "0",
        "--episodes",
        "1",
        "--out",
        str(tmp_path / "a"),
    )
    assert code == 0, err
    assert "a robot from a file runs as reach-v2" in err
    assert json.loads((tmp_path / "a" / "adaptation.json").read_text())["task"]["family"] == "reach-v2"
    reach = str(pretrained_path("reach", "rma"))
    code, out, err = _cli(
        capfd,
        "adapt",
        "--checkpoint",
        reach,
        "--urdf",
        path,
        "--steps",
        "0",
        "--episodes",
        "1",
        "--out",
        str(tmp_path / "b"),
    )
    assert code == 0, err
    assert "runs as reach-v2" not in err
    assert json.loads((tmp_path / "b" / "adaptation.json").read_text())["task"]["family"] == "reach"


def _seven_joint_arm(side: str, shoulder_xyz: str) -> list[str]:
    """A humanoid's arm on its ``chest``: 7 revolute joints, ``{side}_arm_0`` .. ``_6``."""
    rod = '<cylinder radius="0.03" length="0.2"/>'
    down = '<origin xyz="0 0 -0.1"/>'
    parts, parent = [], "chest"
    for i, axis in enumerate(["0 1 0", "1 0 0", "0 0 1", "0 1 0", "0 0 1", "0 1 0", "1 0 0"]):
        parts.append(_link(f"{side}_arm_{i}", 0.5, rod if i in (1, 3) else "", down if i in (1, 3) else ""))
        xyz = shoulder_xyz if i == 0 else ("0 0 -0.2" if i in (2, 4) else "0 0 0")
        parts.append(_joint(f"{side}_arm_{i}_joint", "revolute", parent, f"{side}_arm_{i}", xyz, axis))
        parent = f"{side}_arm_{i}"
    return parts


def test_a_humanoids_arm_reaches_with_its_waist_held_still(tmp_path):
    """A humanoid's chain from the pelvis to a hand runs through its waist: 2 + 7 revolute joints
    (TALOS, iCub, Romeo, G1 were refused for having more than 7). The joints before the last
    branch point (the chest, where the other arm and the head hang) are a torso, held still;
    the arm is the 7 after it, and the nominal model agrees with PyBullet's tip."""
    rod = '<cylinder radius="0.03" length="0.2"/>'
    down = '<origin xyz="0 0 -0.1"/>'
    parts = [_link("pelvis", 8.0, '<box size="0.2 0.3 0.1"/>'), _link("waist", 2.0), _link("chest", 10.0)]
    parts += [_joint("waist_yaw", "revolute", "pelvis", "waist", "0 0 0.1", "0 0 1")]
    parts += [_joint("waist_pitch", "revolute", "waist", "chest", "0 0 0.05", "0 1 0")]
    for side, y in (("l", 0.2), ("r", -0.2)):
        parts += _seven_joint_arm(side, f"0 {y} 0.35")
        parts += [
            _link(f"{side}_hand", 0.2),
            _joint(f"{side}_hand_joint", "fixed", f"{side}_arm_6", f"{side}_hand", "0 0 -0.1"),
        ]
        parts += [_link(f"{side}_thigh", 2.0, rod, down), _link(f"{side}_shin", 1.0, rod, down)]
        parts.append(_joint(f"{side}_hip", "revolute", "pelvis", f"{side}_thigh", f"0 {y / 2} -0.05", "0 1 0"))
        parts.append(_joint(f"{side}_knee", "revolute", f"{side}_thigh", f"{side}_shin", "0 0 -0.2", "0 1 0"))
    parts += [_link("head", 1.0), _joint("neck", "revolute", "chest", "head", "0 0 0.45", "0 0 1")]
    task, env = _reach_v2_arm(tmp_path, "humanoid.urdf", _robot(*parts))
    try:
        assert task.n_joints == 7 and task.joint_names[0].endswith("_arm_0_joint")
        held = describe_arm(task)["held_still"]
        assert "waist_yaw" in held and "waist_pitch" in held and "neck" in held
        _tip_agrees(env)
    finally:
        env.close()


def test_a_torso_lift_and_an_eighth_arm_joint_are_held_still_where_the_model_puts_them(tmp_path):
    """TIAGo, ARMAR-6 and Dexmate's Vega raise their arms on a prismatic torso lift, and ARMAR's
    arms have 8 joints with no limb branching off between them: the lift and the first joint
    are held still (each at 0 clamped into its range, here 0.1 m and 0.3 rad), the arm is the
    last 7, and the nominal model holds them where PyBullet does. ARMAR-6's file writes an
    ``rpy`` with a comma, which PyBullet reads as a separator, and Gazebo-style files give
    ``effort="1e9"`` for "no limit": the most a task holds."""
    rod = '<cylinder radius="0.03" length="0.2"/>'
    up = '<origin xyz="0 0 0.1"/>'
    strong = '<limit lower="-2" upper="2" effort="1e9" velocity="2"/>'
    parts = [_link("base", 20.0, '<box size="0.4 0.4 0.2"/>'), _link("torso", 5.0, rod, up)]
    lift = '<limit lower="0.1" upper="0.4" effort="500" velocity="0.1"/>'
    parts.append(_joint("lift", "prismatic", "base", "torso", "0 0 0.1", "0 0 1", limit=lift))
    parent, axes = "torso", ["0 0 1", "0 1 0", "1 0 0", "0 1 0", "0 0 1", "0 1 0", "1 0 0", "0 0 1"]
    for i, axis in enumerate(axes):
        parts.append(_link(f"a{i}", 0.5, rod if i in (2, 4) else "", up if i in (2, 4) else ""))
        limit = '<limit lower="0.3" upper="1.0" effort="1e9" velocity="2"/>' if i == 0 else strong
        xyz, rpy = ("0 0 0.2", "0, 0 0.3") if i in (1, 3, 5) else ("0 0 0", "0 0 0")
        parts.append(_joint(f"j{i}", "revolute", parent, f"a{i}", xyz, axis, rpy=rpy, limit=limit))
        parent = f"a{i}"
    parts += [_link("hand", 0.3, '<box size="0.05 0.05 0.05"/>'), _joint("wrist", "fixed", parent, "hand", "0 0 0.1")]
    task, env = _reach_v2_arm(tmp_path, "lift.urdf", _robot(*parts))
    try:
        assert task.joint_names == tuple(f"j{i}" for i in range(1, 8)) and task.ee_link == "hand"
        assert set(task.joint_efforts) == {1e5}
        held = describe_arm(task)["held_still"]
        assert held[:2] == ["lift", "j0"]
        c = env.sim.client
        index = {p.getJointInfo(env.robot, i, physicsClientId=c)[1].decode(): i for i in range(9)}
        _tip_agrees(env)
        assert p.getJointState(env.robot, index["lift"], physicsClientId=c)[0] == pytest.approx(0.1, abs=1e-3)
        assert p.getJointState(env.robot, index["j0"], physicsClientId=c)[0] == pytest.approx(0.3, abs=1e-3)
    finally:
        env.close()


def test_a_humanoid_rooted_at_its_chest_is_an_arm_robot_and_a_quadruped_is_not(tmp_path):
    """Fourier's Qinglong is rooted at its chest: head, two arms and the waist (to the legs) are
    four limbs from the body, as a quadruped's legs are; but its arms have 7 joints in a row,
    which no leg of a four-legged robot and no finger has."""
    rod = '<cylinder radius="0.03" length="0.2"/>'
    down = '<origin xyz="0 0 -0.1"/>'
    parts = [_link("chest", 10.0, '<box size="0.2 0.3 0.3"/>'), _link("head", 1.0), _link("pelvis", 5.0)]
    parts += [_joint("neck", "revolute", "chest", "head", "0 0 0.2", "0 0 1")]
    parts += [_joint("waist", "revolute", "chest", "pelvis", "0 0 -0.2", "0 0 1")]
    for side, y in (("l", 0.2), ("r", -0.2)):
        parts += _seven_joint_arm(side, f"0 {y} 0.1")
        parts += [_link(f"{side}_thigh", 2.0, rod, down)]
        parts.append(_joint(f"{side}_hip", "revolute", "pelvis", f"{side}_thigh", f"0 {y / 2} -0.05", "0 1 0"))
    task, env = _reach_v2_arm(tmp_path, "chest.urdf", _robot(*parts))
    try:
        assert task.n_joints == 7 and task.joint_names[0].endswith("_arm_0_joint")
        _tip_agrees(env, seeds=1)
    finally:
        env.close()
    with pytest.raises(MetarobotError, match="looks like a legged robot or a hand"):
        arm_task_from_urdf(_write(tmp_path, "quadruped.urdf", _quadruped()))


def test_a_file_over_pybullets_link_limit_loads_without_its_bare_frames(tmp_path, capfd):
    """A full iCub has 213 links, 174 of them frames (sensors, skin, DH frames) with no mass and
    no shape: PyBullet answers nothing about a body of more than 128 links. Its copy without
    them loads; the tip, a frame itself, is kept. A base of as many frames drives as before."""
    frames = "".join(
        _link(f"frame_{i}", None) + _joint(f"frame_{i}_joint", "fixed", "l2" if i % 2 else "base", f"frame_{i}")
        for i in range(140)
    )
    arm = _arm_with_gripper().replace("</robot>", frames + "</robot>")
    task, env = _reach_v2_arm(tmp_path, "framed.urdf", arm)
    try:
        assert task.ee_link == "tcp" and task.joint_names == ("j1", "j2", "j3")
        # 3 arm joints, 2 fingers, the tool frame and the tcp below it; the camera frame is gone
        assert p.getNumJoints(env.robot, physicsClientId=env.sim.client) == 7
        _tip_agrees(env)
    finally:
        env.close()
    base = _ros_skid_steer().replace(
        "</robot>",
        "".join(
            _link(f"frame_{i}", None) + _joint(f"frame_{i}_joint", "fixed", "base_link", f"frame_{i}")
            for i in range(123)
        )
        + "</robot>",
    )
    code, out, err = _cli(capfd, "inspect", "--family", "navigate", "--urdf", str(_write(tmp_path, "b.urdf", base)))
    assert code == 0, err
    task = wheeled_task_from_urdf(tmp_path / "b.urdf", map_from=_empty_map())
    env = metarobot.make_env(task)
    try:
        env.reset(seed=0)
        x0, y0, *_ = env._state()
        for _ in range(25):
            env.step(np.array([0.7, 0.7]))
        x, y, yaw, up, *_ = env._state()
        assert math.hypot(x - x0, y - y0) > 0.3 and up > 0.9  # its forward is +y: it drove, upright
    finally:
        env.close()


def test_a_mobile_manipulators_arm_is_its_default_on_reach_and_a_long_finger_is_not_an_arm(tmp_path):
    """TIAGo on reach: the arm on its torso lift, the base parked (wheels held), where a base
    with no arm is refused; TIAGo's index finger has 7 joints after the arm's 7 (virtual joints
    included), and a finger after an arm is not the arm. navigate still takes the base."""
    rod = '<cylinder radius="0.03" length="0.2"/>'
    up = '<origin xyz="0 0 0.1"/>'
    parts = [_link("torso", 5.0, rod, up)]
    parts.append(_joint("torso_lift", "prismatic", "base_link", "torso", "0 0 0.05", "0 0 1"))
    parent = "torso"
    for i, axis in enumerate(["0 0 1", "0 1 0", "0 0 1", "0 1 0", "1 0 0", "0 1 0", "0 0 1"]):
        parts.append(_link(f"arm_{i}", 0.5, rod if i in (1, 2) else "", up if i in (1, 2) else ""))
        parts.append(
            _joint(f"arm_{i}_joint", "revolute", parent, f"arm_{i}", "0 0 0.2" if i in (2, 3) else "0 0 0", axis)
        )
        parent = f"arm_{i}"
    parts += [_link("palm", 0.2, '<box size="0.05 0.05 0.05"/>'), _joint("wrist", "fixed", parent, "palm", "0 0 0.05")]
    parent = "palm"
    for i in range(7):
        parts.append(_link(f"index_{i}", 0.01))
        parts.append(_joint(f"index_{i}_joint", "revolute", parent, f"index_{i}", "0 0 0.01", "0 1 0"))
        parent = f"index_{i}"
    parts += [_link("thumb", 0.01), _joint("thumb_joint", "revolute", "palm", "thumb", "0 0.02 0", "1 0 0")]
    text = _ros_skid_steer().replace("</robot>", "".join(parts) + "</robot>")
    path = _write(tmp_path, "mobile_arm.urdf", text)
    task = arm_task_from_urdf(path)
    assert task.ee_link == "palm" and task.joint_names == tuple(f"arm_{i}_joint" for i in range(7))
    held = describe_arm(task)["held_still"]
    assert "torso_lift" in held and "wl_front_joint" in held
    layout = wheel_layout(path)
    assert set(layout.left + layout.right) == {"wl_front_joint", "wl_rear_joint", "wr_front_joint", "wr_rear_joint"}


def test_a_file_arms_light_links_get_the_motor_armature_urdf_leaves_out(tmp_path):
    """An iCub's arm links weigh 0.03-0.3 kg with 1e-5 kg*m^2 of inertia: PyBullet's velocity
    motors turned them faster than commanded. Each link a file's arm moves gets at least
    mass x (6 cm)^2 about each axis (a geared motor's reflected rotor inertia). (PyBullet takes
    a link's inertia from its collision shape: here 0.4 m r^2 = 5e-6 kg*m^2.)"""
    from metarobot.envs.reach import ARMATURE_RADIUS

    light = _arm_with_gripper().replace('<cylinder radius="0.02" length="0.2"/>', '<sphere radius="0.005"/>')
    task, env = _reach_v2_arm(tmp_path, "light.urdf", light)
    try:
        c = env.sim.client
        names = {p.getJointInfo(env.robot, i, physicsClientId=c)[12].decode(): i for i in range(env._n + 4)}
        for link in ("l1", "l2", "l3"):
            mass, _, inertia, *_ = p.getDynamicsInfo(env.robot, names[link], physicsClientId=c)
            assert mass == 0.5 and inertia == pytest.approx((mass * ARMATURE_RADIUS**2,) * 3)  # 0.4 m r^2 = 5e-6
    finally:
        env.close()
