"""Which graded functions a graded function calls: graded alone, each function earns its own points.

A two-layer net calls the student's affine, ReLU and softmax layers; multi-head attention calls
their attention. Graded with the student's own layers, one slip in affine_backward would also
cost every test of the net. At grading time, during the check of a function listed here, its
calls to these dependencies (when the student defined them in the notebook) go to the judge,
which evaluates them with the reference and hands back the values: the function is graded on
its own, the reference never enters the student's process, and a dependency's mistake costs
only the dependency's own tests. The judge answers such requests only while that check runs.

In the student's own notebook (no judge), the student's dependencies are used, as written.
"""
from __future__ import annotations

DEPENDENCIES = {
    "two_layer_net": ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss"),
    "adamw": ("adam",),
    "multi_head_attention_forward": ("attention_forward",),
    "multi_head_attention_backward": ("attention_backward",),
    "transformer_block_forward": ("multi_head_attention_forward", "layernorm_forward", "affine_forward",
                                  "relu_forward"),
    "transformer_block_backward": ("multi_head_attention_backward", "layernorm_backward", "affine_backward",
                                   "relu_backward"),
    "message_passing_forward": ("scatter_forward",),
    "message_passing_backward": ("scatter_backward", "scatter_forward"),
    "graph_readout": ("scatter_forward",),
    "graph_readout_backward": ("scatter_backward",),
}

# Dependencies that stay the student's own, and why: the autodiff engine's operations take and
# return the student's Tensor objects, which cannot cross to the judge; reduce_mean built from
# mul and reduce_sum is graded with the student's mul and reduce_sum. (A layer's backward is
# always graded with its own forward: its cache is the forward's own business, by the contract.)
IN_PROCESS = {
    "reduce_mean": ("mul", "reduce_sum"),
}


def dependencies_of(functions) -> tuple:
    """The dependencies of a check's functions, less the functions the check grades itself."""
    deps = []
    for f in functions:
        deps += [d for d in DEPENDENCIES.get(f, ()) if d not in functions and d not in deps]
    return tuple(deps)
