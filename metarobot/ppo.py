"""A small SB3 ``PPO`` subclass that trains on rollouts it is handed.

SB3's ``PPO.train`` optimises on ``self.rollout_buffer``, which ``learn`` normally fills by
stepping its own env. The meta-learners sample elsewhere (workers, Ray actors) and only need
the update, so this subclass takes a filled ``RolloutBuffer`` through one public method
instead of the callers writing PPO's private attributes.
"""

from __future__ import annotations

from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer


class BufferPPO(PPO):
    """``PPO`` with ``train_on(buffer)``: SB3's own update on a buffer filled elsewhere."""

    def train_on(self, buffer: RolloutBuffer, batch_size: int | None = None, fresh_optimizer: bool = False) -> None:
        """Run ``n_epochs`` of SB3's PPO update on ``buffer`` (GAE already computed).

        ``batch_size``: minibatch size for this update (default: the constructor's).
        ``fresh_optimizer``: start from a new Adam (an inner loop that adapts one task from
        given parameters must not carry moment estimates over from another task)."""
        if fresh_optimizer:
            self.policy.optimizer = self.policy.optimizer_class(  # type: ignore[call-arg]
                self.policy.parameters(), lr=self.lr_schedule(1.0), **self.policy.optimizer_kwargs
            )
        if batch_size is not None:
            self.batch_size = batch_size
        self.rollout_buffer = buffer
        # a constant schedule: the update does not depend on how far a `learn` call got
        self._current_progress_remaining = 1.0
        self.train()
