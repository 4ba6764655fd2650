"""``python -m imgclust``."""

from imgclust.cli import main

# Guarded: a Dask worker process started by spawn imports this module again.
if __name__ == "__main__":
    main()
