"""The ``metarobot`` command line. Commands stay thin and call library functions.

Bad input raises ``MetarobotError`` (or a Click usage error): one line on stderr, exit code 2,
no traceback unless ``--debug``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

import metarobot
from metarobot.algorithms import algorithm_names
from metarobot.config import SAMPLERS, MetaConfig, default_algo, load_yaml_config
from metarobot.errors import MetarobotError
from metarobot.family import HELDOUT_SIZE, TaskFamily
from metarobot.registry import family_names, get_family
from metarobot.runio import atomic_save, atomic_write_bytes, atomic_write_json, refuse_existing
from metarobot.startup import end_command_start
from metarobot.validation import (
    MEMORY_FRACTION,
    available_memory,
    check_device,
    check_float,
    check_int,
    check_seed,
    check_urdf_file,
    check_workers,
)

#: upper bounds of the adapt/evaluate/render budgets (memory grows with each)
MAX_ADAPT_STEPS = 100
MAX_ADAPT_EPISODES = 10_000
MAX_EVAL_TASKS = 1000
MAX_EVAL_SEEDS = 100
MAX_RENDER_EPISODES = 100


class _State:
    debug = False
    log_handler: Any = None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(metarobot.__version__, prog_name="metarobot")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors and PyBullet's own messages (stderr).")
def cli(debug: bool) -> None:
    """Meta-train robot policies that adapt in a few gradient steps to unseen robots.

    \b
    Typical use:
      metarobot families
      metarobot meta-train --family reach
    """
    _State.debug = debug
    _debug_log(debug)


def _debug_log(debug: bool) -> None:
    """With ``--debug``, metarobot's log (PyBullet's C-level messages among it: envs/sim.py
    keeps them off stdout) goes to stderr; one handler, replaced on each in-process call."""
    import logging

    logger = logging.getLogger("metarobot")
    if _State.log_handler is not None:
        logger.removeHandler(_State.log_handler)
        _State.log_handler = None
    if debug:
        _State.log_handler = logging.StreamHandler(sys.stderr)
        _State.log_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(_State.log_handler)
    logger.setLevel(logging.DEBUG if debug else logging.NOTSET)


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def families(name: str | None, as_json: bool) -> None:
    """List the task families and their parameter ranges (or one family's, given NAME)."""
    names = [name] if name else family_names()
    out: dict[str, Any] = {}
    for n in names:
        fam = get_family(n)
        out[n] = {
            "env_id": fam.env_id,
            "summary": fam.summary,
            "ranges": fam.ranges(),
            "meta_train_defaults": dict(fam.meta_defaults),
            "meta_train_defaults_by_algo": {a: dict(d) for a, d in fam.algo_defaults.items()},
            "robot_file_algo": fam.file_algo,
            "robot_file_family": fam.file_family,
        }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for n, desc in out.items():
        click.secho(f"{n}", bold=True, nl=False)
        click.echo(f"  ({desc['env_id']}): {desc['summary']}")
        width = max(len(k) for k in desc["ranges"])
        for key, value in desc["ranges"].items():
            click.echo(f"    {key:<{width}}  {value}")
        if desc["meta_train_defaults"]:
            own = ", ".join(f"{k}={v}" for k, v in desc["meta_train_defaults"].items())
            click.echo(f"    meta-train defaults: {own}")
        for algo_name, settings in desc["meta_train_defaults_by_algo"].items():
            own = ", ".join(f"{k}={v}" for k, v in settings.items())
            click.echo(f"    with --algo {algo_name}: {own}")
        if desc["robot_file_family"]:
            click.echo(f"    a robot from your file (--urdf): runs as {desc['robot_file_family']}")
        if desc["robot_file_algo"]:
            click.echo(f"    a robot from your file (--urdf): the shipped {desc['robot_file_algo']} policy")


class _IntTuple(click.ParamType):
    name = "N,N,..."

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of integers", param, ctx)


class _AlgoChoice(click.Choice):  # type: ignore[type-arg]
    """``--algo``'s choices, read from the registry when used (plug-ins installed later count)."""

    def __init__(self) -> None:
        super().__init__(algorithm_names())

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        return algorithm_names()

    @choices.setter
    def choices(self, value: Any) -> None:
        pass


def _config_options(fn: Any) -> Any:
    """One option per ``MetaConfig`` field, its help taken from the field's own doc. Options
    default to "not given", so that ``MetaConfig.resolve`` applies the same defaults (the
    algorithm's, then the family's) as the Python API."""
    base = MetaConfig()
    for field in reversed(dataclasses.fields(MetaConfig)):
        default = getattr(base, field.name)
        kind: Any
        if field.name == "algo":
            kind = _AlgoChoice()
        elif field.name == "sampler":
            kind = click.Choice(SAMPLERS)
        elif field.name == "hidden_sizes":
            kind = _IntTuple()
            default = ",".join(str(v) for v in default)
        elif isinstance(default, bool):
            kind = bool
        elif isinstance(default, int):
            kind = int
        elif isinstance(default, float):
            kind = float
        else:
            kind = str
        shown = "none" if default is None else default
        fn = click.option(
            f"--{field.name.replace('_', '-')}",
            field.name,
            type=kind,
            default=None,
            help=f"{field.metadata['doc']} [default: {shown}]",
        )(fn)
    return fn


def _given_settings(ctx: click.Context, config_file: Path | None) -> dict[str, Any]:
    """What the user asked for: the YAML file's settings, then the options given on the
    command line (which win). Defaults are left to ``MetaConfig.resolve``."""
    settings: dict[str, Any] = load_yaml_config(config_file) if config_file else {}
    for field in dataclasses.fields(MetaConfig):
        value = ctx.params.get(field.name)
        if value is not None:
            settings[field.name] = value
    return settings


@cli.command("meta-train")
@_config_options
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML file of settings (any option; the command line wins).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Run directory [default: runs/FAMILY-ALGO-TIMESTAMP].",
)
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.pass_context
def meta_train(
    ctx: click.Context, config_file: Path | None, out: Path | None, resume: bool, progress: bool, **_: Any
) -> None:
    """Meta-train a policy on a task family (MAML around SB3 PPO by default).

    Settings resolve as in the Python API: built-in defaults < the algorithm's < the
    family's own (`metarobot families NAME` lists them) < --config YAML < options given here.

    \b
    Examples:
      metarobot meta-train --family reach
      metarobot meta-train --family cartpole --algo fomaml --iterations 30 --out runs/cp
      metarobot meta-train --family cartpole --sampler ray --workers 2
      metarobot meta-train --resume --out runs/cp --iterations 60
    """
    from metarobot.training import Interrupted, Run

    given = _given_settings(ctx, config_file)
    config = MetaConfig.resolve(given)  # unknown family/algo, bad values: one line, before anything is written
    if out is None:
        if resume:
            raise click.UsageError("--resume needs --out DIR of the run to continue")
        out = Path("runs") / f"{config.family}-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        summary = Run(out, config, resume=resume, given=set(given)).train(
            progress=progress, on_start=lambda: click.echo(f"run directory: {out}", err=True)
        )
    except Interrupted as exc:
        click.echo(f"Interrupted: {exc}", err=True)
        sys.exit(130)
    held = summary.get("heldout_test")
    click.echo(
        f"finished {summary['iterations']} iterations, {summary['env_steps']:,} env steps in {summary['wall_s']} s"
    )
    if held:
        click.echo(
            f"held-out test tasks ({held['tasks']} tasks x {held['episodes_per_update']} episodes): "
            f"success {held['pre_success']:.0%} before adaptation"
            + (f" (the fallback, {held['fallback']})" if held.get("fallback") else "")
            + ", "
            f"{held['post_success']:.0%} after {held['inner_steps']} update(s) "
            f"(return {held['pre_return']:.1f} -> {held['post_return']:.1f})"
        )
    click.echo(f"meta-policy: {out / 'meta_policy.pt'}")


@cli.command()
def algorithms() -> None:
    """List the meta-learning algorithms (`--algo`), plug-ins included."""
    from metarobot.algorithms import get_algorithm

    for name in algorithm_names():
        cls = get_algorithm(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        click.echo(f"{name:<10} {cls.__module__}.{cls.__name__}: {doc}")


# ---------------------------------------------------------------------------------------------
# adapt / evaluate / render: a meta-policy and one or more robots


_OBJECT_MESH_OPTIONS = [
    click.option(
        "--object-mesh",
        type=click.Path(path_type=Path, dir_okay=False),
        help="grasp: your own object as a bare mesh (.obj or .stl); give --object-mass or --object-density.",
    ),
    click.option("--object-mass", type=float, help="grasp: mass (kg) of --object-mesh."),
    click.option(
        "--object-density", type=float, help="grasp: density (kg/m^3) of --object-mesh (mass = density x volume)."
    ),
    click.option("--object-scale", type=float, help="grasp: metres per unit of --object-mesh [default: 1]."),
]


#: a robot or object from the user's own file (adapt, evaluate, render and inspect take them)
_FILE_OPTIONS = [
    click.option(
        "--urdf",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Your own robot as a URDF file (reach: a serial arm; navigate: a wheeled base).",
    ),
    click.option(
        "--object-urdf",
        type=click.Path(path_type=Path, dir_okay=False),
        help="grasp: your own object as a single-body URDF file (the gripper of test task 0).",
    ),
    *_OBJECT_MESH_OPTIONS,
    click.option(
        "--ee-link",
        help="reach: end-effector link of --urdf [default: deepest link of the longest revolute chain].",
    ),
    click.option(
        "--left-wheels",
        help="navigate: comma-separated left wheel joints of --urdf [default: found from the URDF].",
    ),
    click.option(
        "--right-wheels",
        help="navigate: comma-separated right wheel joints of --urdf [default: found from the URDF].",
    ),
]


def _with_options(options: list[Any], fn: Any) -> Any:
    """``fn`` decorated with ``options``, listed in ``--help`` in the order given."""
    for option in reversed(options):
        fn = option(fn)
    return fn


def _file_options(fn: Any) -> Any:
    return _with_options(_FILE_OPTIONS, fn)


_FALLBACK_OPTION = click.option(
    "--fallback",
    metavar="PATH|ALGO|none",
    help="A policy of the family that acts without context (a multitask checkpoint, or multitask: the one "
    "shipped for the family) to run first and keep wherever its episodes do better (success, then return) "
    "than the adapted ones; none: adapt without the one the checkpoint carries [default: the checkpoint's, "
    "if any].",
)


def _task_options(fn: Any) -> Any:
    options = [
        click.option("--family", help="Task family [default: the checkpoint's]."),
        click.option(
            "--checkpoint",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Meta-policy checkpoint (.pt) [default: the one shipped for the family].",
        ),
        click.option(
            "--split",
            type=click.Choice(["train", "test", "ood"]),
            default="test",
            help="Held-out split the task comes from.",
        ),
        click.option("--index", type=int, default=0, help="Task index within the split."),
        click.option(
            "--task",
            "task_file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="A task given as JSON (overrides --split/--index).",
        ),
        *_FILE_OPTIONS,
        _FALLBACK_OPTION,
        click.option("--workers", type=int, default=0, help="Sampling worker processes (0: in-process)."),
        click.option("--seed", type=int, default=0, help="Random seed."),
        click.option("--device", default="cpu", help="Torch device."),
    ]
    return _with_options(options, fn)


def _check_common(workers: int, seed: int, device: str, index: int | None = None) -> None:
    """The options every command shares, checked before any file is read."""
    check_workers(workers, "--workers")
    check_seed(seed, "--seed")
    check_device(device, "--device")
    if index is not None:
        check_int("--index", index, 0, HELDOUT_SIZE - 1)


def _check_adapt_budget(steps: int | None, episodes: int | None, episodes_name: str = "--episodes") -> None:
    if steps is not None:
        check_int("--steps", steps, 0, MAX_ADAPT_STEPS)
    if episodes is not None:
        check_int(episodes_name, episodes, 1, MAX_ADAPT_EPISODES)


def _load_learner(
    family: str | None,
    checkpoint: Path | None,
    workers: int,
    device: str,
    fallback: str | None = None,
    task: Any = None,
) -> tuple[Any, Path]:
    """The checkpoint's learner (default: the family's shipped policy; for a ``task`` whose
    robot was read from the user's file, the family's ``file_algo``'s where it names one).
    ``fallback``: a checkpoint to set as its fallback policy, ``none`` to drop the one it
    carries, or None to keep what it carries."""
    from metarobot.meta import MetaLearner, read_checkpoint
    from metarobot.policies.pretrained import pretrained_path

    if checkpoint is None:
        if family is None:
            raise click.UsageError("give --family or --checkpoint")
        # the shipped policy of the family's default method (the one that measured best on it)
        algo = default_algo(family, from_file=bool(getattr(task, "urdf_path", None)))
        checkpoint = pretrained_path(family, algo)
        if algo != default_algo(family):
            click.echo(f"a robot from a file: {family}'s {algo} policy, which serves real robots better", err=True)
    data = read_checkpoint(checkpoint)
    if family is not None and data["family"] != family:
        raise MetarobotError(f"checkpoint {checkpoint} is for family {data['family']!r}, not {family!r}")
    if workers < 0:
        raise MetarobotError(f"workers must be a non-negative integer, got {workers}")
    if fallback is not None and fallback != "none":
        from metarobot.policies.pretrained import checkpoint_ref

        fallback = checkpoint_ref(data["family"], fallback)
        read_checkpoint(fallback)  # a bad file is refused before anything is built
    learner = MetaLearner.load(checkpoint, workers=workers, device=device)
    try:
        if fallback == "none":
            learner.set_fallback(None)
        elif fallback is not None:
            learner.set_fallback(MetaLearner.load(fallback, workers=workers, device=device))
    except MetarobotError:
        learner.close()
        raise
    return learner, checkpoint


def _family_for(family: str | None, checkpoint: Path | None) -> Any:
    """The task family of this command (``--family``, else the checkpoint's), found without
    building the learner: task files and URDFs are checked before anything heavy starts."""
    from metarobot.meta import read_checkpoint

    if family is not None:
        return get_family(family)
    if checkpoint is None:
        raise click.UsageError("give --family or --checkpoint")
    return get_family(str(read_checkpoint(checkpoint)["family"]))


def _file_family(family: str | None, checkpoint: Path | None, urdf: Path | None) -> tuple[str | None, str]:
    """The family this command runs: ``--family``, or the family a robot from the user's file
    runs as (``TaskFamily.file_family``) where no ``--checkpoint`` names a policy; and the line
    that says so (empty when nothing was rerouted), for stderr once the file has been read."""
    if family is None or checkpoint is not None or urdf is None:
        return family, ""
    routed = get_family(family).file_family
    if not routed:
        return family, ""
    return str(routed), (
        f"a robot from a file runs as {routed}, the family built for such files (give --checkpoint with a "
        f"{family} policy to run it as {family})"
    )


def _pick_task(
    family: Any,
    split: str,
    index: int,
    task_file: Path | None,
    urdf: Path | None,
    ee_link: str | None,
    left_wheels: str | None = None,
    right_wheels: str | None = None,
    object_urdf: Path | None = None,
    object_mesh: Path | None = None,
    object_mass: float | None = None,
    object_density: float | None = None,
    object_scale: float | None = None,
) -> Any:
    mesh_given = {"--object-mass": object_mass, "--object-density": object_density, "--object-scale": object_scale}
    if object_mesh is None and any(v is not None for v in mesh_given.values()):
        stray = [name for name, value in mesh_given.items() if value is not None]
        raise MetarobotError(f"{', '.join(stray)} only apply together with --object-mesh")
    if sum(v is not None for v in (urdf, object_urdf, object_mesh)) > 1:
        raise MetarobotError("give one of --urdf, --object-urdf and --object-mesh")
    if object_mesh is not None:
        return family.task_from_object_mesh(
            object_mesh, mass=object_mass, density=object_density, scale=1.0 if object_scale is None else object_scale
        )
    if object_urdf is not None:
        if type(family).task_from_object_urdf is not TaskFamily.task_from_object_urdf:  # else: "does not take"
            check_urdf_file(object_urdf, "object URDF")  # before PyBullet: size, links, numbers, pipes
        return family.task_from_object_urdf(object_urdf)
    given = {"--ee-link": ee_link, "--left-wheels": left_wheels, "--right-wheels": right_wheels}
    if urdf is None:
        extra = [name for name, value in given.items() if value is not None]
        if extra:
            raise MetarobotError(f"{', '.join(extra)} only apply together with --urdf")
    else:
        options: dict[str, Any] = {}
        if ee_link is not None:
            options["ee_link"] = ee_link
        for key, value in (("left_wheels", left_wheels), ("right_wheels", right_wheels)):
            if value is not None:
                options[key] = tuple(v.strip() for v in value.split(",") if v.strip())
        if type(family).task_from_urdf is not TaskFamily.task_from_urdf:  # else: "does not take"
            check_urdf_file(urdf)  # before PyBullet: size, links, numbers, pipes
        try:
            return family.task_from_urdf(urdf, **options)
        except TypeError:
            names = ", ".join(f"--{k.replace('_', '-')}" for k in options)
            raise MetarobotError(f"{names} do(es) not apply to family {family.name!r}") from None
    if task_file is not None:
        return family.task_from_json_file(task_file)
    return family.task(split, index)


def _report_file_task(family: Any, task: Any, as_json: bool = False, err: bool = True) -> None:
    """What was read from the user's robot or object file (nothing for a generated task)."""
    if not (
        getattr(task, "urdf_path", None) or getattr(task, "object_urdf", None) or getattr(task, "object_mesh", None)
    ):
        return
    desc = family.describe(task)
    if as_json:
        click.echo(json.dumps(desc, indent=2), err=err)
        return
    for key, value in desc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            click.echo(f"{key}:", err=err)
            for row in value:
                click.echo("  " + "  ".join(f"{k}={v}" for k, v in row.items()), err=err)
        else:
            click.echo(f"{key}: {value}", err=err)
    if family.file_hint:
        click.echo(f"hint: {family.file_hint}", err=err)


def _out_dir(out: Path | None, default: str) -> Path:
    path = out or Path("runs") / f"{default}-{time.strftime('%Y%m%d-%H%M%S')}"
    if path.exists() and not path.is_dir():
        raise MetarobotError(f"--out {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise MetarobotError(f"cannot write to output directory {path}: {exc.strerror or exc}") from None
    return path


@cli.command()
@_task_options
@click.option("--steps", type=int, help="Adaptation updates K [default: the meta-training inner steps].")
@click.option("--episodes", type=int, help="Episodes per update N [default: the meta-training setting].")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory [default: runs/adapt-FAMILY-TIMESTAMP].",
)
@click.option("--force", is_flag=True, help="Overwrite the results of an earlier adapt in --out.")
def adapt(
    family: str | None,
    checkpoint: Path | None,
    split: str,
    index: int,
    task_file: Path | None,
    urdf: Path | None,
    object_urdf: Path | None,
    object_mesh: Path | None,
    object_mass: float | None,
    object_density: float | None,
    object_scale: float | None,
    ee_link: str | None,
    left_wheels: str | None,
    right_wheels: str | None,
    fallback: str | None,
    workers: int,
    seed: int,
    device: str,
    steps: int | None,
    episodes: int | None,
    out: Path | None,
    force: bool,
) -> None:
    """Adapt a meta-policy to one robot with the meta-learner's own inner loop.

    \b
    Examples:
      metarobot adapt --family reach --split ood --index 0
      metarobot adapt --family reach --urdf my_arm.urdf --steps 3
      metarobot adapt --checkpoint runs/x/meta_policy.pt --task task.json
      metarobot adapt --checkpoint runs/x/meta_policy.pt --fallback runs/mt/meta_policy.pt
    """
    _check_common(workers, seed, device, index)
    _check_adapt_budget(steps, episodes)
    if out is not None:
        refuse_existing([out / "adaptation.json", out / "adapted_policy.zip"], force)
    family, rerouted = _file_family(family, checkpoint, urdf)
    task_family = _family_for(family, checkpoint)
    mesh = (object_mesh, object_mass, object_density, object_scale)
    task = _pick_task(
        task_family, split, index, task_file, urdf, ee_link, left_wheels, right_wheels, object_urdf, *mesh
    )
    if rerouted:
        click.echo(rerouted, err=True)
    _report_file_task(task_family, task)
    learner, ckpt = _load_learner(family, checkpoint, workers, device, fallback, task)
    try:
        out_dir = _out_dir(out, f"adapt-{learner.config.family}")
        k = learner.config.inner_steps if steps is None else steps
        n = learner.config.episodes_per_update if episodes is None else episodes
        click.echo(f"adapting {ckpt} ({learner.config.algo}) to {task.family} task: {task.to_json()}", err=True)
        result = learner.adapt(task, steps=k, episodes=n, seed=seed)
        from metarobot.meta import FALLBACK_KEY

        ran = result.ran
        fb_name = learner.fallback.config.algo if learner.fallback is not None else ""
        show = [f"fallback ({fb_name})" if r == "fallback" else r for r in ran]
        labelled = bool(fb_name) or any(r != learner.config.algo for r in ran)
        if not learner.has_update:  # rl2: its memory carried across the episodes, never an update
            trial = (k + 1) * n
            click.echo(
                f"{learner.config.algo} adapts by memory, no update: its memory carries across the {trial} episodes"
                + (", kept while it does at least as well as a fresh start" if learner.config.safe_adaptation else "")
            )
        click.echo(f"{'k':>3} {'success':>8} {'return':>9}   (each over {n} episodes)")
        for i, (succ, ret) in enumerate(zip(result.success, result.returns)):
            click.echo(f"{i:>3} {succ:>8.0%} {ret:>9.2f}" + (f"   {show[i]}" if labelled else ""))
        memory = learner.memory_arrays(result.final_state)
        if fb_name:
            chose = "the fallback" if FALLBACK_KEY in result.final_state else learner.config.algo
            click.echo(f"kept: {chose} (its episodes did better: success, then return)")
        if not learner.has_update and FALLBACK_KEY not in result.final_state:
            click.echo(
                "kept: its memory of these episodes"
                if memory is not None
                else "kept: a fresh memory (the episodes run with the memory did worse: success, then return)"
            )
        zip_path = atomic_save(out_dir / "adapted_policy.zip", lambda tmp: learner.save_sb3(tmp, result.final_state))
        report = {
            "checkpoint": str(ckpt),
            "algo": learner.config.algo,
            "task": task.to_dict(),
            "steps": k,
            "episodes_per_update": n,
            "env_steps": result.env_steps,
            "success": result.success,
            "return": result.returns,
            "ran": result.ran,
            "fallback": learner.fallback.config.algo if learner.fallback is not None else None,
            "kept_fallback": FALLBACK_KEY in result.final_state,
            "policy": str(zip_path),
        }
        (out_dir / "adapted_memory.npz").unlink(missing_ok=True)  # an earlier adaptation's (--force)
        if memory is not None:  # rl2: the memory it adapted, for the zip to go on from
            import io

            import numpy as np

            buf = io.BytesIO()
            np.savez(buf, **memory)
            memory_path = atomic_write_bytes(out_dir / "adapted_memory.npz", buf.getvalue())
            report["memory"] = str(memory_path)
            click.echo(
                f"adapted memory: {memory_path} (RecurrentPPO.predict(obs, state=(lstm_h, lstm_c), "
                "episode_start=[False]) goes on from it)"
            )
        atomic_write_json(out_dir / "adaptation.json", report)
        click.echo(f"adapted policy: {zip_path}\nmetrics: {out_dir / 'adaptation.json'}")
    finally:
        learner.close()


BASELINES = ("multitask", "finetune", "recurrent", "oracle", "scratch")


@cli.command()
@click.option("--family", help="Task family [default: the first checkpoint's].")
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Meta-policy checkpoint; repeat to compare several [default: the shipped one].",
)
@click.option("--split", "splits", multiple=True, type=click.Choice(["test", "ood"]), help="[default: test and ood]")
@click.option("--tasks", "n_tasks", type=int, default=10, help="Held-out tasks per split (M).")
@click.option("--seeds", type=int, default=2, help="Seeds per task (S).")
@click.option("--steps", type=int, default=3, help="Adaptation updates K.")
@click.option("--episodes", type=int, help="Episodes per update N [default: the meta-training setting].")
@click.option(
    "--baselines",
    default="multitask,finetune,scratch",
    help="Comma-separated, each adapted with its own routine: multitask (domain-randomised PPO, no update), "
    "finetune (the multitask policy fine-tuned by PPO at a learning rate chosen on the train split), "
    "recurrent (sb3-contrib RecurrentPPO, domain-randomised; adapts through its memory), "
    "oracle (sees the hidden parameters; no update), scratch (a fresh policy, the method's inner loop); or none.",
)
@click.option(
    "--recurrent-checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="recurrent policy (a RecurrentPPO zip) [default: the shipped one, else trained now, same env steps].",
)
@click.option(
    "--multitask-checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="multitask policy [default: the shipped one, else trained now with the same env-step budget].",
)
@click.option(
    "--oracle-checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    help="oracle policy [default: the shipped one, else trained now with the same env-step budget].",
)
@_FALLBACK_OPTION
@click.option("--workers", type=int, default=2, help="Sampling worker processes.")
@click.option("--seed", type=int, default=0, help="Random seed (of on-the-spot baseline training).")
@click.option("--device", default="cpu", help="Torch device.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output directory [default: runs/evaluate-FAMILY-TIMESTAMP].",
)
@click.option("--force", is_flag=True, help="Overwrite the results of an earlier evaluate in --out.")
@click.option(
    "--same-seeds",
    is_flag=True,
    help="Run every k's episodes on k = 0's seeds, so a policy that does not change reads the same at every k "
    "(not with a fallback, whose choice would be scored on the episodes it was made on).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def evaluate(
    family: str | None,
    checkpoints: tuple[Path, ...],
    splits: tuple[str, ...],
    n_tasks: int,
    seeds: int,
    steps: int,
    episodes: int | None,
    baselines: str,
    multitask_checkpoint: Path | None,
    recurrent_checkpoint: Path | None,
    oracle_checkpoint: Path | None,
    fallback: str | None,
    workers: int,
    seed: int,
    device: str,
    out: Path | None,
    force: bool,
    same_seeds: bool,
    progress: bool,
) -> None:
    """The adaptation protocol: success and return at k = 0..K updates on held-out tasks, with
    95% confidence intervals, against baselines each adapted with its own best routine.

    \b
    Examples:
      metarobot evaluate --family reach
      metarobot evaluate --family reach --baselines multitask,finetune,oracle,scratch --tasks 20 --seeds 3
      metarobot evaluate --checkpoint runs/a/meta_policy.pt --checkpoint runs/b/meta_policy.pt
    """
    from click.core import ParameterSource

    from metarobot.evaluation import Method, choose_finetune_lr, format_table, write_results
    from metarobot.evaluation import evaluate as run_protocol

    wanted = [b.strip() for b in baselines.split(",") if b.strip() and b.strip() != "none"]
    for b in wanted:
        if b not in BASELINES:
            raise click.BadParameter(f"unknown baseline {b!r} ({', '.join(BASELINES)})", param_hint="--baselines")
    _check_common(workers, seed, device)
    check_int("--tasks", n_tasks, 1, MAX_EVAL_TASKS)
    check_int("--seeds", seeds, 1, MAX_EVAL_SEEDS)
    _check_adapt_budget(steps, episodes)
    if out is not None:
        refuse_existing([out / "results.json", out / "adaptation.png"], force)
    paths = list(checkpoints)
    learners = []
    try:
        if not paths:
            first, ckpt = _load_learner(family, None, workers, device, fallback)
            learners.append(first)
            paths = [ckpt]
        else:
            for p in paths:
                learners.append(_load_learner(family, p, workers, device, fallback)[0])
                family = family or learners[0].config.family
                if learners[-1].config.family != learners[0].config.family:
                    raise MetarobotError(
                        f"checkpoint {p} is for family {learners[-1].config.family!r}, "
                        f"not {learners[0].config.family!r}"
                    )
        base = learners[0]
        fam = base.config.family

        def shipped(algo: str) -> Path | None:
            """The family's shipped baseline policy, used unless checkpoints were given to compare."""
            from metarobot.policies.pretrained import has_pretrained, pretrained_path, shipped_file

            if checkpoints:
                return None
            if algo == "recurrent":
                return shipped_file(fam, "recurrent", ".zip")
            return pretrained_path(fam, algo) if has_pretrained(fam, algo) else None

        # the env steps a baseline trained here gets: the method's, and its fallback's (a method
        # with a fallback is two trained policies)
        budget = base.env_steps + (base.fallback.env_steps if base.fallback is not None else 0)
        if budget == 0:  # a policy that acts untrained (identify): no budget to match
            given = {"multitask": multitask_checkpoint, "oracle": oracle_checkpoint, "recurrent": recurrent_checkpoint}
            missing = [a for a in ("multitask", "recurrent", "oracle") if given[a] is None and shipped(a) is None]
            defaulted = click.get_current_context().get_parameter_source("baselines") == ParameterSource.DEFAULT
            if defaulted:  # the plain command runs what it can, and says what it left out
                dropped = [b for b in wanted if b in missing or (b == "finetune" and "multitask" in missing)]
                wanted = [b for b in wanted if b not in dropped]
                if dropped:
                    click.echo(
                        f"evaluate: no {', '.join(dropped)} baseline for {fam!r}: its method acts untrained and none "
                        "is shipped (pass --baselines with --multitask-checkpoint and the like to add them)",
                        err=True,
                    )
            for algo in missing:
                if algo in wanted or (algo == "multitask" and "finetune" in wanted):
                    raise MetarobotError(
                        f"{paths[0]} was trained with 0 env steps, so a {algo} baseline of the same budget would be "
                        f"untrained and none is shipped for {fam!r}: pass --{algo}-checkpoint"
                    )
        if same_seeds and any(lr.fallback is not None for lr in learners):
            raise MetarobotError(
                "--same-seeds would score a fallback's choice on the episodes it was made on; add --fallback none"
            )
        out_dir = _out_dir(out, f"evaluate-{fam}")
        n = base.config.episodes_per_update if episodes is None else episodes
        methods = []
        algos = [lr.config.algo for lr in learners]
        for p, lr in zip(paths, learners):
            name = lr.config.algo if algos.count(lr.config.algo) == 1 else f"{lr.config.algo}:{Path(p).parent.name}"
            inner = lr.config.algo
            if lr.fallback is not None:  # a method with a fallback is not the method alone
                name, inner = f"{name}+fallback", f"{inner}, fallback {lr.fallback.config.algo}"
            methods.append(Method(name, lr.meta_state(), lr, inner))
        notes: dict[str, Any] = {}
        if fallback is not None:
            notes["fallback"] = fallback

        def baseline(algo: str, given: Path | None) -> Any:
            """A baseline policy's learner: given, shipped, or trained now on the same budget."""
            from metarobot.meta import MetaLearner

            given = given or shipped(algo)
            if given is not None:
                learner = _load_learner(fam, given, workers, device)[0]
                notes[f"{algo}_checkpoint"] = str(given)
            else:
                click.echo(f"training a {algo} baseline with the same env-step budget ({budget:,} steps)", err=True)
                cfg = base.config.replace(algo=algo, seed=seed, fallback=None, init_from=None)
                per_iter = cfg.steps_per_iteration(base.episode_steps)
                learner = MetaLearner(cfg.replace(iterations=max(1, round(budget / per_iter))))
                learner.train()
            learners.append(learner)
            return learner

        if "multitask" in wanted or "finetune" in wanted:
            mt = baseline("multitask", multitask_checkpoint)
            if "multitask" in wanted:
                methods.append(Method("multitask", mt.meta_state(), mt, "none", update=False))
            if "finetune" in wanted:
                click.echo("choosing the fine-tuning learning rate on the train split", err=True)
                lr_choice, scores = choose_finetune_lr(mt, steps, n, seed=seed)
                notes["finetune_lr"], notes["finetune_lr_scores"] = lr_choice, scores
                ft = mt.load_as(ppo_lr=lr_choice)
                learners.append(ft)
                methods.append(Method("finetune", ft.meta_state(), ft, f"ppo lr {lr_choice:g}"))
        if "recurrent" in wanted:
            from metarobot.recurrent import RecurrentBaseline, load_recurrent, train_recurrent

            path = recurrent_checkpoint or shipped("recurrent")
            if path is not None:
                model = load_recurrent(path)
                notes["recurrent_checkpoint"] = str(path)
            else:
                click.echo(f"training a recurrent baseline with the same env-step budget ({budget:,})", err=True)
                model = train_recurrent(fam, max(budget, 1), seed=seed)
            rec = RecurrentBaseline(model, fam)
            learners.append(rec)
            methods.append(Method("recurrent", None, rec, "memory (no update)", update=False))  # type: ignore[arg-type]
        if "oracle" in wanted:
            oracle = baseline("oracle", oracle_checkpoint)
            methods.append(Method("oracle", oracle.meta_state(), oracle, "none", update=False))
        if "scratch" in wanted and not base.has_update:
            click.echo(f"no scratch baseline: {base.config.algo} has no update to run from scratch", err=True)
        elif "scratch" in wanted:
            methods.append(Method("scratch", None, base, base.config.algo, fallback=False))
        splits = splits or ("test", "ood")
        total = len(splits) * len(methods) * seeds * (steps + 1) * n_tasks
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="task-update", desc=f"evaluate {fam}", dynamic_ncols=True)
        results = run_protocol(
            methods,
            fam,
            splits,
            n_tasks,
            seeds,
            steps,
            n,
            progress=(lambda k: bar.update(k)) if bar is not None else None,
            same_seeds=same_seeds,
        )
        if bar is not None:
            bar.close()
        results["checkpoints"] = [str(p) for p in paths]
        results["baselines"] = notes
        json_path, png_path = write_results(results, out_dir)
        click.echo(format_table(results))
        click.echo(f"results: {json_path}\nplot: {png_path}")
    finally:
        for lr in learners:
            lr.close()


@cli.command()
@_task_options
@click.option("--before-after", is_flag=True, help="Side by side: before adaptation and after --steps updates.")
@click.option("--steps", type=int, help="Adaptation updates K for --before-after [default: meta-training's].")
@click.option("--adapt-episodes", type=int, help="Episodes per update N [default: meta-training's].")
@click.option("--episodes", type=int, default=1, help="Episodes to render.")
@click.option("--width", type=int, default=320, help="Frame width (pixels) of each panel.")
@click.option("--height", type=int, default=240, help="Frame height (pixels).")
@click.option("--fps", type=float, help="Frames per second [default: the env's control rate].")
@click.option("--format", "fmt", type=click.Choice(["mp4", "gif"]), default="mp4", help="Video format.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Video file [default: runs/render-FAMILY-TIMESTAMP.FORMAT].",
)
@click.option("--force", is_flag=True, help="Overwrite an existing video file.")
def render(
    family: str | None,
    checkpoint: Path | None,
    split: str,
    index: int,
    task_file: Path | None,
    urdf: Path | None,
    object_urdf: Path | None,
    object_mesh: Path | None,
    object_mass: float | None,
    object_density: float | None,
    object_scale: float | None,
    ee_link: str | None,
    left_wheels: str | None,
    right_wheels: str | None,
    fallback: str | None,
    workers: int,
    seed: int,
    device: str,
    before_after: bool,
    steps: int | None,
    adapt_episodes: int | None,
    episodes: int,
    width: int,
    height: int,
    fps: float | None,
    fmt: str,
    out: Path | None,
    force: bool,
) -> None:
    """Render rollouts of a meta-policy on a task to MP4 or GIF (offscreen, TinyRenderer).

    \b
    Examples:
      metarobot render --family reach --before-after
      metarobot render --family cartpole --split ood --index 2 --format gif --episodes 2
    """
    from click.core import ParameterSource

    from metarobot.render import render_rollouts

    _check_common(workers, seed, device, index)
    _check_adapt_budget(steps, adapt_episodes, "--adapt-episodes")
    check_int("--episodes", episodes, 1, MAX_RENDER_EPISODES)
    check_int("--width", width, 32, 3840)
    check_int("--height", height, 32, 2160)
    if fps is not None:
        check_float("--fps", fps, 0.0, 240.0, low_open=True)
    if out is not None:
        suffix = out.suffix.lower()
        if suffix in (".mp4", ".gif") and suffix[1:] != fmt:
            if click.get_current_context().get_parameter_source("fmt") != ParameterSource.DEFAULT:
                raise MetarobotError(f"--out {out} is a {suffix[1:]} file but --format is {fmt}")
            fmt = suffix[1:]
        out = out if suffix in (".mp4", ".gif") else out.with_name(f"{out.name}.{fmt}")
        if out.is_dir():
            raise MetarobotError(f"--out {out} is a directory; give a video file name")
        refuse_existing([out], force)
    family, rerouted = _file_family(family, checkpoint, urdf)
    task_family = _family_for(family, checkpoint)
    mesh = (object_mesh, object_mass, object_density, object_scale)
    task = _pick_task(
        task_family, split, index, task_file, urdf, ee_link, left_wheels, right_wheels, object_urdf, *mesh
    )
    if rerouted:
        click.echo(rerouted, err=True)
    _report_file_task(task_family, task)
    learner, ckpt = _load_learner(family, checkpoint, workers, device, fallback, task)
    try:
        fam = learner.config.family
        panels = 2 if before_after else 1
        frame_bytes = 2 * panels * episodes * learner.family.episode_steps * width * height * 3
        if frame_bytes > MEMORY_FRACTION * available_memory():
            raise MetarobotError(
                f"--episodes {episodes} at {width}x{height} need about {frame_bytes / 2**30:.1f} GiB of frames; "
                f"{available_memory() / 2**30:.1f} GiB is available"
            )
        if out is None:
            out = _out_dir(Path("runs"), "") / f"render-{fam}-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        else:
            _out_dir(out.parent if str(out.parent) else Path("."), "")
        algo = learner.config.algo
        states = [(f"{algo} k=0", learner.meta_state())]
        if before_after:
            k = learner.config.inner_steps if steps is None else steps
            n = learner.config.episodes_per_update if adapt_episodes is None else adapt_episodes
            click.echo(f"adapting for {k} update(s) of {n} episodes...", err=True)
            result = learner.adapt(task, steps=k, episodes=n, seed=seed)
            kept = learner.runner_for(result.final_state)[0]
            chosen = f" (fallback: {kept.config.algo})" if kept is not learner else ""
            states.append((f"{algo} k={k}{chosen}", result.final_state))
        info = render_rollouts(
            learner, task, states, out, episodes=episodes, width=width, height=height, fps=fps, seed=seed
        )
        for panel in info["panels"]:  # type: ignore[union-attr]
            click.echo(
                f"{panel['panel']}: returns {[round(r, 1) for r in panel['returns']]}, successes {panel['successes']}"
            )
        click.echo(
            f"video: {info['path']} ({info['frames']} frames, {info['size'][0]}x{info['size'][1]}, {info['fps']:g} fps)"
        )
    finally:
        learner.close()


@cli.command()
@click.option("--family", required=True, help="Task family the file is for (reach, navigate, grasp).")
@_file_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def inspect(
    family: str,
    urdf: Path | None,
    object_urdf: Path | None,
    object_mesh: Path | None,
    object_mass: float | None,
    object_density: float | None,
    object_scale: float | None,
    ee_link: str | None,
    left_wheels: str | None,
    right_wheels: str | None,
    as_json: bool,
) -> None:
    """Print what metarobot understands of your robot or object file (chain, joints, end
    effector, wheels, sizes, masses) without running a policy.

    \b
    Examples:
      metarobot inspect --family reach --urdf panda.urdf
      metarobot inspect --family navigate --urdf husky.urdf
      metarobot inspect --family grasp --object-mesh mug.obj --object-mass 0.2
    """
    fam = get_family(family)
    if urdf is None and object_urdf is None and object_mesh is None:
        raise click.UsageError("give --urdf, --object-urdf or --object-mesh")
    mesh = (object_mesh, object_mass, object_density, object_scale)
    task = _pick_task(fam, "test", 0, None, urdf, ee_link, left_wheels, right_wheels, object_urdf, *mesh)
    _report_file_task(fam, task, as_json=as_json, err=False)


def _limit_torch_threads() -> None:
    """One intra-op torch thread in the main process (workers set their own). Our networks are
    small: extra threads gain nothing, and on a machine whose cores the sampling workers keep
    busy, OpenMP threads waiting on each other slowed PPO updates many times over (seen here).
    ``METAROBOT_TORCH_THREADS`` overrides it."""
    import os

    threads = os.environ.get("METAROBOT_TORCH_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    except (ImportError, ValueError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning known errors into exit code 2."""
    try:
        end_command_start()  # Ctrl-C raises KeyboardInterrupt again, handled below
        _limit_torch_threads()  # imports torch: seconds in which a Ctrl-C must not print a traceback
        cli.main(args=argv, prog_name="metarobot", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except SystemExit as exc:
        if exc.code == 130 and argv is None:
            # Ctrl-C of the console command: everything is saved and closed by now, and the
            # interpreter's teardown of torch/PyBullet took ~2 s on a loaded machine; leave now
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except MetarobotError as exc:
        if _State.debug:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # a file that could not be read or written, outside the checked paths
        if _State.debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        sys.exit(2)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
