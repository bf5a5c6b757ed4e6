"""Ground truth and prediction drawn on the image, side by side (Pillow), for the report's gallery.

Small images are enlarged first (nearest-neighbour keeps label maps crisp, bicubic for photos) so text and lines
stay readable.  Detection panels colour by outcome at the run's operating threshold: green = matched, red = false
detection, orange = missed object.  Semantic overlays use the dataset's palette; flow uses the usual colour wheel
(direction = hue, length = saturation).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_SIDE = 240
MAX_SIDE = 520
GREEN, RED, ORANGE, WHITE = (46, 160, 67), (214, 39, 40), (255, 140, 0), (255, 255, 255)
PERSON_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                  (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def font(size: int = 13) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def scale_for(height: int, width: int) -> float:
    scale = max(1.0, MIN_SIDE / min(height, width))
    return min(scale, MAX_SIDE / max(height, width)) if max(height, width) * scale > MAX_SIDE else scale


def enlarge(image: np.ndarray, scale: float, nearest: bool = False) -> Image.Image:
    picture = Image.fromarray(np.ascontiguousarray(image))
    if scale == 1:
        return picture.convert("RGB")
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC).convert("RGB")


def titled(panels: Sequence[tuple[str, Image.Image]], gap: int = 6, rows_over: int | None = None) -> Image.Image:
    """Panels side by side, each under a title strip; two rows when wider than ``rows_over`` px."""
    if rows_over is not None and len(panels) > 2 and sum(p.width for _, p in panels) > rows_over:
        half = (len(panels) + 1) // 2
        top, bottom = titled(panels[:half], gap), titled(panels[half:], gap)
        canvas = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height + gap), WHITE)
        canvas.paste(top, (0, 0))
        canvas.paste(bottom, (0, top.height + gap))
        return canvas
    strip = 22
    width = sum(p.width for _, p in panels) + gap * (len(panels) - 1)
    height = max(p.height for _, p in panels) + strip
    canvas = Image.new("RGB", (width, height), WHITE)
    draw = ImageDraw.Draw(canvas)
    x = 0
    for title, panel in panels:
        canvas.paste(panel, (x, strip))
        draw.text((x + 4, 4), title, fill=(20, 20, 20), font=font(14))
        x += panel.width + gap
    return canvas


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, colour: tuple[int, int, int]) -> None:
    f = font(12)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=f)
    x, y = xy
    x = max(0, min(x, draw.im.size[0] - (right - left) - 4))  # keep the label inside the panel
    y = max(0, y - (bottom - top) - 4)
    draw.rectangle((x, y, x + right - left + 4, y + bottom - top + 4), fill=colour)
    draw.text((x + 2, y + 1 - top), text, fill=WHITE, font=f)


# ------------------------------------------------------------------------------------------------ detection
def detection_pair(image: np.ndarray, target: Any, prediction: Any, matches: Any, threshold: float,
                   names: dict[Any, str], masks: bool = False, limit: int = 40) -> Image.Image:
    from harness.publish.pictures.overlap import decode

    s = scale_for(*image.shape[:2])
    height, width = image.shape[:2]
    gt_panel, pred_panel = enlarge(image, s), enlarge(image, s)
    real = ~np.asarray(target.iscrowd, bool).reshape(-1)
    found = set(int(g) for g, score, ignored in zip(matches.matched, matches.scores, matches.ignored)
                if g >= 0 and score >= threshold)
    shown = [p for p in range(len(matches.scores)) if matches.scores[p] >= threshold and not matches.ignored[p]][:limit]

    def paint(panel: Image.Image, items: list[tuple[np.ndarray, Any, tuple[int, int, int], str]]) -> Image.Image:
        if masks:
            overlay = np.asarray(panel).astype(np.float32)
            for _, segmentation, colour, _ in items:
                if segmentation is None:
                    continue
                mask = np.asarray(enlarge(decode(segmentation, height, width).astype(np.uint8) * 255, s, nearest=True)
                                  .convert("L")) > 127
                overlay[mask] = overlay[mask] * 0.5 + np.asarray(colour, np.float32) * 0.5
            panel = Image.fromarray(overlay.astype(np.uint8))
        draw = ImageDraw.Draw(panel)
        for box, _, colour, text in items:
            x, y, w, h = (float(v) * s for v in box)
            draw.rectangle((x, y, x + w, y + h), outline=colour, width=2)
            _label(draw, (x, y), text, colour)
        return panel

    gt_items = []
    for g in range(len(target.boxes)):
        if not real[g]:
            continue
        colour = GREEN if g in found else ORANGE
        segmentation = target.masks[g] if masks and target.masks is not None else None
        gt_items.append((target.boxes[g], segmentation, colour, names.get(target.labels[g], str(target.labels[g]))))
    pred_items = []
    for p in shown:
        k = int(matches.keep[p])
        colour = GREEN if matches.matched[p] >= 0 else RED
        segmentation = prediction.masks[k] if masks and prediction.masks is not None else None
        text = f"{names.get(matches.labels[p], str(matches.labels[p]))} {matches.scores[p]:.2f}"
        pred_items.append((np.asarray(prediction.boxes)[k], segmentation, colour, text))
    return titled([("ground truth", paint(gt_panel, gt_items)),
                   (f"prediction (score >= {threshold:.2f})", paint(pred_panel, pred_items))])


# ------------------------------------------------------------------------------------------------ keypoints
def _people(panel: Image.Image, keypoints: np.ndarray, skeleton: Sequence[tuple[int, int]], s: float,
            visible_only: bool) -> Image.Image:
    draw = ImageDraw.Draw(panel)
    radius = 3
    for person, points in enumerate(np.asarray(keypoints, dtype=np.float64).reshape(-1, keypoints.shape[-2], 3)):
        colour = PERSON_COLOURS[person % len(PERSON_COLOURS)]
        visible = points[:, 2] > 0 if visible_only else np.isfinite(points[:, 0])
        for a, b in skeleton:
            if a < len(points) and b < len(points) and visible[a] and visible[b]:
                draw.line([(points[a, 0] * s, points[a, 1] * s), (points[b, 0] * s, points[b, 1] * s)], fill=colour,
                          width=3)
        for (x, y, _), v in zip(points, visible):
            if v:
                draw.ellipse((x * s - radius, y * s - radius, x * s + radius, y * s + radius), fill=colour,
                             outline=WHITE)
    return panel


def keypoints_pair(image: np.ndarray, target: Any, prediction: Any, skeleton: Sequence[tuple[int, int]]
                   ) -> Image.Image:
    s = scale_for(*image.shape[:2])
    gt = np.asarray(target.keypoints)
    pred = np.asarray(prediction.keypoints)
    gt_panel = _people(enlarge(image, s), gt, skeleton, s, True) if gt.size else enlarge(image, s)
    pred_panel = _people(enlarge(image, s), pred, skeleton, s, False) if pred.size else enlarge(image, s)
    return titled([("ground truth", gt_panel), ("prediction", pred_panel)])


# ------------------------------------------------------------------------------------------------- semantic
def palette_for(info: Any, k: int) -> np.ndarray:
    """(256, 3) colours: Cityscapes' own for its trainIds, else the VOC devkit colour map (VOC's palette, and a
    standard distinct map for any index)."""
    from harness.io.imageio import voc_palette

    colours = np.asarray(voc_palette(), dtype=np.uint8).reshape(256, 3).copy()
    if "cityscapes" in str(getattr(info, "name", "")).lower():
        try:
            from cityscapesscripts.helpers.labels import trainId2label

            for index in range(min(k, 255)):
                if index in trainId2label:
                    colours[index] = trainId2label[index].color
        except ImportError:
            pass
    return colours


def semantic_pair(image: np.ndarray, target: Any, prediction: Any, palette: np.ndarray, ignore: int | None,
                  background: int | None = None) -> Image.Image:
    """Image | ground truth | prediction | errors.  The ``background`` class (VOC's black) is left uncoloured,
    void pixels are greyed."""
    s = scale_for(*image.shape[:2])
    gt = np.asarray(target.label_map).astype(np.int64)
    pred = np.asarray(prediction.label_map).astype(np.int64)
    valid = np.ones(gt.shape, bool) if ignore is None else gt != ignore

    def overlay(labels: np.ndarray, void: np.ndarray) -> Image.Image:
        base = image.astype(np.float32)
        colours = palette[np.clip(labels, 0, 255)].astype(np.float32)
        coloured = ~void & (labels != background if background is not None else True)
        mixed = np.where(coloured[..., None], base * 0.3 + colours * 0.7, base)
        mixed[void] = base[void] * 0.4 + 160 * 0.6
        return enlarge(mixed.astype(np.uint8), s, nearest=True)

    wrong = valid & (gt != pred)
    errors = image.astype(np.float32) * 0.5 + 255 * 0.5
    errors[~valid] = (150, 150, 150)
    errors[wrong] = (214, 39, 40)
    return titled([("image", enlarge(image, s)), ("ground truth", overlay(gt, ~valid)),
                   ("prediction", overlay(pred, np.zeros(gt.shape, bool))),
                   ("wrong pixels (red)", enlarge(errors.astype(np.uint8), s, nearest=True))], rows_over=0)


# ----------------------------------------------------------------------------------------------------- flow
def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8: direction as hue, magnitude / ``max_magnitude`` as saturation (white = no motion)."""
    import cv2

    flow = np.nan_to_num(np.asarray(flow, dtype=np.float32))
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    top = float(max_magnitude if max_magnitude else max(float(magnitude.max()), 1e-6))
    angle = (np.degrees(np.arctan2(-flow[..., 1], -flow[..., 0])) + 180.0) / 2.0  # 0..180 for OpenCV's 8-bit hue
    hsv = np.zeros(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = np.clip(angle, 0, 179).astype(np.uint8)
    hsv[..., 1] = (np.clip(magnitude / top, 0, 1) * 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def error_to_rgb(epe: np.ndarray, valid: np.ndarray, top: float) -> np.ndarray:
    import matplotlib

    colours = matplotlib.colormaps["magma"](np.clip(np.nan_to_num(epe) / top, 0, 1))[..., :3]
    rgb = (colours * 255).astype(np.uint8)
    rgb[~valid] = (128, 128, 128)
    return rgb


def flow_pair(image: np.ndarray, target: Any, prediction: Any, epe: np.ndarray, valid: np.ndarray) -> Image.Image:
    s = scale_for(*image.shape[:2])
    gt = np.asarray(target.flow, dtype=np.float32)
    top = max(float(np.nanmax(np.hypot(gt[..., 0], gt[..., 1]))), 1e-6)
    error_top = max(5.0, float(np.percentile(epe[valid], 99))) if valid.any() else 5.0
    panels = [("frame 1", enlarge(image, s)),
              (f"ground truth (max {top:.1f} px)", enlarge(flow_to_rgb(gt, top), s)),
              ("prediction", enlarge(flow_to_rgb(np.asarray(prediction.flow), top), s)),
              (f"end-point error (0-{error_top:.1f} px)", enlarge(error_to_rgb(epe, valid, error_top), s, nearest=True))]
    return titled(panels, rows_over=0)
