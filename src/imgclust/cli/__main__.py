"""``python -m imgclust.cli``."""

from imgclust.cli import main

main()
