"""``python -m harness.cli``: what torchrun launches (``torchrun ... -m harness.cli run ...``)."""
from harness.cli import main

main()
