"""Reading inputs and writing outputs."""

from imgclust.io.images import DEFAULT_MAX_PIXELS, read_image
from imgclust.io.outputs import StagedOutputDir, check_output_dir

__all__ = ["DEFAULT_MAX_PIXELS", "StagedOutputDir", "check_output_dir", "read_image"]
