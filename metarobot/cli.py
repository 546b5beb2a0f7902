"""The ``metarobot`` command line. Commands stay thin and call library functions.

Bad input raises ``MetarobotError`` (or a Click usage error): one line on stderr, exit code 2,
no traceback unless ``--debug``.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import click

import metarobot
from metarobot.config import ALGOS, MetaConfig, load_yaml_config
from metarobot.errors import MetarobotError
from metarobot.registry import family_names, get_family


class _State:
    debug = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(metarobot.__version__, prog_name="metarobot")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def cli(debug: bool) -> None:
    """Meta-train robot policies that adapt in a few gradient steps to unseen robots.

    \b
    Typical use:
      metarobot families
      metarobot meta-train --family reach
    """
    _State.debug = debug


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def families(name: str | None, as_json: bool) -> None:
    """List the task families and their parameter ranges (or one family's, given NAME)."""
    names = [name] if name else family_names()
    out: dict[str, Any] = {}
    for n in names:
        fam = get_family(n)
        out[n] = {"env_id": fam.env_id, "summary": fam.summary, "ranges": fam.ranges()}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    for n, desc in out.items():
        click.secho(f"{n}", bold=True, nl=False)
        click.echo(f"  ({desc['env_id']}): {desc['summary']}")
        width = max(len(k) for k in desc["ranges"])
        for key, value in desc["ranges"].items():
            click.echo(f"    {key:<{width}}  {value}")


def _settings(ctx: click.Context, config_file: Path | None, names: list[str]) -> dict[str, Any]:
    """Defaults < YAML file < options given on the command line."""
    from click.core import ParameterSource

    settings: dict[str, Any] = load_yaml_config(config_file) if config_file else {}
    for name in names:
        value = ctx.params.get(name)
        if ctx.get_parameter_source(name) != ParameterSource.DEFAULT or name not in settings:
            settings[name] = value
    return settings


_D = MetaConfig()


@cli.command("meta-train")
@click.option("--family", default=_D.family, help="Task family (see `metarobot families`).")
@click.option("--algo", type=click.Choice(ALGOS), default=_D.algo, help="Meta-learning algorithm.")
@click.option("--iterations", type=int, default=_D.iterations, help="Meta-iterations (outer updates).")
@click.option("--meta-batch", type=int, default=_D.meta_batch, help="Training tasks per iteration.")
@click.option(
    "--episodes-per-update", type=int, default=_D.episodes_per_update, help="Episodes per task per inner update."
)
@click.option("--inner-steps", type=int, default=_D.inner_steps, help="Inner (adaptation) updates per task.")
@click.option("--inner-lr", type=float, default=_D.inner_lr, help="Inner policy-gradient step size.")
@click.option("--outer-lr", type=float, default=_D.outer_lr, help="Outer Adam step size.")
@click.option("--outer-epochs", type=int, default=_D.outer_epochs, help="Outer PPO epochs per meta-batch.")
@click.option("--workers", type=int, default=_D.workers, help="Sampling worker processes (0: in-process).")
@click.option("--eval-tasks", type=int, default=_D.eval_tasks, help="Held-out test tasks in the final summary.")
@click.option("--seed", type=int, default=_D.seed, help="Random seed.")
@click.option("--device", default=_D.device, help="Torch device of the meta-parameters.")
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

    \b
    Examples:
      metarobot meta-train --family reach
      metarobot meta-train --family cartpole --algo fomaml --iterations 30 --out runs/cp
      metarobot meta-train --resume --out runs/cp --iterations 60
    """
    from metarobot.training import Interrupted, Run

    names = [
        "family",
        "algo",
        "iterations",
        "meta_batch",
        "episodes_per_update",
        "inner_steps",
        "inner_lr",
        "outer_lr",
        "outer_epochs",
        "workers",
        "eval_tasks",
        "seed",
        "device",
    ]
    settings = _settings(ctx, config_file, names)
    get_family(str(settings["family"]))  # unknown family: one-line error before anything is written
    config = MetaConfig.from_dict(settings)
    if out is None:
        if resume:
            raise click.UsageError("--resume needs --out DIR of the run to continue")
        out = Path("runs") / f"{config.family}-{config.algo}-{time.strftime('%Y%m%d-%H%M%S')}"
    click.echo(f"run directory: {out}", err=True)
    try:
        summary = Run(out, config, resume=resume).train(progress=progress)
    except Interrupted as exc:
        click.echo(f"Interrupted: {exc}", err=True)
        sys.exit(130)
    held = summary.get("heldout_test")
    click.echo(
        f"finished {summary['iterations']} iterations, {summary['env_steps']:,} env steps in {summary['wall_s']} s"
    )
    if held:
        click.echo(
            f"held-out test tasks ({held['tasks']}): success {held['pre_success']:.0%} before adaptation, "
            f"{held['post_success']:.0%} after {held['inner_steps']} update(s) "
            f"(return {held['pre_return']:.1f} -> {held['post_return']:.1f})"
        )
    click.echo(f"meta-policy: {out / 'meta_policy.pt'}")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning known errors into exit code 2."""
    try:
        cli.main(args=argv, prog_name="metarobot", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
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
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
