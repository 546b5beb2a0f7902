"""Launcher so that ``python cli.py ...`` works from a checkout; the app is ``metarobot/cli.py``."""

from metarobot.cli import main

if __name__ == "__main__":
    main()
