"""``python -m imgclust``."""

from imgclust.cli import main

main()
