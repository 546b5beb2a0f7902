"""One declarative parameter spec per family (``Task.params``): validation, the ``families``
listing, sampling and the oracle's normalised parameters all derive from it."""

import dataclasses
import math
import typing
from typing import ClassVar

import numpy as np
import pytest
from metarobot.envs.grasp_v1 import holding_force

import metarobot
from metarobot.errors import MetarobotError
from metarobot.family import (
    ChoiceParam,
    FloatParam,
    IntParam,
    Param,
    Range,
    SignParam,
    Task,
    TaskFamily,
    replace_param,
    revise,
)

#: sampled floats are rounded to 4 decimals: a draw near a bound like pi may round past it
ROUNDING = 5e-5


def _fields(family):
    return {f.name: f for f in dataclasses.fields(family.task_type)}


def _is_number_field(hint) -> bool:
    args = typing.get_args(hint)
    leaf = args[0] if typing.get_origin(hint) is tuple else hint
    return leaf in (int, float)


def test_every_numeric_field_is_declared_and_every_declared_field_exists(family):
    """A field outside the spec would escape validation; a spec entry naming no field is a typo."""
    hints = typing.get_type_hints(family.task_type)
    fields = _fields(family)
    declared = {p.name for p in family.params if p.field}
    assert declared <= set(fields), declared - set(fields)
    numeric = {name for name in fields if _is_number_field(hints[name])}
    assert numeric <= declared, numeric - declared
    assert len({p.name for p in family.params}) == len(family.params)  # no name twice


def _valid_task(family):
    return family.heldout_tasks("train", 1)[0]


def _with_value(task, param, value):
    old = getattr(task, param.name)
    return value if not param.vector else (value, *old[1:])


@pytest.mark.parametrize("side", ["low", "high"])
def test_validation_refuses_values_outside_the_spec_bounds(family, side):
    task = _valid_task(family)
    checked = 0
    for param in family.params:
        if not (param.field and isinstance(param, FloatParam | IntParam) and param.bounds is not None):
            continue
        if param.vector and not getattr(task, param.name):
            continue  # an empty per-obstacle or file-only tuple has no entry to spoil
        lo, hi = param.bounds
        bad = (
            (lo - 1 if side == "low" else hi + 1)
            if isinstance(param, IntParam)
            else (lo - 0.5 if side == "low" else hi * 2 + 1)
        )
        data = task.to_dict()
        data[param.name] = _with_value(task, param, bad)
        label = f"{param.name}[0]" if param.vector else param.name
        with pytest.raises(MetarobotError, match=r"is out of range \[") as err:
            family.task_from_dict(data)
        message = str(err.value)
        assert f"{family.name} task {label}={bad!r} is out of range" in message and "\n" not in message
        assert f"{hi:g}" in message or repr(float(hi)) in message
        checked += 1
    assert checked >= 3


def test_validation_follows_the_spec_not_a_copy_of_it():
    """Revising a bound in the spec moves what validation accepts, with nothing else changed."""
    cart = metarobot.get_family("cartpole")
    base = cart.task_type

    @dataclasses.dataclass(frozen=True)
    class ShortPoleTask(base):
        params: ClassVar[tuple[Param, ...]] = revise(
            base.params, replace_param(base.params, "pole_length", bounds=(0.1, 1.0))
        )

    fields = {f.name: getattr(cart.heldout_tasks("train", 1)[0], f.name) for f in dataclasses.fields(base)}
    base(**{**fields, "pole_length": 1.2})
    with pytest.raises(MetarobotError, match=r"pole_length=1\.2 is out of range \[0\.1, 1\]"):
        ShortPoleTask(**{**fields, "pole_length": 1.2})


def test_kinds_check_what_they_hold():
    sign = SignParam(name="s", doc="a direction")
    for ok in (1, -1):
        sign.check("toy", ok)
    for bad in (0, 2, True, 0.5):
        with pytest.raises(MetarobotError, match=r"toy task s=.* must be \+1 or -1"):
            sign.check("toy", bad)
    axes = ChoiceParam(name="axes", doc="axes", vector=True, choices=("x", "y", "z"))
    axes.check("toy", ("x", "z"))
    with pytest.raises(MetarobotError, match=r"toy task axes\[1\]='w' is not one of x, y, z"):
        axes.check("toy", ("x", "w"))
    axes.check("toy", ("x", "0 0.7 0.7"), from_file=True)  # a file states its own axis vectors
    count = IntParam(name="n", doc="count", bounds=(1, 7))
    with pytest.raises(MetarobotError, match=r"toy task n=8 is out of range \[1, 7\]"):
        count.check("toy", 8)
    with pytest.raises(MetarobotError, match="must be an integer"):
        count.check("toy", 3.0)
    length = FloatParam(name="length", doc="l", bounds=(0.01, 2.0), file_bounds=(0.0, 2.0))
    length.check("toy", 0.0, from_file=True)
    with pytest.raises(MetarobotError, match=r"toy task length=0\.0 is out of range \[0\.01, 2\]"):
        length.check("toy", 0.0)
    with pytest.raises(MetarobotError, match="must be a list"):
        dataclasses.replace(length, vector=True).check("toy", 0.5)
    limit = FloatParam(name="limit", doc="l", bounds=(0.05, 2 * math.pi))
    with pytest.raises(MetarobotError, match=r"\[0\.05, 6\.283185307179586\]"):  # a bound never prints rounded
        limit.check("toy", 7.0)


def test_ranges_text_comes_from_the_spec(family):
    ranges = family.ranges()
    fields = _fields(family)
    for param in family.params:
        field = fields.get(param.name)
        if not param.listed or (field is not None and field.metadata.get("omit_default")):
            assert param.name not in ranges  # only a user's file sets it, or the family's tasks never do
            continue
        text = ranges[param.name]
        assert text.endswith(f"-- {param.doc}"), text
        if isinstance(param, FloatParam):
            for r in (param.train, *param.ood):
                if r is not None:
                    assert f"[{r.low:g}, {r.high:g}]" + (f" {param.unit}" if param.unit else "") in text, text
            if param.ood:
                assert "(ood: " in text
        if isinstance(param, IntParam):
            assert all(str(v) in text for v in (*param.train, *param.ood))
        if isinstance(param, SignParam):
            assert f"-1 with probability {param.reversed_probability:g}" in text
        if param.sampling:
            assert param.sampling in text
    assert "success" in ranges


def test_the_listing_shows_exactly_the_per_item_fields_generated_tasks_fill(family):
    """A per-joint or per-obstacle field is listed when the family's tasks hold values in it,
    and only then (navigate-v1 is an open floor: no obstacle fields)."""
    rng = np.random.default_rng(0)
    tasks = [*family.sample_tasks(30, "train", rng), *family.sample_tasks(30, "ood", rng)]
    ranges = family.ranges()
    for param in family.params:
        if param.field and param.vector:
            filled = any(len(getattr(task, param.name)) for task in tasks)
            assert (param.name in ranges) == filled, (family.name, param.name, filled)


def test_a_revised_range_changes_the_listing():
    cart = metarobot.get_family("cartpole")

    @dataclasses.dataclass(frozen=True)
    class LongPoleTask(cart.task_type):
        params: ClassVar[tuple[Param, ...]] = revise(
            cart.task_type.params, replace_param(cart.task_type.params, "pole_length", train=Range(1.5, 2.5))
        )

    class LongPoles(type(cart)):
        name = "long-poles"
        task_type = LongPoleTask

    assert LongPoles().ranges()["pole_length"].startswith("[1.5, 2.5] m (ood: ")
    tasks = LongPoles().sample_tasks(50, "train", np.random.default_rng(0))
    assert all(1.5 <= t.pole_length <= 2.5 for t in tasks)


def _inside(param, value) -> bool:
    values = value if param.vector else (value,)
    if isinstance(param, FloatParam):
        r = param.train
        return all(r.low - ROUNDING <= v <= r.high + ROUNDING for v in values)
    if isinstance(param, IntParam):
        return all(v in param.train for v in values)
    if isinstance(param, ChoiceParam):
        return all(v in param.choices for v in values)
    return all(v in (1, -1) for v in values)


def _spec_drawn(family):
    return [p for p in family.params if p.field and p.drawn]


@pytest.mark.parametrize("split", ["train", "test"])
def test_training_and_test_tasks_lie_within_the_training_ranges(family, split):
    params = _spec_drawn(family)
    assert params
    for task in family.sample_tasks(150, split, np.random.default_rng(11)):
        for param in params:
            assert _inside(param, getattr(task, param.name)), (param.name, task)
        if family.name.startswith("navigate"):
            assert len(task.obstacle_kinds) <= max(family.param("obstacles").train)
        if family.name == "grasp-v1":
            margin = family.param("crush_margin").train
            assert margin.low - 0.01 <= task.object_crush_force / holding_force(task) <= margin.high + 0.01


def _outside_somewhere(family, task) -> bool:
    if any(not _inside(p, getattr(task, p.name)) for p in _spec_drawn(family)):
        return True
    if family.name.startswith("navigate") and len(task.obstacle_kinds) > max(family.param("obstacles").train):
        return True
    if family.name == "grasp-v1":
        return task.object_crush_force / holding_force(task) < family.param("crush_margin").train.low - 0.01
    return False


def test_ood_tasks_leave_the_training_ranges(family):
    for task in family.sample_tasks(150, "ood", np.random.default_rng(12)):
        assert _outside_somewhere(family, task), task


def test_ood_draws_land_in_the_declared_ood_ranges(family):
    rng = np.random.default_rng(13)
    for param in family.params:
        if isinstance(param, FloatParam) and param.ood:
            values = [param.sample_ood(rng) for _ in range(200)]
            assert all(any(r.low - ROUNDING <= v <= r.high + ROUNDING for r in param.ood) for v in values)
            if param.train is not None:
                assert not any(param.train.contains(v) for v in values)
            if len(param.ood) == 2:  # both ranges are used
                assert any(param.ood[0].contains(v) for v in values) and any(param.ood[1].contains(v) for v in values)
        if isinstance(param, IntParam) and param.ood:
            values = {param.sample_ood(rng) for _ in range(200)}
            assert values == set(param.ood) and not values & set(param.train)


def test_normalisation_maps_the_training_range_to_minus_one_one(family):
    for param in family.params:
        if not isinstance(param, FloatParam):
            continue
        r = param.hidden_range or param.train
        if r is None:
            continue
        lo, mid, hi = (
            float(param.normalise(v))
            for v in (r.low, math.sqrt(r.low * r.high) if param.log_scale else (r.low + r.high) / 2, r.high)
        )
        assert (lo, mid, hi) == pytest.approx((-1.0, 0.0, 1.0), abs=1e-6), param.name


def test_hidden_parameters_are_the_spec_normalised(family):
    """``hidden_params`` is the declared parameters in order, each as its spec normalises it
    (per-joint ones padded); the length matches ``hidden_dim``."""
    assert family.hidden and all(family.param(name) for name in family.hidden)
    for task in family.heldout_tasks("ood", 5):
        hidden = family.hidden_params(task)
        assert hidden.shape == (family.hidden_dim,) and hidden.dtype == np.float32
        at = 0
        for name in family.hidden:
            param = family.param(name)
            width = family.max_joints if param.vector else 1
            block = hidden[at : at + width]
            if name != "joint_axes":  # reach shows an axis as a code (x -1, y +1, z 0)
                want = np.atleast_1d(param.normalise(getattr(task, name)))
                np.testing.assert_array_equal(block[: len(want)], want)
                assert not block[len(want) :].any()
            at += width
        assert at == family.hidden_dim


def test_revise_replaces_by_name_and_appends_new():
    a = FloatParam(name="a", doc="a", train=Range(0.0, 1.0))
    b = SignParam(name="b", doc="b")
    c = FloatParam(name="c", doc="c")
    revised = revise((a, b), replace_param((a, b), "a", train=Range(2.0, 3.0)), c)
    assert [p.name for p in revised] == ["a", "b", "c"]
    assert revised[0].train == Range(2.0, 3.0) and revised[1] is b
    with pytest.raises(KeyError):
        replace_param((a, b), "missing")


# -- a family declared by its spec alone -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _SpringTask(Task):
    family: ClassVar[str] = "spring"
    params: ClassVar[tuple[Param, ...]] = (
        FloatParam(name="stiffness", unit="N/m", doc="spring stiffness", bounds=(1.0, 1000.0),
                   train=Range(50.0, 150.0), ood=(Range(10.0, 30.0), Range(200.0, 300.0))),
        FloatParam(name="mass", unit="kg", doc="block mass", bounds=(0.01, 10.0), train=Range(0.5, 1.5),
                   ood=(Range(2.0, 3.0),)),
        SignParam(name="direction", doc="actuator direction", reversed_probability=0.25),
        ChoiceParam(name="surface", doc="what the block slides on", choices=("ice", "wood")),
    )  # fmt: skip

    stiffness: float
    mass: float
    direction: int
    surface: str


class _SpringFamily(TaskFamily):
    name = "spring"
    env_id = ""
    task_type = _SpringTask
    episode_steps = 10
    success = "never (a test family)"
    hidden = ("stiffness", "mass", "direction")

    def make_env(self, task, render_mode=None):  # pragma: no cover - sampling only
        raise NotImplementedError


def test_a_family_needs_nothing_but_its_spec_to_sample_list_and_normalise():
    fam = _SpringFamily()
    train = fam.sample_tasks(300, "train", np.random.default_rng(0))
    assert all(50 <= t.stiffness <= 150 and 0.5 <= t.mass <= 1.5 and t.surface in ("ice", "wood") for t in train)
    reversed_share = np.mean([t.direction == -1 for t in train])
    assert 0.18 < reversed_share < 0.32  # the declared 0.25
    ood = fam.sample_tasks(300, "ood", np.random.default_rng(0))
    assert all(not 50 <= t.stiffness <= 150 or not 0.5 <= t.mass <= 1.5 for t in ood)
    assert {t.stiffness < 50 for t in ood if not 50 <= t.stiffness <= 150} == {True, False}  # both ood ranges
    assert set(fam.ranges()) == {"stiffness", "mass", "direction", "surface", "success"}
    assert fam.ranges()["mass"] == "[0.5, 1.5] kg (ood: [2, 3] kg) -- block mass"
    assert fam.hidden_dim == 3
    task = _SpringTask(stiffness=150.0, mass=0.5, direction=-1, surface="ice")
    np.testing.assert_array_equal(fam.hidden_params(task), np.array([1.0, -1.0, -1.0], dtype=np.float32))
    with pytest.raises(MetarobotError, match=r"spring task mass=20\.0 is out of range \[0\.01, 10\]"):
        _SpringTask(stiffness=100.0, mass=20.0, direction=1, surface="ice")


def test_typed_lookup_and_clamp():
    reach = metarobot.get_family("reach")
    assert reach.param("n_joints", IntParam).train == (3, 4, 5)
    with pytest.raises(TypeError, match="is a IntParam, not a FloatParam"):
        reach.param("n_joints", FloatParam)
    with pytest.raises(KeyError):
        reach.param("wingspan")
    lengths = reach.param("link_lengths", FloatParam)
    assert lengths.clamp(5.0) == 2.0 and lengths.clamp(0.0) == 0.01  # what a generated arm may hold
    assert lengths.clamp(0.0, from_file=True) == 0.0  # a file's arm: coincident joint origins
