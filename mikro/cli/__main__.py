"""`python -m mikro.cli` runs the `mikro` command (the tests and the bench call it so)."""

from mikro.cli.entry import run

run()
