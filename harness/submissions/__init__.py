"""Official submission formats (``SUBMISSIONS``): how a run writes its predictions, and how ``bench eval`` reads them.

One module per format, registered with ``@SUBMISSIONS.register("name")``; a dataset's protocol names its format.
"""
from harness.core.catalog import SUBMISSIONS  # the registry lives in core; modules here fill it

__all__ = ["SUBMISSIONS"]
