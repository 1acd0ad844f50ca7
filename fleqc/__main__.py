"""`python -m fleqc` is the `fleqc` command."""

from fleqc.cli import main

main(prog_name="fleqc")
