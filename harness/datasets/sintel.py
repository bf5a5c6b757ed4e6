"""``--dataset sintel``: MPI-Sintel training data (the part with ground truth), for optical flow.

Layout: ``training/{clean,final}/<scene>/frame_XXXX.png``, ``training/flow/<scene>/frame_XXXX.flo`` (flow from
frame XXXX to XXXX+1), ``training/occlusions/<scene>/frame_XXXX.png`` and ``training/invalid/<scene>/frame_XXXX.png``
(255 = occluded in the next frame / moving out of the frame; the "matched" and "unmatched" EPE need both).
``--data-root`` is the Sintel folder holding ``training/`` (or ``training/`` itself).

Split = the render pass: ``clean`` (default) or ``final``.  The embedded mini dataset has two generated sets of
scenes; its splits are ``val`` / ``train``, optionally with a pass: ``val-final``, ``train-clean``.

Samples are the consecutive frame pairs of every scene, in (scene, frame) order, id ``<scene>/frame_XXXX``.
Targets: ``flow`` (H, W, 2), ``occluded`` and ``out_of_frame`` (the ``invalid`` mask) as bool maps; ``valid`` is
None because Sintel's flow is defined at every pixel.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from harness.datasets import DATASETS
from harness.core.protocol import ProtocolOverride
from harness.core.dataset import Dataset, DatasetInfo, report, supports
from harness.core.errors import BenchError, DataError
from harness.io.flowio import read_flo
from harness.io.imageio import read_label_png, read_rgb
from harness.core.structures import FlowTarget, Sample

PASSES = ("clean", "final")
MASKS = ("occlusions", "invalid")
_FRAME = re.compile(r"^frame_(\d+)\.png$")


@DATASETS.register("sintel")
@supports("flow")
def open_sintel(data_root: Path | None, split: str | None, task: str) -> Dataset:
    if task != "flow":
        raise BenchError(f"dataset 'sintel' serves task flow, not {task!r}")
    if data_root is None:
        from harness.embedded import materialise_split, sintel_pairs

        subset, render_pass = _embedded_split(split or "val")
        return Sintel(materialise_split("sintel-pairs", sintel_pairs, subset), render_pass, name="sintel-mini",
                      split_name=f"{subset}-{render_pass}")
    return Sintel(Path(data_root), split or "clean")


def _embedded_split(split: str) -> tuple[str, str]:
    subset, _, render_pass = split.partition("-")
    render_pass = render_pass or "clean"
    if subset not in ("train", "val") or render_pass not in PASSES:
        raise BenchError(f"embedded sintel splits are train or val, optionally with a pass (val-final), not {split!r}")
    return subset, render_pass


class Pair(NamedTuple):
    scene: str
    frame: str  # "frame_0001"
    image1: Path
    image2: Path


def read_mask(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """An ``occlusions/`` or ``invalid/`` mask as bool (255 = set), the one rule for ``bench run`` and ``bench eval``.

    Sintel ships 8-bit grayscale PNGs of 0 and 255; copies saved as RGB with three equal channels read the same.
    Any other value, or channels that disagree, is refused: guessing which pixels are occluded would move the
    matched/unmatched EPE silently.
    """
    from harness.io.imageio import read_rgb

    values = read_label_png(path) if _is_single_channel(path) else read_rgb(path)
    if values.ndim == 3:
        if not (values == values[..., :1]).all():
            raise DataError("mask channels differ (expected grayscale 0/255)", path)
        values = values[..., 0]
    if values.ndim != 2 or tuple(values.shape) != tuple(shape):
        raise DataError(f"mask is {values.shape[1]}x{values.shape[0]} (WxH), the flow is {shape[1]}x{shape[0]}", path)
    bad = np.setdiff1d(np.unique(values), [0, 255])
    if bad.size:
        raise DataError(f"mask values {bad[:8].tolist()} are neither 0 nor 255", path)
    return values == 255


def _is_single_channel(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.mode not in ("RGB", "RGBA")
    except (OSError, UnidentifiedImageError, ValueError):
        return True  # let read_label_png name the problem


class Sintel(Dataset):
    def __init__(self, data_root: Path, render_pass: str = "clean", *, name: str = "sintel",
                 split_name: str | None = None) -> None:
        data_root = Path(data_root)
        if not data_root.is_dir():
            raise DataError("data root does not exist or is not a folder", data_root)
        if render_pass not in PASSES:
            raise DataError(f"split must be a render pass ({', '.join(PASSES)}), not {render_pass!r}", data_root)
        self.training = data_root / "training" if (data_root / "training").is_dir() else data_root
        pass_dir = self.training / render_pass
        if not pass_dir.is_dir():
            raise DataError(f"no {render_pass}/ folder (is this MPI-Sintel's training/ ? passes: clean, final)",
                            self.training)
        self.missing_folders: set[Path] = set()
        for folder in ("flow", *MASKS):
            if not (self.training / folder).is_dir():
                report(DataError(f"folder {folder}/ is missing", self.training))
                self.missing_folders.add(self.training / folder)
        self.pairs: list[Pair] = []
        for scene_dir in sorted(p for p in pass_dir.iterdir() if p.is_dir()):
            frames = sorted((int(m.group(1)), p) for p in scene_dir.iterdir() if (m := _FRAME.match(p.name)))
            for (number, path), (next_number, next_path) in zip(frames, frames[1:]):
                if next_number != number + 1:
                    report(DataError(f"frame_{number + 1:04d}.png is missing (the sequence jumps to "
                                     f"frame_{next_number:04d})", scene_dir))
                    continue
                self.pairs.append(Pair(scene_dir.name, path.stem, path, next_path))
        if not self.pairs:
            report(DataError(f"no consecutive frame_XXXX.png pairs in {render_pass}/<scene>/", self.training))
        self.info = DatasetInfo(
            name=name, task="flow", split=split_name or render_pass, root=self.training, extra={"pass": render_pass},
            protocol=ProtocolOverride(
                name="sintel", columns=("EPE", "EPE_matched", "EPE_unmatched", "EPE_s0-10", "EPE_s10-40", "EPE_s40+",
                                        "1px", "3px", "5px"),
                reference="MPI-Sintel benchmark (EPE all / matched / unmatched / s0-10 / s10-40 / s40+; pooled pixels)"))

    def __len__(self) -> int:
        return len(self.pairs)

    def gt_path(self, pair: Pair, folder: str) -> Path:
        suffix = ".flo" if folder == "flow" else ".png"
        return self.training / folder / pair.scene / f"{pair.frame}{suffix}"

    def __getitem__(self, index: int) -> Sample:
        pair = self.pairs[index]
        return Sample(sample_id=f"{pair.scene}/{pair.frame}", image_path=pair.image1, image_path2=pair.image2,
                      target=self.read_target(pair), meta={"scene": pair.scene, "frame": pair.frame})

    def read_target(self, pair: Pair) -> FlowTarget:
        flow = read_flo(self.gt_path(pair, "flow"))
        masks = [self._read_mask(self.gt_path(pair, folder), flow.shape[:2]) for folder in MASKS]
        return FlowTarget(flow=flow, valid=None, occluded=masks[0], out_of_frame=masks[1])

    def _read_mask(self, path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
        if path.parent.parent in self.missing_folders:
            return None
        return read_mask(path, shape)

    def check_sample(self, index: int) -> list[str]:
        """Both frames, the .flo and each mask are checked apart, so one broken file does not hide another."""
        pair = self.pairs[index]
        problems, shapes = [], {}
        for key, load in (("image1", lambda: read_rgb(pair.image1)), ("image2", lambda: read_rgb(pair.image2)),
                          ("flow", lambda: read_flo(self.gt_path(pair, "flow")))):
            try:
                shapes[key] = load().shape[:2]
            except BenchError as exc:
                problems.append(str(exc))
        reference = shapes.get("flow") or shapes.get("image1")
        for folder in MASKS:
            try:
                if reference is not None:
                    self._read_mask(self.gt_path(pair, folder), reference)
            except BenchError as exc:
                problems.append(str(exc))
        if len(set(shapes.values())) > 1:
            sizes = ", ".join(f"{k} {w}x{h}" for k, (h, w) in shapes.items())
            problems.append(str(DataError(f"frames and flow differ in size ({sizes})", pair.image1)))
        return problems

    def source_files(self) -> Iterable[Path]:
        folders = [f for f in ("flow", *MASKS) if self.training / f not in self.missing_folders]
        return [p for pair in self.pairs for f in folders if (p := self.gt_path(pair, f)).is_file()]

    def counts(self) -> dict[str, int]:
        return {"pairs": len(self), "scenes": len({p.scene for p in self.pairs}),
                "images": len({p.image1 for p in self.pairs} | {p.image2 for p in self.pairs})}
