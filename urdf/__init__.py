"""Package data: shared URDF parts of generated robots and scenes (load with
``metarobot.envs.sim.shared_urdf(name)``, never relative to the working directory)."""
