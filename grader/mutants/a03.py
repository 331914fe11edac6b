"""Assignment 03: slips students make in an autodiff engine, and correct variants."""
from grader.mutants import Mutant

# The reference topological sort (iterative depth-first search), as it appears in the answer cell.
TOPO = """\
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
"""

UNBROADCAST = """\
        extra = grad.ndim - len(shape)
        if extra > 0:
            grad = grad.sum(axis=tuple(range(extra)))
        # Axes of size 1 in the operand that were stretched: sum them, keeping the axis.
        stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
        if stretched:
            grad = grad.sum(axis=stretched, keepdims=True)
"""

ACCUMULATE = "self.grad = grad.copy() if self.grad is None else self.grad + grad"

WRONG = [
    # --- the graph machinery
    Mutant("Tensor", "accumulate overwrites instead of adding (= instead of +=)",
           replace=[(ACCUMULATE, "self.grad = grad.copy()")],
           fails=["test_autodiff_backward", "test_autodiff_graphs", "test_autodiff_mlp"]),
    Mutant("Tensor", "accumulate keeps the first contribution without a copy, then adds in place "
                     "(the stored array is shared with other tensors' gradients)",
           replace=[(ACCUMULATE, "if self.grad is None:\n"
                                 "            self.grad = grad\n"
                                 "        else:\n"
                                 "            self.grad += grad")],
           fails=["test_autodiff_graphs"]),
    Mutant("Tensor", "topological order by recursion without a visited set (a node reached along "
                     "two paths is listed twice, so its gradient is passed on twice)",
           replace=[(TOPO, "        order = []\n\n"
                           "        def visit(node):\n"
                           "            for t in node._inputs:\n"
                           "                visit(t)\n"
                           "            order.append(node)\n"
                           "        visit(self)\n")],
           fails=["test_autodiff_topological_order", "test_autodiff_backward", "test_autodiff_deep_chain"]),
    Mutant("Tensor", "topological order reversed (outputs before inputs)",
           replace=[("order.append(node)               # all of its inputs are in order by now",
                     "order.insert(0, node)")],
           fails=["test_autodiff_topological_order", "test_autodiff_backward"]),
    Mutant("Tensor", "a correct but recursive depth-first search: RecursionError on deep graphs",
           replace=[(TOPO, "        order, visited = [], set()\n\n"
                           "        def visit(node):\n"
                           "            if id(node) in visited:\n"
                           "                return\n"
                           "            visited.add(id(node))\n"
                           "            for t in node._inputs:\n"
                           "                visit(t)\n"
                           "            order.append(node)\n"
                           "        visit(self)\n")],
           fails=["test_autodiff_deep_chain"]),
    Mutant("Tensor", "backward does not reset the gradients (a second call adds to the first)",
           replace=[("        for node in order:\n"
                     "            node.grad = None                     # from scratch: nothing left from earlier calls\n",
                     "")],
           fails=["test_autodiff_backward_twice"]),
    Mutant("Tensor", "unbroadcast forgets the stretched size-1 axes", replace=[(UNBROADCAST, """\
        extra = grad.ndim - len(shape)
        if extra > 0:
            grad = grad.sum(axis=tuple(range(extra)))
""")], fails=["test_autodiff_unbroadcast"]),
    Mutant("Tensor", "accumulate does not unbroadcast (gradients keep the broadcast shape)",
           replace=[("grad = Tensor.unbroadcast(np.asarray(grad, dtype=np.float64), self.shape)",
                     "grad = np.asarray(grad, dtype=np.float64)")],
           fails=["test_autodiff_add_sub", "test_autodiff_mul"]),
    # --- backward rules
    Mutant("elementwise_binary", "mul's rule gives each operand its own value instead of the other's",
           replace=[("a.accumulate(dout * b.data)\n        b.accumulate(dout * a.data)",
                     "a.accumulate(dout * a.data)\n        b.accumulate(dout * b.data)")],
           fails=["test_autodiff_mul"]),
    Mutant("elementwise_binary", "sub's rule forgets the minus sign for b",
           replace=[("b.accumulate(-dout)", "b.accumulate(dout)")], fails=["test_autodiff_add_sub"]),
    Mutant("elementwise_binary", "div's rule for the denominator without the minus sign",
           replace=[("-dout * a.data / b.data ** 2", "dout * a.data / b.data ** 2")],
           fails=["test_autodiff_div"]),
    Mutant("elementwise_unary", "log's rule 1/x^2 instead of 1/x",
           replace=[("x.accumulate(dout / x.data)", "x.accumulate(dout / x.data ** 2)")],
           fails=["test_autodiff_exp_log"]),
    Mutant("elementwise_unary", "tanh's rule (1 - t)^2 instead of 1 - t^2",
           replace=[("dout * (1.0 - t ** 2)", "dout * (1.0 - t) ** 2")], fails=["test_autodiff_tanh"]),
    Mutant("elementwise_unary", "power's rule forgets the factor p",
           replace=[("dout * p * x.data ** (p - 1)", "dout * x.data ** (p - 1)")],
           fails=["test_autodiff_neg_power"]),
    Mutant("elementwise_unary", "relu's rule masks with dout > 0 instead of x > 0",
           replace=[("dout * (x.data > 0)", "dout * (dout > 0)")], fails=["test_autodiff_relu"]),
    Mutant("matmul", "dA = dC B instead of dC B^T",
           replace=[("a.accumulate(dout @ np.swapaxes(b.data, -1, -2))", "a.accumulate(dout @ b.data)")],
           fails=["test_autodiff_matmul"]),
    Mutant("matmul", ".T instead of swapping the last two axes (wrong for stacks of matrices)",
           replace=[("np.swapaxes(b.data, -1, -2)", "b.data.T"), ("np.swapaxes(a.data, -1, -2)", "a.data.T")],
           fails=["test_autodiff_matmul"]),
    Mutant("reductions_shapes", "sum's rule ignores the axis (the reduced axes are not put back)",
           replace=[("        if axis is not None and not keepdims:\n"
                     "            dout = np.expand_dims(dout, axis)\n", "")],
           fails=["test_autodiff_sum"]),
    Mutant("reductions_shapes", "mean divides by the size of x whatever the axis",
           replace=[("total.data.size / x.data.size", "1.0 / x.data.size")], fails=["test_autodiff_mean"]),
    Mutant("reductions_shapes", "transpose's rule applies axes again instead of its inverse",
           replace=[("inverse = None if axes is None else np.argsort(axes)", "inverse = axes")],
           fails=["test_autodiff_reshape_transpose"]),
    Mutant("log_softmax", "log_softmax's rule forgets the sum of dout (dx = dout - softmax)",
           replace=[("dout - softmax * dout.sum(axis=axis, keepdims=True)", "dout - softmax")],
           fails=["test_autodiff_log_softmax"]),
    Mutant("log_softmax", "softmax recomputed from exp(x) in the rule (overflows for logits ~1e3)",
           replace=[("softmax = np.exp(log_probs)",
                     "softmax = np.exp(x.data) / np.exp(x.data).sum(axis=axis, keepdims=True)")],
           fails=["test_autodiff_log_softmax"]),
]

RIGHT = [
    Mutant("Tensor", "topological order by Kahn's algorithm (count consumers, emit when all are done)",
           replace=[(TOPO, """\
        consumers, seen, stack = {}, {id(self)}, [self]
        while stack:                             # count the consumers of every tensor
            node = stack.pop()
            for t in node._inputs:
                consumers[id(t)] = consumers.get(id(t), 0) + 1
                if id(t) not in seen:
                    seen.add(id(t))
                    stack.append(t)
        order, ready = [], [self]
        while ready:                             # outputs first: a node once its consumers are out
            node = ready.pop()
            order.append(node)
            for t in node._inputs:
                consumers[id(t)] -= 1
                if consumers[id(t)] == 0:
                    ready.append(t)
        order.reverse()
""")]),
    Mutant("Tensor", "unbroadcast with a loop over the axes", replace=[(UNBROADCAST, """\
        while grad.ndim > len(shape):
            grad = grad.sum(axis=0)
        for i, n in enumerate(shape):
            if n == 1:
                grad = grad.sum(axis=i, keepdims=True)
""")]),
    Mutant("Tensor", "accumulate copies the first contribution, then adds in place",
           replace=[(ACCUMULATE, "if self.grad is None:\n"
                                 "            self.grad = np.array(grad, dtype=np.float64)\n"
                                 "        else:\n"
                                 "            self.grad += grad")]),
    Mutant("elementwise_unary", "relu with np.where, tanh's derivative as 1 / cosh^2",
           replace=[("dout * (x.data > 0)", "np.where(x.data > 0, dout, 0.0)"),
                    ("dout * (1.0 - t ** 2)", "dout / np.cosh(x.data) ** 2")]),
    Mutant("matmul", "the rules with einsum",
           replace=[("a.accumulate(dout @ np.swapaxes(b.data, -1, -2))",
                     "a.accumulate(np.einsum('...nm,...dm->...nd', dout, b.data))"),
                    ("b.accumulate(np.swapaxes(a.data, -1, -2) @ dout)",
                     "b.accumulate(np.einsum('...nd,...nm->...dm', a.data, dout))")]),
    Mutant("reductions_shapes", "mean with its own backward rule; transpose's inverse by a search",
           replace=[("""\
    total = reduce_sum(x, axis, keepdims)
    return mul(total, total.data.size / x.data.size)
""", """\
    value = x.data.mean(axis=axis, keepdims=keepdims)
    out = Tensor(value, _inputs=(x,), _op="mean")
    count = x.data.size / max(value.size, 1)

    def _backward(dout):
        if axis is not None and not keepdims:
            dout = np.expand_dims(dout, axis)
        x.accumulate(np.broadcast_to(dout / count, x.shape))
    out._backward = _backward
    return out
"""), ("inverse = None if axes is None else np.argsort(axes)",
       "inverse = None if axes is None else [list(axes).index(i) for i in range(len(axes))]")]),
    Mutant("log_softmax", "softmax recomputed stably from the shifted scores",
           replace=[("softmax = np.exp(log_probs)",
                     "softmax = np.exp(shifted) / np.exp(shifted).sum(axis=axis, keepdims=True)")]),
]
