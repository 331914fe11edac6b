"""The check modules, by topic, and the assignment each belongs to: the one place that maps them.

A check module is named by what it checks (batch normalization's checks are in
``normalization``, wherever the curriculum teaches it); an assignment's checks may span several
modules (05 has initialization, normalization and dropout) and a module may serve two (the
normalization checks hold batch norm of 05 and spatial batch norm of 06, so it is listed under
the first). ``load()`` imports every check module, which registers its checks.
"""
import importlib

# topic module -> the assignment whose checks it holds (01..09, grader/curriculum.ASSIGNMENTS)
MODULES = {
    "gradients_linear": 1,       # numerical gradients, least squares, logistic/softmax regression, SGD
    "layers": 2,                 # affine, activations, losses, the two-layer net
    "autodiff_graph": 3,         # the engine: unbroadcasting, topological order, backward, graphs
    "autodiff_ops": 3,           # its operations, each against torch autograd
    "optimizers": 4,             # update rules and learning-rate schedules
    "initialization": 5,
    "normalization": 5,          # batch norm, layer norm (05) and spatial batch norm (06)
    "dropout": 5,
    "convolution": 6,            # convolution (naive and fast), max pooling
    "recurrent": 7,              # RNN and LSTM steps and sequences, gradient clipping
    "attention": 8,              # attention, multi-head attention, positional encoding, the block
    "torch_ports": 9,            # the torch ports (through the numpy layers' checks) and the loop
    "graphs": 12,                # normalised adjacency, GCN, scatter, message passing, readout
}

ASSIGNMENT_OF = {f"dlhw.checks.{m}": n for m, n in MODULES.items()}


def modules_of(assignment: int) -> list:
    """The full names of the check modules of ``assignment``."""
    return [full for full, n in ASSIGNMENT_OF.items() if n == assignment]


def load() -> None:
    """Import every check module (each registers its checks when imported)."""
    for module in ASSIGNMENT_OF:
        importlib.import_module(module)
