"""How an image file becomes a model input: resize, crop, channel order, scale, normalization.

The same spec is saved in the quantized model's sidecar so that validation feeds
images exactly the way calibration did.  Light module: numpy + Pillow only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from edgesep.errors import ConfigError

RESIZE_MODES = ("stretch", "shorter_side")
INTERPOLATIONS = ("bilinear", "nearest", "bicubic")
CHANNEL_ORDERS = ("RGB", "BGR", "GRAY")
LAYOUTS = ("NCHW",)


@dataclass(frozen=True)
class PreprocessingSpec:
    """Image -> CHW float32: ``((pixels * scale) - mean) / std`` after resize and crop.

    ``resize`` is (height, width); ``resize_mode="stretch"`` resizes to exactly that
    size, ``"shorter_side"`` scales the image (keeping its aspect ratio) so that it
    covers that size, usually followed by ``center_crop``.  ``mean``/``std`` hold one
    value or one per channel.  ``layout`` is the layout of the batches the sources
    produce (edgesep keeps datasets NCHW; the quantizer transposes for NHWC models).
    """

    resize: tuple[int, int] | None = None
    resize_mode: str = "stretch"
    interpolation: str = "bilinear"
    center_crop: tuple[int, int] | None = None
    channel_order: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        _check_choice("resize_mode", self.resize_mode, RESIZE_MODES)
        _check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        _check_choice("channel_order", self.channel_order, CHANNEL_ORDERS)
        _check_choice("layout", self.layout, LAYOUTS)
        for name in ("resize", "center_crop"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(int(v) for v in value)
                if len(value) != 2 or min(value) <= 0:
                    raise ConfigError(f"preprocessing {name} must be two positive integers (height, width), got {value}")
                object.__setattr__(self, name, value)
        object.__setattr__(self, "mean", tuple(float(v) for v in _as_tuple(self.mean)))
        object.__setattr__(self, "std", tuple(float(v) for v in _as_tuple(self.std)))
        object.__setattr__(self, "scale", float(self.scale))
        if any(s == 0.0 for s in self.std):
            raise ConfigError("preprocessing std must not contain 0")
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, self.channels):
                raise ConfigError(
                    f"preprocessing {name} needs 1 or {self.channels} values for {self.channel_order}, got {len(getattr(self, name))}"
                )

    @property
    def channels(self) -> int:
        return 1 if self.channel_order == "GRAY" else 3

    @property
    def output_hw(self) -> tuple[int, int] | None:
        """The (height, width) that ``apply`` produces, when it is fixed."""
        if self.center_crop is not None:
            return self.center_crop
        if self.resize is not None and self.resize_mode == "stretch":
            return self.resize
        return None

    @classmethod
    def for_input(cls, shape: tuple[int, ...], **overrides: Any) -> PreprocessingSpec:
        """A plain spec for an NCHW model input: stretch to H x W, GRAY for 1 channel, [0, 1] pixels."""
        channels, height, width = (int(d) for d in shape[-3:])
        defaults: dict[str, Any] = {"resize": (height, width), "channel_order": "GRAY" if channels == 1 else "RGB"}
        defaults.update(overrides)
        return cls(**defaults)

    def apply(self, image: Any) -> np.ndarray:
        """A PIL image (or an HWC/HW uint8 array) -> CHW float32."""
        from PIL import Image

        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        image = image.convert("L" if self.channel_order == "GRAY" else "RGB")
        image = self._resize(image)
        image = self._crop(image)
        pixels: np.ndarray = np.asarray(image, dtype=np.float32)  # float32 throughout (numpy's stubs infer complex128)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        if self.channel_order == "BGR":
            pixels = pixels[:, :, ::-1]
        pixels = pixels * np.float32(self.scale)
        pixels = (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32)

    def _resize(self, image):
        if self.resize is None:
            return image
        from PIL import Image

        method = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "bicubic": Image.BICUBIC}[self.interpolation]
        height, width = self.resize
        if self.resize_mode == "shorter_side":
            factor = max(height / image.height, width / image.width)
            height = max(height, round(image.height * factor))
            width = max(width, round(image.width * factor))
        return image.resize((width, height), method)

    def _crop(self, image):
        if self.center_crop is None:
            return image
        height, width = self.center_crop
        if height > image.height or width > image.width:
            raise ConfigError(f"center_crop {self.center_crop} is larger than the resized image ({image.height}, {image.width})")
        top = (image.height - height) // 2
        left = (image.width - width) // 2
        return image.crop((left, top, left + width, top + height))

    def to_dict(self) -> dict[str, Any]:
        payload = asdict(self)
        for key, value in payload.items():
            if isinstance(value, tuple):
                payload[key] = list(value)
        return payload

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> PreprocessingSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ConfigError(f"unknown preprocessing key(s) {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in payload.items()}
        return cls(**values)


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (int, float)):
        return (value,)
    return tuple(value)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"preprocessing {name} must be one of {', '.join(choices)}, got {value!r}")
