"""One module per op family; importing this package registers every handler."""

from edgesep.convert.ops import (  # noqa: F401
    activations,
    constants,
    conv,
    elementwise,
    linear,
    normalization,
    pooling,
    reduce,
    resize,
    shape_ops,
)
