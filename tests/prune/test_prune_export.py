"""A pruned model is a plain dense nn.Module: it exports to ONNX and verifies like any other."""

from __future__ import annotations

import numpy as np
import onnx

from edgesep.prune import PruneConfig, prune


def test_pruned_sepcnn_exports_with_smaller_weights(sepcnn_model, tmp_path):
    from edgesep.export import export

    result = prune(sepcnn_model, config=PruneConfig(ratio=0.5))
    full = export(sepcnn_model, tmp_path / "full.onnx", input_shape=(1, 1, 16, 16))
    small = export(result.model, tmp_path / "small.onnx", input_shape=(1, 1, 16, 16))
    assert small.fidelity.max_abs < 1e-4 and small.output_shapes == ((1, 10),)

    def weight_count(path) -> int:
        return sum(int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer)

    # BN folds into the convs in ONNX; the pruned model keeps well under half the weights
    assert weight_count(tmp_path / "small.onnx") < 0.4 * weight_count(tmp_path / "full.onnx")
    assert small.size_bytes < full.size_bytes
