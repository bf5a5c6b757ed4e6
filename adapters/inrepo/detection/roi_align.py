"""RoIAlign (He et al., Mask R-CNN, 2017) written out: what the two-stage detector crops its RoI features with.

Each RoI is divided into P x P bins; each bin averages ``sampling_ratio``^2 regularly spaced points, each
bilinearly interpolated from the four nearest feature cells: no rounding of the RoI or its bins (RoIPool's
quantisation is what RoIAlign removes).  The conventions are those of ``torchvision.ops.roi_align`` with a fixed
``sampling_ratio`` (the test compares the two): with ``aligned`` the box is shifted by half a pixel so that a pixel
centre maps to a feature cell centre; a point more than one cell outside the map contributes zero, a point
within one cell outside is clamped to the border; below ``aligned`` a RoI is at least one cell wide.

The bilinear weights are separable, so a RoI's samples are gathered as a (rows x columns) grid of the four
corner cells and combined with outer products of the row and column weights.
"""
from __future__ import annotations

import torch


def _axis(start: torch.Tensor, length: torch.Tensor, bins: int, ratio: int, size: int) -> torch.Tensor:
    """(R, bins, size) interpolation matrix of one axis: row p holds the weight each of the ``size`` cells gets
    in bin p, i.e. the bilinear weights of the bin's ``ratio`` sample points, averaged (zero for a point more
    than one cell outside the map)."""
    step = length / bins
    offsets = torch.arange(bins * ratio, dtype=start.dtype, device=start.device)
    bin_index, sub_index = offsets // ratio, offsets % ratio
    points = start[:, None] + bin_index[None] * step[:, None] + (sub_index[None] + 0.5) * step[:, None] / ratio
    valid = (points >= -1.0) & (points <= size)
    points = points.clamp(min=0.0)
    low = points.floor().long()
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    points = torch.where(at_edge, low.to(points.dtype), points)
    fraction = points - low.to(points.dtype)
    valid = valid.to(points.dtype) / ratio
    matrix = torch.zeros((len(start), bins * ratio, size), dtype=start.dtype, device=start.device)
    matrix.scatter_add_(2, low[..., None], ((1.0 - fraction) * valid)[..., None])
    matrix.scatter_add_(2, high[..., None], (fraction * valid)[..., None])
    return matrix.reshape(len(start), bins, ratio, size).sum(dim=2)


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int, spatial_scale: float,
              sampling_ratio: int = 2, aligned: bool = True) -> torch.Tensor:
    """(N, C, H, W) features, (R, 5) RoIs (batch index, x0, y0, x1, y1 in input pixels) -> (R, C, P, P).

    Computed as rows (R, P, H) @ features (C, H, W) @ columns (R, W, P): two matrix products, whose gradients are
    two more, instead of R x C x P^2 x ratio^2 gathered samples (whose backward is a slow scatter)."""
    if sampling_ratio < 1:
        raise ValueError("this RoIAlign takes a fixed sampling_ratio >= 1")
    channels, height, width = features.shape[1:]
    out = features.new_zeros((len(rois), channels, output_size, output_size))
    offset = 0.5 if aligned else 0.0
    per_image = features.unbind(0)  # one backward for all images (a select per image zero-fills the whole grad)
    for image in torch.unique(rois[:, 0].long()).tolist():
        chosen = torch.nonzero(rois[:, 0].long() == image, as_tuple=True)[0]
        boxes = rois[chosen, 1:].detach().to(features.dtype) * spatial_scale - offset
        size = boxes[:, 2:] - boxes[:, :2]
        if not aligned:
            size = size.clamp(min=1.0)
        rows = _axis(boxes[:, 1], size[:, 1], output_size, sampling_ratio, height)  # (R, P, H)
        columns = _axis(boxes[:, 0], size[:, 0], output_size, sampling_ratio, width)  # (R, P, W)
        count = len(chosen)
        # one GEMM over all RoIs' columns: (C * H, W) @ (W, R * P) -> (R, H, C * P) for the rows' batched product
        across = per_image[image].reshape(channels * height, width) @ columns.reshape(count * output_size, width).T
        across = across.reshape(channels, height, count, output_size).permute(2, 1, 0, 3)
        pooled = torch.bmm(rows, across.reshape(count, height, channels * output_size))  # (R, P, C * P)
        out[chosen] = pooled.reshape(count, output_size, channels, output_size).permute(0, 2, 1, 3)
    return out
