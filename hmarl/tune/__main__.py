"""``python -m hmarl.tune``: the same as ``hmarl tune``."""

from hmarl.tune.cli import entry_point

if __name__ == "__main__":
    entry_point()
