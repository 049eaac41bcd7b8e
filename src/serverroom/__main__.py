"""`python -m serverroom` runs the command-line interface."""

from serverroom.cli import main

main()
