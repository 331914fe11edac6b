"""The course map: which assignment grades which reference function.

Used to keep solutions from leaking: an assignment's ``blocks.py`` may only hold functions of
earlier assignments, and the leak test checks each release against the functions of its own
and later assignments.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional

ASSIGNMENTS: Dict[int, str] = {
    1: "01_linear_models",
    2: "02_mlp_backprop",
    3: "03_autodiff",
    4: "04_optimization",
    5: "05_training_deep_nets",
    6: "06_cnn",
    7: "07_rnn_lstm",
    8: "08_attention_transformers",
    9: "09_numpy_to_pytorch",
    12: "12_graph_neural_networks",
}

# module:function references of the graded functions, per assignment
GRADED: Dict[int, List[str]] = {
    1: ["dlhw.gradcheck:numerical_gradient", "dlhw.gradcheck:rel_error",
        "dlhw.linear:least_squares_fit", "dlhw.linear:logistic_loss",
        "dlhw.linear:softmax_regression_loss", "dlhw.linear:minibatch_sgd"],
    2: ["dlhw.nn.layers:affine_forward", "dlhw.nn.layers:affine_backward",
        "dlhw.nn.layers:relu_forward", "dlhw.nn.layers:relu_backward",
        "dlhw.nn.layers:sigmoid_forward", "dlhw.nn.layers:sigmoid_backward",
        "dlhw.nn.layers:tanh_forward", "dlhw.nn.layers:tanh_backward",
        "dlhw.nn.losses:softmax_loss", "dlhw.nn.losses:mse_loss", "dlhw.nn.mlp:two_layer_net"],
    3: ["dlhw.autodiff:Tensor", "dlhw.autodiff:add", "dlhw.autodiff:sub", "dlhw.autodiff:mul",
        "dlhw.autodiff:div", "dlhw.autodiff:neg", "dlhw.autodiff:power", "dlhw.autodiff:relu",
        "dlhw.autodiff:tanh", "dlhw.autodiff:exp", "dlhw.autodiff:log", "dlhw.autodiff:matmul",
        "dlhw.autodiff:reduce_sum", "dlhw.autodiff:reduce_mean", "dlhw.autodiff:reshape",
        "dlhw.autodiff:transpose", "dlhw.autodiff:log_softmax"],
    4: ["dlhw.optim:sgd", "dlhw.optim:sgd_momentum", "dlhw.optim:nesterov_momentum",
        "dlhw.optim:rmsprop", "dlhw.optim:adam", "dlhw.optim:adamw",
        "dlhw.optim:step_decay", "dlhw.optim:inverse_time_decay", "dlhw.optim:warmup_schedule"],
    5: ["dlhw.initializers:xavier_uniform", "dlhw.initializers:xavier_normal",
        "dlhw.initializers:kaiming_uniform", "dlhw.initializers:kaiming_normal",
        "dlhw.nn.normalization:batchnorm_forward", "dlhw.nn.normalization:batchnorm_backward",
        "dlhw.nn.normalization:layernorm_forward", "dlhw.nn.normalization:layernorm_backward",
        "dlhw.nn.dropout:dropout_forward", "dlhw.nn.dropout:dropout_backward"],
    6: ["dlhw.nn.conv:conv_forward", "dlhw.nn.conv:conv_backward",
        "dlhw.nn.conv_fast:conv_forward_fast", "dlhw.nn.conv_fast:conv_backward_fast",
        "dlhw.nn.pooling:max_pool_forward", "dlhw.nn.pooling:max_pool_backward",
        "dlhw.nn.normalization:spatial_batchnorm_forward", "dlhw.nn.normalization:spatial_batchnorm_backward"],
    7: ["dlhw.nn.rnn:rnn_step_forward", "dlhw.nn.rnn:rnn_step_backward", "dlhw.nn.rnn:rnn_forward",
        "dlhw.nn.rnn:rnn_backward", "dlhw.nn.rnn:clip_grad_norm",
        "dlhw.nn.lstm:lstm_step_forward", "dlhw.nn.lstm:lstm_step_backward",
        "dlhw.nn.lstm:lstm_forward", "dlhw.nn.lstm:lstm_backward"],
    8: ["dlhw.nn.attention:attention_forward", "dlhw.nn.attention:attention_backward",
        "dlhw.nn.attention:multi_head_attention_forward", "dlhw.nn.attention:multi_head_attention_backward",
        "dlhw.nn.attention:positional_encoding", "dlhw.nn.transformer:transformer_block_forward",
        "dlhw.nn.transformer:transformer_block_backward"],
    9: ["dlhw.torch_port.layers:softmax_loss_torch", "dlhw.torch_port.layers:batchnorm_torch",
        "dlhw.torch_port.layers:conv2d_torch", "dlhw.torch_port.layers:lstm_step_torch",
        "dlhw.torch_port.layers:attention_torch", "dlhw.torch_port.training:get_device",
        "dlhw.torch_port.training:train_one_epoch", "dlhw.torch_port.training:evaluate"],
    12: ["dlhw.nn.graphs:normalized_adjacency", "dlhw.nn.graphs:gcn_forward", "dlhw.nn.graphs:gcn_backward",
         "dlhw.nn.graphs:scatter_forward", "dlhw.nn.graphs:scatter_backward",
         "dlhw.nn.graphs:message_passing_forward", "dlhw.nn.graphs:message_passing_backward",
         "dlhw.nn.graphs:graph_readout", "dlhw.nn.graphs:graph_readout_backward"],
}

_BY_NAME = {ref.split(":")[1]: n for n, refs in GRADED.items() for ref in refs}


def assignment_of(ref_or_folder: str) -> Optional[int]:
    """The assignment number of a folder name (``02_mlp_backprop``) or a graded function."""
    m = re.match(r"^(\d\d)_", ref_or_folder)
    if m:
        return int(m.group(1))
    return _BY_NAME.get(ref_or_folder.split(":")[-1])


# APIs the graded functions of an assignment may not call (dlhw/checks/policy.py): all but 09
# are written from scratch in numpy; 09 is the PyTorch assignment. `dlhw autograde --allow-apis`
# switches an assignment's list off for one course.
FROM_SCRATCH = ("torch", "scipy.convolve")
FORBIDDEN_APIS: Dict[int, tuple] = {n: (FROM_SCRATCH if n != 9 else ()) for n in ASSIGNMENTS}


def forbidden_apis(assignment: str) -> tuple:
    n = assignment_of(assignment)
    return FORBIDDEN_APIS.get(n, ()) if n is not None else ()
