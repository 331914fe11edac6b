"""A small reverse-mode automatic-differentiation engine on numpy arrays (assignment 03).

Every ``Tensor`` produced by an operation remembers its inputs and a ``_backward`` rule that
turns the gradient of the output into gradient contributions to the inputs (the layers'
``backward(dout, cache)`` pattern, with the closure as the cache). ``backward()`` then

1. orders the graph topologically, inputs before the nodes computed from them,
2. visits the nodes in reverse order, so that a node's gradient is complete (every path
   from the output has contributed) before its rule passes it on,
3. accumulates (adds) the contributions where a node feeds several others: x * x + x gives
   x three contributions.

Broadcasting: an operation on operands of shapes (3, 4) and (4,) uses the second operand
three times, so its gradient is the sum over the broadcast axis; ``Tensor.unbroadcast``
sums a gradient back to an operand's shape, and ``accumulate`` applies it to every
contribution, so that no operation has to think about broadcasting.

``backward()`` differs from PyTorch on purpose: it first resets the gradient of every node
of the graph to zero, so each call computes the gradients of this output from scratch and
calling it twice gives the same result (PyTorch would add the two). To combine the
gradients of two losses, call backward on their sum.

Layout (the notebook's answer cells): the class ``Tensor`` holds the graph machinery, and
its operators and methods (``+``, ``*``, ``@``, ``.relu()``, ``.sum()``...) call the
operation functions below it (``add``, ``mul``, ``matmul``, ``relu``, ``reduce_sum``...), one
function per operation with its forward value and its backward rule. The methods look the
functions up when they are called, so in a notebook the class cell can come first and the
operations in the cells after it.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, shape_str

__all__ = ["Tensor", "add", "sub", "mul", "div", "neg", "power", "matmul", "relu", "tanh",
           "exp", "log", "log_softmax", "reduce_sum", "reduce_mean", "reshape", "transpose"]


class Tensor:
    """An array with a gradient, recording the operations that produce it.

    Parameters
    ----------
    data : array-like of any shape (S...), copied to a float64 array
    requires_grad : bool; True for the leaves we want gradients of (the parameters)
    _inputs : tuple of Tensor, the operands of the operation that made this tensor (set by
              the operation functions; empty for a leaf)
    _op : str, the operation's name, for display

    Attributes
    ----------
    data : array of shape (S...)
    grad : array of shape (S...) after ``backward()`` for tensors that require a gradient;
           None otherwise
    requires_grad : bool, True for leaves created so and for every result of an operation
                    with such an input
    _inputs : tuple of Tensor, the operands (empty unless requires_grad)
    _backward : None for a leaf; for the result of an operation, a function of ``dout`` (an
                array of shape (S...), the gradient with respect to this tensor) that adds
                the operands' gradient contributions with ``accumulate``

    Operations: ``+ - * / **`` (scalar exponent), unary ``-``, ``@`` (operands with ndim >= 2,
    batch axes broadcast), ``relu``, ``tanh``, ``exp``, ``log``, ``sum``, ``mean``,
    ``reshape``, ``transpose`` (``.T``) and ``log_softmax``. Arrays and numbers mix with
    tensors as constants.
    """

    __array_ufunc__ = None           # numpy defers to us: array + Tensor calls __radd__

    def __init__(self, data, requires_grad=False, _inputs=(), _op=""):
        self.data = np.array(as_array("Tensor", "data", data))   # a copy: the tensor owns it
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise ValueError(f"Tensor: requires_grad must be True or False; got {requires_grad!r}")
        self.requires_grad = bool(requires_grad) or any(t.requires_grad for t in _inputs)
        self.grad = None
        # Only a graph that leads to a parameter needs to remember its inputs.
        self._inputs = tuple(_inputs) if self.requires_grad else ()
        self._backward = None        # dout -> None, adds to the inputs' .grad
        self._op = _op

    # --- conveniences --------------------------------------------------------------------

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def T(self):
        return self.transpose()

    def item(self):
        """The value of a one-element tensor as a Python float."""
        return self.data.item()

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.data!r}{grad})"

    @staticmethod
    def lift(x):
        """``x`` itself if it is a Tensor, else a constant Tensor (requires_grad False)."""
        return x if isinstance(x, Tensor) else Tensor(x)

    # --- gradient plumbing -----------------------------------------------------------------

    @staticmethod
    def unbroadcast(grad, shape):
        """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``shape``.

        Parameters
        ----------
        grad : array of a shape (G...) that ``shape`` broadcasts to
        shape : tuple, the operand's shape (S...)

        Returns
        -------
        grad : array of shape (S...)
        """
        ### BEGIN SOLUTION
        # Leading axes that broadcasting prepended: the operand was reused along them.
        extra = grad.ndim - len(shape)
        if extra > 0:
            grad = grad.sum(axis=tuple(range(extra)))
        # Axes of size 1 in the operand that were stretched: sum them, keeping the axis.
        stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if stretched:
            grad = grad.sum(axis=stretched, keepdims=True)
        ### END SOLUTION
        return grad.reshape(shape)

    def accumulate(self, grad):
        """Add a gradient contribution to ``self.grad`` (tensors without requires_grad ignore it).

        Parameters
        ----------
        grad : array of a shape (G...) that self's shape (S...) broadcasts to, e.g. the
               gradient of an operation's output when self was broadcast into it
        """
        if not self.requires_grad:
            return
        ### BEGIN SOLUTION
        grad = Tensor.unbroadcast(np.asarray(grad, dtype=np.float64), self.shape)
        self.grad = grad.copy() if self.grad is None else self.grad + grad
        ### END SOLUTION

    def topological_order(self):
        """Every tensor self depends on (self included), each after all of its inputs.

        Walk the graph with an explicit stack, not recursion, so that a graph thousands of
        operations deep does not hit Python's recursion limit.

        Returns
        -------
        order : list of Tensor, inputs before outputs, self last
        """
        ### BEGIN SOLUTION
        order, visited = [], set()
        stack = [(self, False)]                  # (node, its inputs already pushed?)
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)               # all of its inputs are in order by now
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((t, False) for t in node._inputs if id(t) not in visited)
        ### END SOLUTION
        return order

    def backward(self, grad=None):
        """Compute d self / d t into ``t.grad`` for every tensor t of the graph that requires it.

        Gradients of the graph are reset first, so repeated calls give the same result.

        Parameters
        ----------
        grad : array of self's shape (S...), the gradient of some loss with respect to self;
               may be omitted when self has a single element (a loss): it is then 1
        """
        if not self.requires_grad:
            raise ValueError("Tensor.backward: this tensor does not depend on any tensor with "
                             "requires_grad=True")
        if grad is None:
            if self.data.size != 1:
                raise ValueError("Tensor.backward: grad must be given for a tensor of shape "
                                 f"{shape_str(self.shape)}; only a one-element tensor gets 1")
            grad = np.ones_like(self.data)
        grad = as_array("Tensor.backward", "grad", grad)
        if grad.shape != self.shape:
            raise ValueError(f"Tensor.backward: grad must have shape {shape_str(self.shape)} "
                             f"(the tensor's shape); got {shape_str(grad.shape)}")
        ### BEGIN SOLUTION
        order = self.topological_order()
        for node in order:
            node.grad = None                     # from scratch: nothing left from earlier calls
        self.accumulate(grad)
        for node in reversed(order):             # outputs first: a node's grad is complete
            if node._backward is not None and node.grad is not None:
                node._backward(node.grad)
        ### END SOLUTION

    # --- operators and methods: each calls an operation function defined further down ------

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return neg(self)

    def __pow__(self, p):
        return power(self, p)

    def relu(self):
        return relu(self)

    def tanh(self):
        return tanh(self)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def log_softmax(self, axis=-1):
        return log_softmax(self, axis)

    def sum(self, axis=None, keepdims=False):
        return reduce_sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return reduce_mean(self, axis, keepdims)

    def reshape(self, *shape):
        return reshape(self, *shape)

    def transpose(self, axes=None):
        return transpose(self, axes)


# --- elementwise operations of two operands -------------------------------------------------
#
# Each function computes the value, records the operands, and gives the result a _backward
# rule: dout (the gradient of the result, of the broadcast shape) -> contributions to the
# operands' gradients, passed to accumulate (which sums them back to each operand's shape).

def add(a, b):
    """a + b elementwise, shapes broadcast as in numpy.

    Parameters
    ----------
    a, b : Tensor, array or number, of shapes (A...) and (B...) that broadcast to (S...)

    Returns
    -------
    out : Tensor of shape (S...)
    """
    a, b = Tensor.lift(a), Tensor.lift(b)
    out = Tensor(a.data + b.data, _inputs=(a, b), _op="+")

    def _backward(dout):
        ### BEGIN SOLUTION
        a.accumulate(dout)
        b.accumulate(dout)
        ### END SOLUTION
    out._backward = _backward
    return out


def sub(a, b):
    """a - b elementwise, shapes broadcast as in numpy (shapes as in ``add``)."""
    a, b = Tensor.lift(a), Tensor.lift(b)
    out = Tensor(a.data - b.data, _inputs=(a, b), _op="-")

    def _backward(dout):
        ### BEGIN SOLUTION
        a.accumulate(dout)
        b.accumulate(-dout)
        ### END SOLUTION
    out._backward = _backward
    return out


def mul(a, b):
    """a * b elementwise, shapes broadcast as in numpy (shapes as in ``add``)."""
    a, b = Tensor.lift(a), Tensor.lift(b)
    out = Tensor(a.data * b.data, _inputs=(a, b), _op="*")

    def _backward(dout):
        ### BEGIN SOLUTION
        a.accumulate(dout * b.data)
        b.accumulate(dout * a.data)
        ### END SOLUTION
    out._backward = _backward
    return out


def div(a, b):
    """a / b elementwise, shapes broadcast as in numpy (shapes as in ``add``)."""
    a, b = Tensor.lift(a), Tensor.lift(b)
    out = Tensor(a.data / b.data, _inputs=(a, b), _op="/")

    def _backward(dout):
        ### BEGIN SOLUTION
        a.accumulate(dout / b.data)
        b.accumulate(-dout * a.data / b.data ** 2)
        ### END SOLUTION
    out._backward = _backward
    return out


# --- elementwise operations of one operand ---------------------------------------------------

def neg(x):
    """-x elementwise.

    Parameters
    ----------
    x : Tensor, array or number of shape (S...)

    Returns
    -------
    out : Tensor of shape (S...)
    """
    x = Tensor.lift(x)
    out = Tensor(-x.data, _inputs=(x,), _op="neg")

    def _backward(dout):
        ### BEGIN SOLUTION
        x.accumulate(-dout)
        ### END SOLUTION
    out._backward = _backward
    return out


def power(x, p):
    """x ** p elementwise, for a number p (shapes as in ``neg``)."""
    if isinstance(p, Tensor) or np.ndim(p) != 0:
        raise ValueError("power: the exponent must be a number; "
                         f"got {type(p).__name__}")
    x, p = Tensor.lift(x), float(p)
    out = Tensor(x.data ** p, _inputs=(x,), _op=f"**{p:g}")

    def _backward(dout):
        ### BEGIN SOLUTION
        x.accumulate(dout * p * x.data ** (p - 1))
        ### END SOLUTION
    out._backward = _backward
    return out


def relu(x):
    """max(x, 0) elementwise (shapes as in ``neg``)."""
    x = Tensor.lift(x)
    out = Tensor(np.maximum(x.data, 0.0), _inputs=(x,), _op="relu")

    def _backward(dout):
        ### BEGIN SOLUTION
        x.accumulate(dout * (x.data > 0))   # slope 0 at the kink, as PyTorch
        ### END SOLUTION
    out._backward = _backward
    return out


def tanh(x):
    """tanh(x) elementwise (shapes as in ``neg``)."""
    x = Tensor.lift(x)
    # The rule keeps what it needs (here t), not `out`: out -> _backward -> out would be a
    # reference cycle that only the garbage collector frees.
    t = np.tanh(x.data)
    out = Tensor(t, _inputs=(x,), _op="tanh")

    def _backward(dout):
        ### BEGIN SOLUTION
        x.accumulate(dout * (1.0 - t ** 2))
        ### END SOLUTION
    out._backward = _backward
    return out


def exp(x):
    """exp(x) elementwise (shapes as in ``neg``)."""
    x = Tensor.lift(x)
    e = np.exp(x.data)
    out = Tensor(e, _inputs=(x,), _op="exp")

    def _backward(dout):
        ### BEGIN SOLUTION
        x.accumulate(dout * e)
        ### END SOLUTION
    out._backward = _backward
    return out


def log(x):
    """Natural logarithm of x elementwise (shapes as in ``neg``)."""
    x = Tensor.lift(x)
    out = Tensor(np.log(x.data), _inputs=(x,), _op="log")

    def _backward(dout):
        ### BEGIN SOLUTION
        x.accumulate(dout / x.data)
        ### END SOLUTION
    out._backward = _backward
    return out


# --- matrix product ----------------------------------------------------------------------

def matmul(a, b):
    """a @ b, batch axes broadcast as in numpy.

    Parameters
    ----------
    a : Tensor or array of shape (..., N, D), ndim >= 2
    b : Tensor or array of shape (..., D, M), ndim >= 2; the batch axes (...) of a and b
        broadcast to (B...)

    Returns
    -------
    out : Tensor of shape (B..., N, M)
    """
    a, b = Tensor.lift(a), Tensor.lift(b)
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError("matmul: both operands need ndim >= 2 (reshape vectors to (1, D) or "
                         f"(D, 1)); got {shape_str(a.shape)} @ {shape_str(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: b must have shape (..., {a.shape[-1]}, M) to match a of shape "
                         f"{shape_str(a.shape)}; got {shape_str(b.shape)}")
    out = Tensor(a.data @ b.data, _inputs=(a, b), _op="@")

    def _backward(dout):
        ### BEGIN SOLUTION
        # C = A B: dA = dC B^T, dB = A^T dC; accumulate sums any broadcast batch axes.
        a.accumulate(dout @ np.swapaxes(b.data, -1, -2))
        b.accumulate(np.swapaxes(a.data, -1, -2) @ dout)
        ### END SOLUTION
    out._backward = _backward
    return out


# --- reductions and shapes ------------------------------------------------------------------

def reduce_sum(x, axis=None, keepdims=False):
    """The sum of x over ``axis`` (an int, a tuple of ints or None for all), as numpy's sum.

    Parameters
    ----------
    x : Tensor or array of shape (S...)
    axis : None, int or tuple of ints (negative counts from the end)
    keepdims : bool, keep the summed axes with size 1

    Returns
    -------
    out : Tensor of shape (S...) without the summed axes (with them as 1 when keepdims)
    """
    x = Tensor.lift(x)
    out = Tensor(x.data.sum(axis=axis, keepdims=keepdims), _inputs=(x,), _op="sum")

    def _backward(dout):
        ### BEGIN SOLUTION
        # Every summed element gets dout: put back the reduced axes, then broadcast.
        if axis is not None and not keepdims:
            dout = np.expand_dims(dout, axis)
        x.accumulate(np.broadcast_to(dout, x.shape))
        ### END SOLUTION
    out._backward = _backward
    return out


def reduce_mean(x, axis=None, keepdims=False):
    """The mean of x over ``axis``, as numpy's mean (shapes as in ``reduce_sum``).

    Each output element is the sum of the elements it covers divided by their number.
    """
    x = Tensor.lift(x)
    ### BEGIN SOLUTION
    # Built from operations that have backward rules: nothing new to differentiate.
    total = reduce_sum(x, axis, keepdims)
    return mul(total, total.data.size / x.data.size)
    ### END SOLUTION


def reshape(x, *shape):
    """The same elements in a new shape, as numpy's reshape.

    Parameters
    ----------
    x : Tensor or array of shape (S...)
    shape : the new shape (R...), as ints or one tuple; one entry may be -1

    Returns
    -------
    out : Tensor of shape (R...)
    """
    x = Tensor.lift(x)
    out = Tensor(x.data.reshape(*shape), _inputs=(x,), _op="reshape")

    def _backward(dout):
        ### BEGIN SOLUTION
        x.accumulate(dout.reshape(x.shape))
        ### END SOLUTION
    out._backward = _backward
    return out


def transpose(x, axes=None):
    """x with its axes permuted by ``axes`` (reversed when None), as numpy's transpose.

    Parameters
    ----------
    x : Tensor or array of shape (S_0, ..., S_{k-1})
    axes : None or a permutation of 0..k-1

    Returns
    -------
    out : Tensor of shape (S_axes[0], ..., S_axes[k-1])
    """
    x = Tensor.lift(x)
    out = Tensor(np.transpose(x.data, axes), _inputs=(x,), _op="transpose")

    def _backward(dout):
        ### BEGIN SOLUTION
        # Undo the permutation: the inverse of axes is its argsort.
        inverse = None if axes is None else np.argsort(axes)
        x.accumulate(np.transpose(dout, inverse))
        ### END SOLUTION
    out._backward = _backward
    return out


# --- a fused operation ------------------------------------------------------------------------

def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed stably (the max is subtracted first).

    Parameters
    ----------
    x : Tensor or array of shape (S...), e.g. scores of shape (N, C)
    axis : int, the axis the softmax normalizes over (the classes)

    Returns
    -------
    out : Tensor of shape (S...)
    """
    x = Tensor.lift(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    out = Tensor(log_probs, _inputs=(x,), _op="log_softmax")

    def _backward(dout):
        ### BEGIN SOLUTION
        # out_i = x_i - logsumexp(x): dx = dout - softmax * sum(dout).
        softmax = np.exp(log_probs)
        x.accumulate(dout - softmax * dout.sum(axis=axis, keepdims=True))
        ### END SOLUTION
    out._backward = _backward
    return out
