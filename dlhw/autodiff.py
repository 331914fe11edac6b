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
sums a gradient back to an operand's shape.

``backward()`` differs from PyTorch on purpose: it first resets the gradient of every node
of the graph to zero, so each call computes the gradients of this output from scratch and
calling it twice gives the same result (PyTorch would add the two). To combine the
gradients of two losses, call backward on their sum.

The class is self-contained: a notebook cell holds it whole.
"""
from __future__ import annotations

import numpy as np

from dlhw.validation import as_array, shape_str

__all__ = ["Tensor"]


class Tensor:
    """An array with a gradient, recording the operations that produce it.

    Parameters
    ----------
    data : array-like of any shape (S...), copied to a float64 array
    requires_grad : bool; True for the leaves we want gradients of (the parameters)

    Attributes
    ----------
    data : array of shape (S...)
    grad : array of shape (S...) after ``backward()`` for tensors that require a gradient;
           None otherwise
    requires_grad : bool, True for leaves created so and for every result of an operation
                    with such an input

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

        Iterative depth-first search, so a graph thousands of operations deep does not hit
        Python's recursion limit.

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

    # --- binary operations -----------------------------------------------------------------

    def __add__(self, other):
        """self + other, shapes broadcast as in numpy."""
        other = Tensor.lift(other)
        out = Tensor(self.data + other.data, _inputs=(self, other), _op="+")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout)
            other.accumulate(dout)
            ### END SOLUTION
        out._backward = _backward
        return out

    def __sub__(self, other):
        """self - other, shapes broadcast as in numpy."""
        other = Tensor.lift(other)
        out = Tensor(self.data - other.data, _inputs=(self, other), _op="-")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout)
            other.accumulate(-dout)
            ### END SOLUTION
        out._backward = _backward
        return out

    def __mul__(self, other):
        """self * other elementwise, shapes broadcast as in numpy."""
        other = Tensor.lift(other)
        out = Tensor(self.data * other.data, _inputs=(self, other), _op="*")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout * other.data)
            other.accumulate(dout * self.data)
            ### END SOLUTION
        out._backward = _backward
        return out

    def __truediv__(self, other):
        """self / other elementwise, shapes broadcast as in numpy."""
        other = Tensor.lift(other)
        out = Tensor(self.data / other.data, _inputs=(self, other), _op="/")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout / other.data)
            other.accumulate(-dout * self.data / other.data ** 2)
            ### END SOLUTION
        out._backward = _backward
        return out

    def __matmul__(self, other):
        """self @ other: (..., N, D) @ (..., D, M) -> (..., N, M), batch axes broadcast."""
        other = Tensor.lift(other)
        if self.ndim < 2 or other.ndim < 2:
            raise ValueError("Tensor.__matmul__: both operands need ndim >= 2 (reshape vectors "
                             f"to (1, D) or (D, 1)); got {shape_str(self.shape)} @ "
                             f"{shape_str(other.shape)}")
        if self.shape[-1] != other.shape[-2]:
            raise ValueError(f"Tensor.__matmul__: other must have shape (..., {self.shape[-1]}, M) "
                             f"to match self of shape {shape_str(self.shape)}; "
                             f"got {shape_str(other.shape)}")
        out = Tensor(self.data @ other.data, _inputs=(self, other), _op="@")

        def _backward(dout):
            ### BEGIN SOLUTION
            # C = A B: dA = dC B^T, dB = A^T dC; accumulate sums any broadcast batch axes.
            self.accumulate(dout @ np.swapaxes(other.data, -1, -2))
            other.accumulate(np.swapaxes(self.data, -1, -2) @ dout)
            ### END SOLUTION
        out._backward = _backward
        return out

    def __radd__(self, other):
        return Tensor.lift(other) + self

    def __rsub__(self, other):
        return Tensor.lift(other) - self

    def __rmul__(self, other):
        return Tensor.lift(other) * self

    def __rtruediv__(self, other):
        return Tensor.lift(other) / self

    def __rmatmul__(self, other):
        return Tensor.lift(other) @ self

    # --- unary operations ------------------------------------------------------------------

    def __neg__(self):
        """-self."""
        out = Tensor(-self.data, _inputs=(self,), _op="neg")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(-dout)
            ### END SOLUTION
        out._backward = _backward
        return out

    def __pow__(self, p):
        """self ** p elementwise, for a number p."""
        if isinstance(p, Tensor) or np.ndim(p) != 0:
            raise ValueError("Tensor.__pow__: the exponent must be a number; "
                             f"got {type(p).__name__}")
        p = float(p)
        out = Tensor(self.data ** p, _inputs=(self,), _op=f"**{p:g}")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout * p * self.data ** (p - 1))
            ### END SOLUTION
        out._backward = _backward
        return out

    def relu(self):
        """max(self, 0) elementwise."""
        out = Tensor(np.maximum(self.data, 0.0), _inputs=(self,), _op="relu")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout * (self.data > 0))   # slope 0 at the kink, as PyTorch
            ### END SOLUTION
        out._backward = _backward
        return out

    def tanh(self):
        """tanh(self) elementwise."""
        # The closures keep what they need (here t), not `out`: out -> closure -> out would
        # be a reference cycle that only the garbage collector frees.
        t = np.tanh(self.data)
        out = Tensor(t, _inputs=(self,), _op="tanh")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout * (1.0 - t ** 2))
            ### END SOLUTION
        out._backward = _backward
        return out

    def exp(self):
        """exp(self) elementwise."""
        e = np.exp(self.data)
        out = Tensor(e, _inputs=(self,), _op="exp")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout * e)
            ### END SOLUTION
        out._backward = _backward
        return out

    def log(self):
        """Natural log of self elementwise."""
        out = Tensor(np.log(self.data), _inputs=(self,), _op="log")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout / self.data)
            ### END SOLUTION
        out._backward = _backward
        return out

    def log_softmax(self, axis=-1):
        """log(softmax(self)) along ``axis``, computed stably (the max is subtracted first)."""
        shifted = self.data - self.data.max(axis=axis, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        out = Tensor(log_probs, _inputs=(self,), _op="log_softmax")

        def _backward(dout):
            ### BEGIN SOLUTION
            # out_i = x_i - logsumexp(x): dx = dout - softmax * sum(dout).
            softmax = np.exp(log_probs)
            self.accumulate(dout - softmax * dout.sum(axis=axis, keepdims=True))
            ### END SOLUTION
        out._backward = _backward
        return out

    # --- reductions and shape operations ------------------------------------------------

    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis`` (an int, a tuple or None for all), as numpy's sum."""
        out = Tensor(self.data.sum(axis=axis, keepdims=keepdims), _inputs=(self,), _op="sum")

        def _backward(dout):
            ### BEGIN SOLUTION
            # Every summed element gets dout: put back the reduced axes, then broadcast.
            if axis is not None and not keepdims:
                dout = np.expand_dims(dout, axis)
            self.accumulate(np.broadcast_to(dout, self.shape))
            ### END SOLUTION
        out._backward = _backward
        return out

    def mean(self, axis=None, keepdims=False):
        """The sum divided by the number of elements summed into each output element."""
        total = self.sum(axis=axis, keepdims=keepdims)
        return total * (total.data.size / self.data.size)

    def reshape(self, *shape):
        """The same elements in a new shape, as numpy's reshape."""
        out = Tensor(self.data.reshape(*shape), _inputs=(self,), _op="reshape")

        def _backward(dout):
            ### BEGIN SOLUTION
            self.accumulate(dout.reshape(self.shape))
            ### END SOLUTION
        out._backward = _backward
        return out

    def transpose(self, axes=None):
        """Axes permuted by ``axes`` (reversed when None), as numpy's transpose."""
        out = Tensor(np.transpose(self.data, axes), _inputs=(self,), _op="transpose")

        def _backward(dout):
            ### BEGIN SOLUTION
            # Undo the permutation: the inverse of axes is its argsort.
            inverse = None if axes is None else np.argsort(axes)
            self.accumulate(np.transpose(dout, inverse))
            ### END SOLUTION
        out._backward = _backward
        return out
