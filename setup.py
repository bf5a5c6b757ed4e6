"""Build hook for the one compiled module; everything else about the package is in pyproject.toml.

``harness.metrics.coco._ckernels`` (plain C, CPython API and the buffer protocol, no numpy headers) speeds up
the COCO evaluator.  It is optional: without a C compiler the install still succeeds and the evaluator uses
its numpy path, which gives the same numbers.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "harness.metrics.coco._ckernels",
            ["harness/metrics/coco/_ckernels.c"],
            # no fused multiply-adds: the kernels reproduce numpy's and pycocotools' arithmetic to the bit
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,
        )
    ]
)
