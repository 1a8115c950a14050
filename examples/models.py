"""Model factories the example pipelines name as 'examples/models.py:<factory>'."""

from pathlib import Path

import numpy as np
import torch

IMAGES = Path(__file__).resolve().parent / "images"
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _example_images() -> torch.Tensor:
    """The example photographs, resized to 256, center-cropped to 224, ImageNet-normalized (NCHW)."""
    from PIL import Image

    batch = []
    for path in sorted(IMAGES.glob("*.jpg")):
        image = Image.open(path).convert("RGB").resize((256, 256), Image.BILINEAR)
        pixels = np.asarray(image, np.float32)[16:240, 16:240] / 255.0
        batch.append(((pixels - MEAN) / STD).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(batch))


def mobilenet_v2():
    """torchvision's MobileNetV2, random weights (seeded; nothing is downloaded) whose BatchNorm statistics are
    re-estimated on the example photographs: random weights with default statistics give outputs of ~1e-9,
    on which agreement and cosine say nothing."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None)
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the images
            module.reset_running_stats()
    with torch.no_grad():
        model(_example_images())
    model.input_shape = (1, 3, 224, 224)
    return model.eval()
