"""Model factories the example pipelines name as 'examples/models.py:<factory>'."""

import torch


def mobilenet_v2():
    """torchvision's MobileNetV2, random weights (seeded): nothing is downloaded."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(weights=None)
    model.input_shape = (1, 3, 224, 224)
    return model.eval()
