"""``python -m fal_notebook …`` is ``fal-notebook …``."""

import sys

from fal_notebook.cli import main

if __name__ == "__main__":
    sys.exit(main())
