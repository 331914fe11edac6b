"""Reference layers: every function of the graded API, one small module per topic.

``from dlhw.nn import affine_forward`` works for every name below; modules are imported on
first use so that ``import dlhw.nn`` stays cheap.
"""
from __future__ import annotations

import importlib

_MODULES = {
    "layers": ["affine_forward", "affine_backward", "relu_forward", "relu_backward",
               "leaky_relu_forward", "leaky_relu_backward", "sigmoid_forward", "sigmoid_backward",
               "tanh_forward", "tanh_backward"],
    "losses": ["softmax_loss", "mse_loss"],
    "dropout": ["dropout_forward", "dropout_backward"],
    "normalization": ["batchnorm_forward", "batchnorm_backward", "layernorm_forward",
                      "layernorm_backward", "spatial_batchnorm_forward", "spatial_batchnorm_backward"],
    "conv": ["conv_forward", "conv_backward"],
    "conv_fast": ["conv_forward_fast", "conv_backward_fast"],
    "pooling": ["max_pool_forward", "max_pool_backward"],
    "rnn": ["rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward", "clip_grad_norm"],
    "lstm": ["lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward"],
    "attention": ["attention_forward", "attention_backward", "multi_head_attention_forward",
                  "multi_head_attention_backward", "positional_encoding"],
    "transformer": ["transformer_block_forward", "transformer_block_backward",
                    "init_transformer_block_params"],
    "mlp": ["two_layer_net"],
    "graphs": ["normalized_adjacency", "gcn_forward", "gcn_backward", "scatter_forward",
               "scatter_backward", "message_passing_forward", "message_passing_backward",
               "graph_readout", "graph_readout_backward", "init_message_passing_params"],
}
_WHERE = {name: mod for mod, names in _MODULES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
