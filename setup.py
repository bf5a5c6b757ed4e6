"""Build hook for the compiled modules; everything else about the package is in pyproject.toml.

``harness.metrics.coco._ckernels`` speeds up the COCO evaluator and ``harness.metrics._streamkernels`` the
semantic and flow metrics (plain C, CPython API and the buffer protocol, no numpy headers).  Both are
optional: without a C compiler the install still succeeds and the metrics use their numpy paths, which give
the same numbers.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "harness.metrics.coco._ckernels",
            ["harness/metrics/coco/_ckernels.c"],
            depends=["harness/metrics/numpy_sum.h"],
            # no fused multiply-adds: the kernels reproduce numpy's and pycocotools' arithmetic to the bit
            extra_compile_args=["-O2", "-ffp-contract=off"],
            optional=True,
        ),
        Extension(
            "harness.metrics._streamkernels",
            ["harness/metrics/_streamkernels.c"],
            depends=["harness/metrics/numpy_sum.h"],
            # no fused multiply-adds: the flow sums reproduce numpy's arithmetic to the bit (sqrt without errno
            # is the same correctly rounded instruction, minus a libm call for NaN)
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-math-errno"],
            optional=True,
        ),
    ]
)
