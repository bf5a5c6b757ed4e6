"""Classical dense optical flow: coarse-to-fine Lucas-Kanade and Horn-Schunck with warping, and Farneback.

All three estimate the flow from frame 1 to frame 2 (``I1(x) ~ I2(x + flow(x))``) on the grey image.  Lucas-Kanade
and Horn-Schunck only hold for motions of about a pixel, so both run on a Gaussian pyramid: the flow found at a
coarse level is doubled and upsampled, frame 2 is warped by it, and the level solves for the remaining motion.
They differ in how they fill in where the image says little (the aperture problem): Lucas-Kanade assumes the flow
is constant in a Gaussian window around each pixel and solves a 2x2 system there (Tikhonov-regularised, so flat
regions keep the coarse estimate); Horn-Schunck adds a global smoothness term and relaxes it with Jacobi
iterations.  Farneback is OpenCV's polynomial-expansion method.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: neighbour average of Horn & Schunck (1981): weights 1/6 at the four sides, 1/12 at the corners
_HS_AVERAGE = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], np.float32) / 12.0


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 in 0..255."""
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY).astype(np.float32)


def pyramid(image: np.ndarray, levels: int, min_size: int = 8) -> list[np.ndarray]:
    """Finest first; stops early when a level would be smaller than ``min_size`` on either side."""
    levels_out = [image]
    while len(levels_out) < levels and min(levels_out[-1].shape[:2]) // 2 >= min_size:
        levels_out.append(cv2.pyrDown(levels_out[-1]))
    return levels_out


def upsample_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a flow field to ``shape`` (H, W), scaling each component by the change of width / height."""
    height, width = shape
    scaled = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    scaled[..., 0] *= width / flow.shape[1]
    scaled[..., 1] *= height / flow.shape[0]
    return scaled


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at x + flow(x) (bilinear; edges replicated), i.e. frame 2 pulled back onto frame 1."""
    height, width = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def gradients(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Central differences (the 1/2 [-1, 0, 1] kernel) with replicated borders."""
    kernel = np.array([[-0.5, 0.0, 0.5]], np.float32)
    return (cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE),
            cv2.filter2D(image, -1, kernel.T, borderType=cv2.BORDER_REPLICATE))


def _linearise(first: np.ndarray, second: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ix, Iy, It of the brightness-constancy constraint around ``flow`` (gradients averaged over both frames)."""
    warped = warp(second, flow)
    gx1, gy1 = gradients(first)
    gx2, gy2 = gradients(warped)
    return 0.5 * (gx1 + gx2), 0.5 * (gy1 + gy2), warped - first


@dataclass(frozen=True)
class LucasKanade:
    """Dense pyramidal Lucas-Kanade with iterative warping at each level."""

    levels: int = 5
    iterations: int = 2  # more fit textured areas more tightly but let occluded pixels run off (train-split EPE)
    window_sigma: float = 2.5  # Gaussian weighting of the neighbourhood each pixel's 2x2 system sums over
    presmooth_sigma: float = 1.0
    regularisation: float = 1.0  # Tikhonov term, in (grey level / pixel)^2
    median: int = 5  # median filter of each level's result (0: none), against outliers at motion boundaries
    max_step: float = 1.0  # pixels: the linearisation holds for about a pixel, so longer updates are cut to this

    def __call__(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        first, second = (cv2.GaussianBlur(to_grey(i), (0, 0), self.presmooth_sigma) for i in (image1, image2))
        pyramid1, pyramid2 = pyramid(first, self.levels), pyramid(second, self.levels)
        flow = np.zeros((*pyramid1[-1].shape, 2), np.float32)
        for level1, level2 in zip(reversed(pyramid1), reversed(pyramid2)):
            if flow.shape[:2] != level1.shape:
                flow = upsample_flow(flow, level1.shape)
            for _ in range(self.iterations):
                flow += self._step(level1, level2, flow)
            if self.median:
                flow = cv2.medianBlur(flow, self.median)
        return flow

    def _step(self, first: np.ndarray, second: np.ndarray, flow: np.ndarray) -> np.ndarray:
        ix, iy, it = _linearise(first, second, flow)

        def window(values: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(values, (0, 0), self.window_sigma, borderType=cv2.BORDER_REPLICATE)

        sxx, sxy, syy = window(ix * ix) + self.regularisation, window(ix * iy), window(iy * iy) + self.regularisation
        bx, by = -window(ix * it), -window(iy * it)
        determinant = sxx * syy - sxy * sxy  # > 0: the regularised tensor is positive definite
        step = np.stack([(syy * bx - sxy * by) / determinant, (sxx * by - sxy * bx) / determinant], axis=2)
        length = np.sqrt((step * step).sum(axis=2, keepdims=True))
        return step * np.minimum(1.0, self.max_step / np.maximum(length, 1e-12))


@dataclass(frozen=True)
class HornSchunck:
    """Coarse-to-fine Horn-Schunck: at each warp, Jacobi iterations of the linearised Euler-Lagrange equations."""

    alpha: float = 12.0  # smoothness weight, in grey levels (intensities are 0..255)
    levels: int = 5
    warps: int = 2
    iterations: int = 100
    presmooth_sigma: float = 1.0
    median: int = 5

    def __call__(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        first, second = (cv2.GaussianBlur(to_grey(i), (0, 0), self.presmooth_sigma) for i in (image1, image2))
        pyramid1, pyramid2 = pyramid(first, self.levels), pyramid(second, self.levels)
        flow = np.zeros((*pyramid1[-1].shape, 2), np.float32)
        for level1, level2 in zip(reversed(pyramid1), reversed(pyramid2)):
            if flow.shape[:2] != level1.shape:
                flow = upsample_flow(flow, level1.shape)
            for _ in range(self.warps):
                flow = self._relax(level1, level2, flow)
            if self.median:
                flow = cv2.medianBlur(flow, self.median)
        return flow

    def _relax(self, first: np.ndarray, second: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """Solve for the total flow (u, v) with the constraint linearised at ``flow``: Ix u + Iy v + c = 0."""
        ix, iy, it = _linearise(first, second, flow)
        constant = it - ix * flow[..., 0] - iy * flow[..., 1]
        denominator = self.alpha ** 2 + ix * ix + iy * iy
        u, v = flow[..., 0].copy(), flow[..., 1].copy()
        for _ in range(self.iterations):
            mean_u = cv2.filter2D(u, -1, _HS_AVERAGE, borderType=cv2.BORDER_REPLICATE)
            mean_v = cv2.filter2D(v, -1, _HS_AVERAGE, borderType=cv2.BORDER_REPLICATE)
            residual = (ix * mean_u + iy * mean_v + constant) / denominator
            u, v = mean_u - ix * residual, mean_v - iy * residual
        return np.stack([u, v], axis=2)


@dataclass(frozen=True)
class Farneback:
    """OpenCV's ``calcOpticalFlowFarneback`` on the grey frames."""

    pyr_scale: float = 0.5
    levels: int = 4
    winsize: int = 15
    iterations: int = 5
    poly_n: int = 5
    poly_sigma: float = 1.1
    gaussian_window: bool = True

    def __call__(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        first, second = (cv2.cvtColor(np.ascontiguousarray(i), cv2.COLOR_RGB2GRAY) for i in (image1, image2))
        flags = cv2.OPTFLOW_FARNEBACK_GAUSSIAN if self.gaussian_window else 0
        # OpenCV allocates the output when ``flow`` is None; its type stubs do not allow None there
        flow = cv2.calcOpticalFlowFarneback(first, second, None, self.pyr_scale, self.levels, self.winsize,  # type: ignore[call-overload]
                                            self.iterations, self.poly_n, self.poly_sigma, flags)
        return flow.astype(np.float32)
