"""Rollout videos: PyBullet's TinyRenderer in DIRECT mode (no display, no GL), written with
imageio (MP4 through the ffmpeg binary that ``imageio-ffmpeg`` ships, or GIF)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metarobot.errors import MetarobotError
from metarobot.family import Task
from metarobot.meta import MetaLearner
from metarobot.online import ConstantContext, transition_rows
from metarobot.runio import atomic_save
from metarobot.sampling import as_box

CAPTION_HEIGHT = 28


def rollout_frames(
    learner: MetaLearner,
    task: Task,
    state: dict[str, torch.Tensor],
    episodes: int,
    width: int,
    height: int,
    seed: int = 0,
) -> tuple[list[list[np.ndarray]], list[tuple[float, bool]]]:
    """Frames of ``episodes`` deterministic episodes of the policy ``state`` on ``task``, and
    each episode's (return, success)."""
    learner, state = learner.runner_for(state)  # the fallback's, where an adaptation chose it
    own = getattr(learner, "rollout_frames", None)
    if own is not None:  # a learner that runs its episodes its own way (rl2: one trial, with memory)
        return own(task, state, episodes, width, height, seed)  # type: ignore[no-any-return]
    env = learner.family.make_env(task, render_mode="rgb_array")
    # the job an adaptation would run: its parameters, and the context the policy reads
    # (fixed, or re-estimated after every step for an online estimator), as in sampling
    job = learner.make_job(task, state, 1, seed)
    learner.policy.load_state_dict(job.params)
    stream = job.online.start(1) if job.online is not None else ConstantContext(job.context, 1)
    identified = job.actions.start(1) if job.actions is not None else None
    action_space = as_box(env.action_space)
    low, high = action_space.low, action_space.high
    per_episode: list[list[np.ndarray]] = []
    outcomes: list[tuple[float, bool]] = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            frames = [env.render_frame(width, height)]
            done, total = False, 0.0
            info: dict[str, Any] = {}
            while not done:
                seen = np.concatenate([obs[None].astype(np.float32), stream.contexts()], axis=1)
                with torch.no_grad():
                    action = learner.policy(torch.as_tensor(seen), deterministic=True)[0].numpy()
                if identified is not None:  # the family sets the action it identifies, as in sampling
                    action = identified.apply(action)
                next_obs, r, term, trunc, info = env.step(np.clip(action[0], low, high))
                total += float(r)
                done = term or trunc
                if not done:
                    seen_now = transition_rows(obs[None], action, np.array([r]), next_obs[None])
                    stream.observe(np.zeros(1, dtype=int), seen_now)
                    if identified is not None:
                        identified.observe(np.zeros(1, dtype=int), seen_now)
                obs = next_obs
                frames.append(env.render_frame(width, height))
            outcomes.append((total, bool(info.get("is_success", False))))
            per_episode.append(frames)
    finally:
        env.close()
    return per_episode, outcomes


@functools.cache
def _caption_font() -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except TypeError:  # older Pillow
        return ImageFont.load_default()


def caption(frame: np.ndarray, text: str, ok: bool | None = None) -> np.ndarray:
    """The frame with a caption bar above it (green text for success, red for failure)."""
    from PIL import Image, ImageDraw

    h, w, _ = frame.shape
    canvas = Image.new("RGB", (w, h + CAPTION_HEIGHT), (30, 30, 30))
    canvas.paste(Image.fromarray(frame), (0, CAPTION_HEIGHT))
    draw = ImageDraw.Draw(canvas)
    font = _caption_font()
    color = (240, 240, 240) if ok is None else ((120, 230, 120) if ok else (240, 120, 110))
    draw.text((6, 6), text, fill=color, font=font)
    return np.asarray(canvas)


def _even(frame: np.ndarray) -> np.ndarray:
    h, w, _ = frame.shape
    return frame[: h - h % 2, : w - w % 2]


def panel_frames(episodes: list[list[np.ndarray]], label: str, outcomes: list[tuple[float, bool]]) -> list[np.ndarray]:
    """Caption every frame with the panel label and its episode's outcome."""
    out: list[np.ndarray] = []
    for ep, (frames, (ret, ok)) in enumerate(zip(episodes, outcomes)):
        episode = f" ep {ep + 1}" if len(episodes) > 1 else ""
        text = f"{label}{episode}  return {ret:.1f}  {'success' if ok else 'failure'}"
        out.extend(caption(f, text, ok) for f in frames)
    return out


def side_by_side(panels: Sequence[list[np.ndarray]]) -> list[np.ndarray]:
    """Panels next to each other; a shorter panel holds its last frame."""
    n = max(len(p) for p in panels)
    frames = []
    for i in range(n):
        frames.append(np.concatenate([p[min(i, len(p) - 1)] for p in panels], axis=1))
    return frames


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    import imageio.v2 as imageio

    if not frames:
        raise MetarobotError("no frames to write")
    frames_out: Any = [_even(f) for f in frames]
    path = Path(path)

    def write(tmp: Path) -> None:
        if path.suffix.lower() == ".gif":
            imageio.mimwrite(tmp, frames_out, duration=1000.0 / fps, loop=0)
        else:
            imageio.mimwrite(
                tmp, frames_out, fps=fps, codec="libx264", quality=7, macro_block_size=1, ffmpeg_log_level="error"
            )

    # a temporary file renamed into place: a failure never leaves a partial video at ``path``
    return atomic_save(path, write)


def render_rollouts(
    learner: MetaLearner,
    task: Task,
    states: Sequence[tuple[str, dict[str, torch.Tensor]]],
    path: Path,
    episodes: int = 1,
    width: int = 320,
    height: int = 240,
    fps: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Render each ``(label, state)`` on ``task`` (side by side if several) to ``path``."""
    if width < 32 or height < 32 or width > 3840 or height > 2160:
        raise MetarobotError(f"video size {width}x{height} is out of range (32..3840 x 32..2160)")
    if episodes < 1:
        raise MetarobotError(f"--episodes must be >= 1, got {episodes}")
    panels, summary = [], []
    for label, state in states:
        episode_frames, outcomes = rollout_frames(learner, task, state, episodes, width, height, seed)
        panels.append(panel_frames(episode_frames, label, outcomes))
        summary.append({"panel": label, "returns": [o[0] for o in outcomes], "successes": [o[1] for o in outcomes]})
    frames = side_by_side(panels)
    fps = fps or float(learner.family.control_hz)
    write_video(frames, path, fps)
    h, w, _ = _even(frames[0]).shape
    return {"path": str(path), "frames": len(frames), "fps": fps, "size": [w, h], "panels": summary}
