"""Channel groups found by tracing: chains, residual ties and fixed groups."""

from __future__ import annotations

from edgesep.prune.graph import CONSUMER, PASSTHROUGH, PRODUCER, analyze, prunable


def test_sepcnn_groups_follow_separable_blocks(sepcnn_model):
    groups = prunable(analyze(sepcnn_model, sepcnn_model.input_shape))
    by_producer = {g.producers[0].name: g for g in groups}
    assert sorted(by_producer) == ["features.0.0", "features.1.pointwise", "features.2.pointwise", "features.3.pointwise"]
    group = by_producer["features.1.pointwise"]
    roles = {(m.name, m.role) for m in group.members}
    assert roles == {
        ("features.1.pointwise", PRODUCER),
        ("features.1.pointwise_bn", PASSTHROUGH),
        ("features.2.depthwise", PASSTHROUGH),
        ("features.2.depthwise_bn", PASSTHROUGH),
        ("features.2.pointwise", CONSUMER),
    }
    assert group.size == 32
    last = by_producer["features.3.pointwise"]
    assert ("classifier", CONSUMER) in {(m.name, m.role) for m in last.members}


def test_residual_adds_tie_producers_and_concat_fixes_group(tiny_residual):
    groups = analyze(tiny_residual, tiny_residual.input_shape)
    tied = [g for g in groups if {"stem.0", "block1.6", "block2.2"} <= {m.name for m in g.producers}]
    assert len(tied) == 1
    assert tied[0].fixed  # it flows into torch.cat: left alone
    free = {g.producers[0].name for g in prunable(groups)}
    assert free == {"block1.0"}  # the expansion inside block1 is the only free group
