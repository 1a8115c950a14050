"""Shared fixtures for the quantize tests: sample images written as files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# torchvision (through triton's C extension) segfaults when it is first imported after
# TensorFlow in the same process; importing it at collection makes test order irrelevant.
import torchvision  # noqa: F401,E402

SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "motorcycle_left", "page")


def _sample_images() -> list[np.ndarray]:
    import skimage.data

    images = []
    for name in SAMPLE_IMAGES:
        try:
            images.append(np.asarray(getattr(skimage.data, name)()))
        except Exception:  # an image that would need a download is left out
            continue
    return images


@pytest.fixture(scope="session")
def sample_images() -> list[np.ndarray]:
    images = _sample_images()
    assert len(images) >= 4
    return images


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory, sample_images) -> Path:
    """scikit-image sample images as .png/.jpg files (four crops each, so there are >= 24 files)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    count = 0
    for i, image in enumerate(sample_images):
        h, w = image.shape[:2]
        for j, (top, left) in enumerate([(0, 0), (h // 4, w // 4), (h // 2, w // 2), (0, w // 2)]):
            crop = image[top : top + h // 2, left : left + w // 2]
            suffix = ".png" if (i + j) % 2 else ".jpg"
            Image.fromarray(crop).convert("RGB").save(folder / f"img{count:03d}{suffix}")
            count += 1
    return folder


IMAGENET_SPEC = dict(
    resize=(36, 36), resize_mode="shorter_side", center_crop=(32, 32), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)


@pytest.fixture(scope="session")
def imagenet_spec():
    from edgesep.quantize.preprocessing import PreprocessingSpec

    return PreprocessingSpec(**IMAGENET_SPEC)


def _recalibrate_batchnorm(model, images: np.ndarray):
    """Re-estimate BatchNorm statistics on real images (cumulative average), then eval mode.

    A randomly initialised network with the default BN statistics (mean 0, var 1)
    lets activations shrink layer after layer (logits ~1e-9, the same class for every
    input), which says nothing about quantization.  With statistics measured on data
    every layer is unit-scaled, as in a trained network, while the weights stay random.
    """
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(images))
    return model.eval()


def _folder_images(folder: Path, spec) -> np.ndarray:
    from PIL import Image

    return np.stack([spec.apply(Image.open(p)) for p in sorted(folder.iterdir())])


@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory) -> Path:
    """The trained digits SepCNN (H1's cached default) exported to ONNX."""
    from edgesep.export import export
    from edgesep.models.default import load_default_model

    path = tmp_path_factory.mktemp("digits") / "sepcnn.onnx"
    export(load_default_model(), path)
    return path


@pytest.fixture(scope="session")
def mbv2_onnx(tmp_path_factory, image_folder, imagenet_spec) -> Path:
    """edgesep's MobileNetV2-style net (width 0.35, 32x32, 10 classes), random weights, BN stats from images."""
    import torch

    from edgesep.export import export
    from edgesep.models.mobilenet import mobilenet_v2

    torch.manual_seed(0)
    model = _recalibrate_batchnorm(
        mobilenet_v2(width_mult=0.35, input_size=32, num_classes=10), _folder_images(image_folder, imagenet_spec)
    )
    path = tmp_path_factory.mktemp("mbv2") / "mbv2.onnx"
    export(model, path)
    return path


@pytest.fixture(scope="session")
def mbv2_full_onnx(tmp_path_factory) -> Path:
    """The standard MobileNetV2-style net (width 1.0, 1000 classes; 32x32 input keeps conversion fast)."""
    import torch

    from edgesep.export import export
    from edgesep.models.mobilenet import mobilenet_v2

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("mbv2full") / "mbv2_full.onnx"
    export(mobilenet_v2(input_size=32), path)
    return path


@pytest.fixture(scope="session")
def torchvision_onnx(tmp_path_factory, image_folder, imagenet_spec) -> Path:
    """torchvision's mobilenet_v2 (width 0.35, 100 classes to stay small), random weights, BN stats from images."""
    import torch

    from edgesep.export import export

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None, width_mult=0.35, num_classes=100)
    model = _recalibrate_batchnorm(model, _folder_images(image_folder, imagenet_spec))
    path = tmp_path_factory.mktemp("tv") / "tv_mbv2.onnx"
    export(model, path, input_shape=(1, 3, 32, 32))
    return path
