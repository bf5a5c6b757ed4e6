"""Short image sequences with exactly known optical flow, in the MPI-Sintel training layout.

Each scene is a textured background that deforms smoothly plus 1-3 textured sprites moving rigidly in front of it.
Every background texture point p moves at a constant velocity V(p) (a translation, a small linear term and two
low-amplitude sinusoids), so frame t shows the texture at Phi_t^-1(x) where Phi_t(p) = p + t V(p); the flow from
frame t to t+1 at pixel x is V(Phi_t^-1(x)), with Phi_t^-1 found by a contracting fixed-point iteration.  Sprites
rotate and translate at constant rates, so their flow is the rigid motion evaluated at the pixel.

Masks follow Sintel's meaning: ``invalid`` = the pixel's point leaves the frame in frame t+1, ``occlusions`` = it
stays inside but another layer covers it there (the two do not overlap).  The ``final`` pass adds blur, haze and
noise to the ``clean`` frames.  Splits ``train`` and ``val`` are independent sets of scenes, each a Sintel root.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from harness.embedded.shapes import PRIMITIVES, shape_mask
from harness.io.flowio import write_flo

VERSION = 1
WIDTH, HEIGHT = 160, 64
FRAMES = 6  # per scene: 5 flow pairs
SPLITS = {"train": (30, 61, 0), "val": (20, 62, 100)}  # scenes, seed, first scene number
MARGIN = 48  # texture pixels around the frame that deformation can bring into view
_ITERATIONS = 80


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multi-scale colour noise plus random strokes: enough structure at every scale to match."""
    image = np.zeros((height, width, 3), np.float32)
    for cells, weight in ((3, 60.0), (12, 35.0), (40, 20.0)):
        low = rng.uniform(-1, 1, size=(cells, max(2, cells * width // height), 3)).astype(np.float32)
        image += cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC) * weight
    image += rng.uniform(60, 190, 3).astype(np.float32)
    for _ in range(int(width * height / 600)):
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(image, centre, int(rng.integers(2, 9)), colour, -1, cv2.LINE_AA)
        else:
            end = (centre[0] + int(rng.integers(-15, 16)), centre[1] + int(rng.integers(-15, 16)))
            cv2.line(image, centre, end, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    return np.clip(image, 0, 255)


@dataclass
class Background:
    texture: np.ndarray  # (HEIGHT + 2 MARGIN, WIDTH + 2 MARGIN, 3), texture point p sits at p + MARGIN
    translation: np.ndarray  # (2,)
    linear: np.ndarray  # (2, 2)
    waves: list[tuple[np.ndarray, float, float, np.ndarray]]  # (direction, wavelength, phase, amplitude (2,))

    def velocity(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """V(p) for texture coordinates (x, y), frame-centred so the linear part does not drift the scene."""
        cx, cy = x - WIDTH / 2, y - HEIGHT / 2
        u = self.translation[0] + self.linear[0, 0] * cx + self.linear[0, 1] * cy
        v = self.translation[1] + self.linear[1, 0] * cx + self.linear[1, 1] * cy
        for direction, wavelength, phase, amplitude in self.waves:
            s = np.sin((direction[0] * x + direction[1] * y) * 2 * np.pi / wavelength + phase)
            u, v = u + amplitude[0] * s, v + amplitude[1] * s
        return u, v

    def source(self, t: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Phi_t^-1: the texture point shown at frame pixel (x, y); |t dV/dp| < 0.6 keeps the iteration contracting."""
        px, py = x.copy(), y.copy()
        for _ in range(_ITERATIONS if t else 0):
            u, v = self.velocity(px, py)
            nx, ny = x - t * u, y - t * v
            change = max(float(np.abs(nx - px).max()), float(np.abs(ny - py).max()))
            px, py = nx, ny
            if change < 1e-9:
                break
        return px, py


@dataclass
class Sprite:
    texture: np.ndarray  # (S, S, 3)
    mask: np.ndarray  # (S, S) uint8
    centre: np.ndarray  # (2,) at frame 0
    velocity: np.ndarray  # (2,) px / frame
    angle: float
    spin: float  # rad / frame

    def local(self, t: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sprite-local coordinates (origin at the texture centre) of frame pixel (x, y) at time t."""
        cx, cy = self.centre + t * self.velocity
        a = -(self.angle + t * self.spin)
        dx, dy = x - cx, y - cy
        return np.cos(a) * dx - np.sin(a) * dy, np.sin(a) * dx + np.cos(a) * dy

    def place(self, t: int, lx: np.ndarray, ly: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cx, cy = self.centre + t * self.velocity
        a = self.angle + t * self.spin
        return cx + np.cos(a) * lx - np.sin(a) * ly, cy + np.sin(a) * lx + np.cos(a) * ly


def make_scene(rng: np.random.Generator) -> tuple[Background, list[Sprite]]:
    waves = []
    for _ in range(2):
        theta = rng.uniform(0, 2 * np.pi)
        wavelength = rng.uniform(70, 140)
        waves.append((np.array([np.cos(theta), np.sin(theta)]), wavelength, rng.uniform(0, 2 * np.pi),
                      rng.uniform(-1.0, 1.0, 2) * wavelength / 160))
    background = Background(
        texture=_texture(rng, HEIGHT + 2 * MARGIN, WIDTH + 2 * MARGIN),
        translation=rng.uniform(-3.0, 3.0, 2), linear=rng.uniform(-0.02, 0.02, (2, 2)), waves=waves,
    )
    sprites = []
    for _ in range(int(rng.integers(1, 4))):
        size = int(rng.integers(18, 36))
        side = int(np.ceil(size * 1.5)) | 1
        mask = shape_mask(str(rng.choice(PRIMITIVES[:4])), (side / 2 - 0.5, side / 2 - 0.5), size,
                          rng.uniform(0, np.pi), side, side).astype(np.uint8)
        sprites.append(Sprite(
            texture=_texture(rng, side, side), mask=mask,
            centre=rng.uniform((0.1 * WIDTH, 0.15 * HEIGHT), (0.9 * WIDTH, 0.85 * HEIGHT)),
            velocity=rng.uniform(-7.0, 7.0, 2), angle=rng.uniform(0, 2 * np.pi), spin=rng.uniform(-0.08, 0.08),
        ))
    return background, sprites


def render(background: Background, sprites: list[Sprite], t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image float32 RGB, layer map int (0 = background, k = sprite k), flow to frame t+1) at time t."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    px, py = background.source(t, x, y)
    image = cv2.remap(background.texture, (px + MARGIN).astype(np.float32), (py + MARGIN).astype(np.float32),
                      cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    u, v = background.velocity(px, py)
    flow = np.stack([u, v], axis=2)
    layers = np.zeros((HEIGHT, WIDTH), np.int32)
    for k, sprite in enumerate(sprites, start=1):
        lx, ly = sprite.local(t, x, y)
        half = (sprite.mask.shape[0] - 1) / 2
        map_x, map_y = (lx + half).astype(np.float32), (ly + half).astype(np.float32)
        inside = cv2.remap(sprite.mask, map_x, map_y, cv2.INTER_NEAREST, borderValue=0) > 0
        colour = cv2.remap(sprite.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        image[inside] = colour[inside]
        layers[inside] = k
        nx, ny = sprite.place(t + 1, lx, ly)
        flow[inside] = np.stack([nx - x, ny - y], axis=2)[inside]
    return image, layers, flow


def final_pass(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Sintel's final pass look, roughly: blur, a haze that thickens with height, sensor noise."""
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    haze = np.linspace(0.35, 0.05, HEIGHT, dtype=np.float32)[:, None, None] * rng.uniform(0.5, 1.0)
    hazy = blurred * (1 - haze) + np.float32(200) * haze
    return hazy + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(3)


def masks(flow: np.ndarray, layers: np.ndarray, next_layers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(occluded, out of frame) for frame t given the layers of t and t+1."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    tx, ty = x + flow[..., 0], y + flow[..., 1]
    outside = (tx < 0) | (tx > WIDTH - 1) | (ty < 0) | (ty > HEIGHT - 1)
    ix = np.clip(np.round(tx), 0, WIDTH - 1).astype(int)
    iy = np.clip(np.round(ty), 0, HEIGHT - 1).astype(int)
    occluded = ~outside & (next_layers[iy, ix] != layers)
    return occluded, outside


def write_png(path: Path, image: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))


def write_set(training: Path, scenes: int, seed: int, first_scene: int) -> None:
    rng = np.random.default_rng(seed)
    for number in range(first_scene, first_scene + scenes):
        scene = f"scene_{number:03d}"
        folders = {f: training / f / scene for f in ("clean", "final", "flow", "occlusions", "invalid")}
        for folder in folders.values():
            folder.mkdir(parents=True)
        background, sprites = make_scene(rng)
        rendered = [render(background, sprites, t) for t in range(FRAMES)]
        for t, (image, layers, flow) in enumerate(rendered):
            name = f"frame_{t + 1:04d}"
            write_png(folders["clean"] / f"{name}.png", image)
            write_png(folders["final"] / f"{name}.png", final_pass(rng, image))
            if t + 1 < FRAMES:
                occluded, outside = masks(flow, layers, rendered[t + 1][1])
                write_flo(folders["flow"] / f"{name}.flo", flow.astype(np.float32))
                cv2.imwrite(str(folders["occlusions"] / f"{name}.png"), occluded.astype(np.uint8) * 255)
                cv2.imwrite(str(folders["invalid"] / f"{name}.png"), outside.astype(np.uint8) * 255)


def build_split(root: Path, split: str) -> None:
    write_set(root / "training", *SPLITS[split])
