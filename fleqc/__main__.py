"""`python -m fleqc` is the `fleqc` command."""

from fleqc.entry import main

main()
