"""fal.ai's image and video models, native in Jupyter.

``%load_ext fal_notebook`` gives ``%fal`` / ``%%fal``; ``fal_notebook.submit(...)`` returns a ``Job`` at once.
Importing this package is cheap: httpx, Pillow and ipywidgets load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
