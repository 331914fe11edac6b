"""Checks of attention and transformers (assignment 08): scaled dot-product and multi-head
attention, positional encoding, the pre-LN transformer block.

Oracles, all in float64 and independent of dlhw's reference:

* scaled dot-product attention: ``torch.nn.functional.scaled_dot_product_attention`` with a
  boolean ``attn_mask`` (True = may attend, the graded API's convention) and its autograd;
* multi-head attention and the transformer block: the formulas spelled out in torch ops
  (projections, a reshape of the features into heads, an explicit masked softmax,
  ``torch.nn.functional.layer_norm``, relu) and their autograd;
* positional encoding: the sinusoid formula evaluated in torch.

Tolerance: 1e-9 of the largest entry of each array (``compare`` is normwise). Every quantity
is a short chain of float64 sums and products, so a correct implementation that merely sums in
another order stays below 1e-13. A query that sees exactly one key has a constant softmax, so
its gradient (and that key's) is exactly 0 in theory and about 1e-17 in practice: an
elementwise relative error would turn that noise into a failure, which is why every comparison
is normwise. When a whole expected gradient is 0 (sequences of length one), the error is taken
relative to 1e-2 instead (the inputs are of order one, so are the gradients they give), which
still catches any real term (of order 0.1) that should not be there.

Every check runs a fixed list of cases, visible and hidden alike (hidden ones draw other sizes
and values): extra leading (head) axes, masks that leave a single key to some queries, causal
masks, padding masks, Tq != Tk, Dv != D, sequences of length one, one head and one feature per
head; scores of order 1e3 for the forward pass (a softmax that does not subtract the row
maximum overflows); odd model sizes and long sequences for the positional encoding.
"""
from __future__ import annotations

import math

import numpy as np

from dlhw.checks.core import Case, Cases, CheckFailed, as_wire_array as _out, call, compare, fail
from dlhw.checks.helpers import deep_copy as _copy, ri as _ri, torch as _torch
from dlhw.checks.spec import layer, values

TOL = 1e-9
ZERO_FLOOR = 1e-2          # the scale of an all-zero expected gradient (see the module docstring)


def _where(case):
    return f" [{case['what']}]"


def _fixed(spec, cases_of_rng):
    """Cases from a list maker: ``cases_of_rng(rng)`` returns the module's case dicts in the order
    of ``spec`` [(name, properties)]; each fixed case runs alone, visible and hidden alike (and
    draws its values after the cases before it, from the same stream)."""
    def one(i):
        def make(rng):
            cases = cases_of_rng(rng)
            if len(cases) != len(spec):
                raise RuntimeError(f"internal: {len(cases)} cases for {len(spec)} names")
            return cases[i]
        return make
    return Cases([Case(name, props, one(i)) for i, (name, props) in enumerate(spec)])


def _cmp(what, got, expected, tol=TOL, hint="", oracle="PyTorch"):
    """``compare`` with the error of an all-zero expected array taken relative to ZERO_FLOOR."""
    e = np.asarray(expected, dtype=np.float64)
    if e.size and float(np.max(np.abs(e))) < ZERO_FLOOR and got is not None:
        try:
            g = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            g = None
        if g is not None and g.shape == e.shape and np.all(np.isfinite(g)):
            err = float(np.max(np.abs(g - e))) / ZERO_FLOOR
            if err > tol:
                idx = np.unravel_index(int(np.argmax(np.abs(g - e))), e.shape)
                fail(f"{what}: {oracle} gives {'exactly 0' if not np.any(e) else 'almost 0'} everywhere "
                     f"(largest |entry| {np.max(np.abs(e)):.1e}), yours has {g[idx]:.6g} at index "
                     f"{tuple(int(i) for i in idx)}" + (f". Hint: {hint}" if hint else ""))
            return err
    return compare(what, got, expected, tol=tol, hint=hint, oracle=oracle)


def _random_mask(rng, shape, single_rows=0.0):
    """A boolean mask in which every row (last axis) keeps at least one key.

    A fraction ``single_rows`` of the rows keeps exactly one key.
    """
    mask = rng.random(shape) < 0.6
    keep = rng.integers(0, shape[-1], size=shape[:-1])
    single = rng.random(shape[:-1]) < single_rows
    mask[single] = False
    np.put_along_axis(mask, keep[..., None], True, axis=-1)
    return mask


def _causal(T):
    return np.tril(np.ones((T, T), dtype=bool))


def _describe_mask(mask):
    return "no mask" if mask is None else f"mask of shape {mask.shape}"


# =========================================================================== attention
ATT_HINTS = {
    "out": "out = softmax(q @ k^T / sqrt(D)) @ v, the softmax along the LAST axis (over the keys), "
           "masked scores set to -inf BEFORE the softmax (mask True = may attend), the row maximum "
           "subtracted before exp; transpose only the last two axes of k (np.swapaxes(k, -1, -2)) so "
           "that leading (head) axes stay put",
    "dq": "with P the attention weights, dP = dout @ v^T; the softmax backward is "
          "dS = P * (dP - sum(P * dP, axis=-1, keepdims=True)); then dq = dS @ k / sqrt(D)",
    "dk": "dk = dS^T @ q / sqrt(D), with dS = P * (dP - sum(P * dP, axis=-1, keepdims=True)) and the "
          "transpose taken over the last two axes (the keys index the columns of the scores)",
    "dv": "dv = P^T @ dout with P the normalized, masked attention weights (the softmax output, "
          "not the raw scores), transposed over the last two axes",
}


def _att_case(rng, lead, Tq, Tk, D, Dv, mask=None, scale=1.0, what=""):
    q = rng.standard_normal((*lead, Tq, D)) * scale
    k = rng.standard_normal((*lead, Tk, D)) * scale
    v = rng.standard_normal((*lead, Tk, Dv))
    desc = (f"q {q.shape}, k {k.shape}, v {v.shape}, {_describe_mask(mask)}"
            + (f" ({what})" if what else ""))
    return {"what": desc, "q": q, "k": k, "v": v, "mask": mask,
            "dout": rng.standard_normal((*lead, Tq, Dv))}


def _att_list(forward):
    def cases_of_rng(rng):
        cases = [
            _att_case(rng, (2,), 4, 5, 6, 3, what="no mask"),
            _att_case(rng, (2, 2), 5, 5, 4, 4, mask=_causal(5), what="causal mask, a heads axis"),
            _att_case(rng, (2,), 3, 4, 5, 2, mask=_random_mask(rng, (2, 3, 4), 0.3),
                      what="random mask, a mask per example"),
        ]
        N, H, Tq, Tk = 2, _ri(rng, 2, 4), _ri(rng, 2, 6), _ri(rng, 2, 6)
        cases.append(_att_case(rng, (N, H), Tq, Tk, _ri(rng, 2, 8), _ri(rng, 1, 6),
                               mask=_random_mask(rng, (1, 1, Tq, Tk), 0.2),
                               what="extra heads axis, a mask shared by the batch and the heads"))
        N, Tq, Tk = 2, _ri(rng, 3, 6), _ri(rng, 2, 6)
        m = _random_mask(rng, (N, Tq, Tk), 0.5)
        m[0] = False                                    # example 0: every query sees one key
        m[0, np.arange(Tq), rng.integers(0, Tk, size=Tq)] = True
        cases.append(_att_case(rng, (N,), Tq, Tk, _ri(rng, 2, 6), _ri(rng, 2, 6), mask=m,
                               what="one key per query in example 0 and in some rows of example 1"))
        T = _ri(rng, 4, 9)
        cases.append(_att_case(rng, (_ri(rng, 1, 3), _ri(rng, 1, 3), 2), T, T, _ri(rng, 2, 6), _ri(rng, 2, 6),
                               mask=_causal(T), what="causal mask, three leading axes"))
        N, Tq, Tk = _ri(rng, 2, 3), _ri(rng, 2, 5), _ri(rng, 5, 9)
        pad = np.ones((N, 1, Tk), dtype=bool)
        for n in range(N):
            pad[n, 0, _ri(rng, 1, Tk - 1):] = False
        cases.append(_att_case(rng, (N,), Tq, Tk, _ri(rng, 3, 7), _ri(rng, 1, 2), mask=pad,
                               what="padding mask over the keys, Tq != Tk, Dv != D"))
        cases.append(_att_case(rng, (_ri(rng, 2, 3),), 1, 1, _ri(rng, 1, 4), _ri(rng, 1, 4),
                               what="sequences of length one"))
        cases.append(_att_case(rng, (2, 2), 1, _ri(rng, 3, 6), _ri(rng, 2, 5), _ri(rng, 2, 5),
                               what="a single query"))
        cases.append(_att_case(rng, (2,), _ri(rng, 5, 9), _ri(rng, 5, 9), _ri(rng, 8, 16), _ri(rng, 3, 8),
                               what="no mask, larger"))
        if forward:
            cases.append(_att_case(rng, (2,), 4, 6, 8, 3, scale=30.0, mask=_random_mask(rng, (4, 6)),
                                   what="scores of order 1e3: exp overflows unless the row maximum is subtracted"))
        return cases
    return cases_of_rng


_ATT_SPEC = [
    ("no mask", {"no mask", "batch axis"}),
    ("causal mask, a heads axis", {"causal mask", "heads axis"}),
    ("random mask per example", {"random mask", "mask per example"}),
    ("heads axis, a mask shared by the batch and the heads", {"random mask", "heads axis", "broadcast mask"}),
    ("one key per query", {"random mask", "mask per example", "one key per query"}),
    ("causal mask, three leading axes", {"causal mask", "three leading axes"}),
    ("padding mask, Tq != Tk, Dv != D", {"padding mask", "Tq != Tk", "Dv != D"}),
    ("sequences of length one", {"no mask", "T = 1"}),
    ("a single query", {"no mask", "heads axis", "Tq = 1"}),
    ("no mask, larger", {"no mask", "batch axis"}),
]


def _att_inputs(forward):
    # visible and hidden alike (hidden ones draw other sizes and values)
    spec = _ATT_SPEC + ([("scores of order 1e3", {"random mask", "scores of 1e3"})] if forward else [])
    return _fixed(spec, _att_list(forward))


def _att_oracle(case):
    torch = _torch()
    F = torch.nn.functional
    ts = [torch.tensor(case[n], requires_grad=True) for n in ("q", "k", "v")]
    mask = None if case["mask"] is None else torch.tensor(case["mask"])
    out = F.scaled_dot_product_attention(*ts, attn_mask=mask)
    out.backward(torch.tensor(case["dout"]))
    return {"out": out.detach().numpy(), "dq": ts[0].grad.numpy(), "dk": ts[1].grad.numpy(),
            "dv": ts[2].grad.numpy()}


def _att_args(case):
    return [case["q"], case["k"], case["v"], case["mask"]]


layer("attention_forward", "attention_backward", _att_inputs(True), _att_oracle, args=_att_args,
      grads=("dq", "dk", "dv"), backward_cases=_att_inputs(False), hints=ATT_HINTS, where=_where, compare_with=_cmp,
      forward_says_oracle="torch.nn.functional.scaled_dot_product_attention",
      grad_says_oracle="the autograd of scaled_dot_product_attention",
      forward_doc="{fn}: out against PyTorch's scaled_dot_product_attention")


# =========================================================================== multi-head attention
MHA_GRADS = ("dx_q", "dx_kv", "dWq", "dWk", "dWv", "dWo")
MHA_HINTS = {
    "out": "Q = x_q @ Wq, K = x_kv @ Wk, V = x_kv @ Wv; split the LAST axis into heads: "
           "(N, T, D) -> reshape (N, T, h, D/h) -> transpose to (N, h, T, D/h) (a direct reshape to "
           "(N, h, T, D/h) mixes positions into heads); attention per head (scaled by 1/sqrt(D/h)); "
           "transpose back, reshape to (N, Tq, D), then @ Wo",
    "dx_q": "dx_q = dQ @ Wq.T with dQ the heads' dq moved back from (N, h, Tq, D/h) to (N, Tq, D) "
            "(transpose, then reshape)",
    "dx_kv": "x_kv feeds both the keys and the values: dx_kv = dK @ Wk.T + dV @ Wv.T",
    "dWq": "dWq = x_q^T dQ summed over the batch and the positions: x_q.reshape(-1, D).T @ dQ.reshape(-1, D)",
    "dWk": "dWk = x_kv.reshape(-1, D).T @ dK.reshape(-1, D), dK moved back from heads to (N, Tk, D)",
    "dWv": "dWv = x_kv.reshape(-1, D).T @ dV.reshape(-1, D), dV moved back from heads to (N, Tk, D)",
    "dWo": "dWo is the sum over every (n, t) of outer(concat[n, t], dout[n, t]), concat the heads' outputs side by side "
           "(N, Tq, D) before Wo",
}


def _mha_case(rng, N, Tq, Tk, D, h, mask=None, self_attention=False, what=""):
    x_q = rng.standard_normal((N, Tq, D))
    x_kv = x_q.copy() if self_attention else rng.standard_normal((N, Tk, D))
    Ws = [rng.standard_normal((D, D)) / math.sqrt(D) * 1.5 for _ in range(4)]
    desc = (f"N={N}, Tq={Tq}, Tk={Tk}, D={D}, num_heads={h}, {_describe_mask(mask)}"
            + (", self-attention (x_kv = x_q)" if self_attention else "") + (f" ({what})" if what else ""))
    return {"what": desc, "args": [x_q, x_kv, *Ws], "num_heads": h, "mask": mask,
            "self": self_attention, "dout": rng.standard_normal((N, Tq, D))}


def _mha_list(rng):
    cases = [
        _mha_case(rng, 2, 4, 5, 6, 2),
        _mha_case(rng, 2, 5, 5, 6, 3, mask=_causal(5), self_attention=True),
    ]
    N, Tq, Tk = 2, _ri(rng, 2, 5), _ri(rng, 2, 5)
    cases.append(_mha_case(rng, N, Tq, Tk, _ri(rng, 2, 6), 1, mask=_random_mask(rng, (N, 1, Tq, Tk), 0.2),
                           what="one head"))
    D = _ri(rng, 2, 5)
    cases.append(_mha_case(rng, 2, _ri(rng, 2, 5), _ri(rng, 2, 5), D, D, what="one feature per head"))
    N, Tq, Tk = _ri(rng, 2, 3), _ri(rng, 2, 4), _ri(rng, 5, 8)
    pad = np.ones((N, 1, 1, Tk), dtype=bool)
    for n in range(N):
        pad[n, ..., _ri(rng, 1, Tk - 1):] = False
    cases.append(_mha_case(rng, N, Tq, Tk, 8, 2, mask=pad, what="cross-attention, padding mask"))
    T = _ri(rng, 4, 8)
    cases.append(_mha_case(rng, _ri(rng, 1, 3), T, T, 12, int(rng.choice([2, 3, 4, 6])), mask=_causal(T),
                           self_attention=True, what="causal"))
    cases.append(_mha_case(rng, 1, 1, 1, 6, 2, what="sequences of length one, N = 1"))
    N, h, Tq, Tk = 2, 2, _ri(rng, 3, 5), _ri(rng, 3, 5)
    cases.append(_mha_case(rng, N, Tq, Tk, 4, h, mask=_random_mask(rng, (N, h, Tq, Tk), 0.5),
                           what="a mask per head, some queries with one key"))
    return cases


# visible and hidden alike (hidden ones draw other sizes and values)
_mha_inputs = _fixed([
    ("cross-attention, two heads", {"no mask", "cross-attention", "several heads"}),
    ("self-attention, causal mask", {"causal mask", "self-attention", "several heads"}),
    ("one head", {"random mask", "broadcast mask", "one head"}),
    ("one feature per head", {"no mask", "one feature per head"}),
    ("cross-attention, padding mask", {"padding mask", "cross-attention", "several heads"}),
    ("causal self-attention", {"causal mask", "self-attention", "several heads"}),
    ("sequences of length one, N = 1", {"no mask", "T = 1", "N = 1"}),
    ("a mask per head", {"random mask", "mask per head", "several heads"}),
], _mha_list)


def _torch_mha(x_q, x_kv, Wq, Wk, Wv, Wo, h, mask):
    """Multi-head attention spelled out in torch ops (explicit masked softmax, no SDPA)."""
    torch = _torch()
    N, Tq, D = x_q.shape
    Tk, Dh = x_kv.shape[1], D // h

    def split(z, T):
        return z.reshape(N, T, h, Dh).transpose(1, 2)
    Q, K, V = split(x_q @ Wq, Tq), split(x_kv @ Wk, Tk), split(x_kv @ Wv, Tk)
    scores = Q @ K.transpose(-1, -2) / math.sqrt(Dh)
    if mask is not None:
        scores = scores.masked_fill(~torch.tensor(mask), float("-inf"))
    heads = torch.softmax(scores, dim=-1) @ V
    return heads.transpose(1, 2).reshape(N, Tq, D) @ Wo


def _mha_oracle(case):
    torch = _torch()
    ts = [torch.tensor(a, requires_grad=True) for a in case["args"]]
    out = _torch_mha(*ts, case["num_heads"], case["mask"])
    out.backward(torch.tensor(case["dout"]))
    res = {"out": out.detach().numpy()}
    res.update({g: t.grad.numpy() for g, t in zip(MHA_GRADS, ts)})
    return res


def _mha_args(case):
    args = [_copy(a) for a in case["args"]]
    if case["self"]:
        args[1] = args[0]                       # the same array, as a transformer block passes it
    return args + [case["num_heads"], _copy(case["mask"])]


MHA_GROUPS = {"dx_q": ("dx_q",), "dx_kv": ("dx_kv",), "dW_qkv": ("dWq", "dWk", "dWv"), "dWo": ("dWo",)}
layer("multi_head_attention_forward", "multi_head_attention_backward", _mha_inputs, _mha_oracle, args=_mha_args,
      copy_args=False, grads=MHA_GRADS, groups=MHA_GROUPS, hints=MHA_HINTS, where=_where, compare_with=_cmp,
      forward_says_oracle="multi-head attention in torch ops", forward_doc="{fn}: out against torch ops")


# =========================================================================== positional encoding
def _pe_list(rng):
    T_odd, D_odd, T_long = _ri(rng, 3, 12), 2 * _ri(rng, 1, 6) + 1, _ri(rng, 200, 400)
    return [
        {"what": "T=10, D=8", "T": 10, "D": 8},
        {"what": f"odd D: T={T_odd}, D={D_odd}", "T": T_odd, "D": D_odd},
        {"what": "D=1", "T": 6, "D": 1},
        {"what": "one position: T=1, D=6", "T": 1, "D": 6},
        {"what": "no positions: T=0, D=4", "T": 0, "D": 4},
        {"what": f"long: T={T_long}, D=64", "T": T_long, "D": 64},
    ]


# visible and hidden alike (hidden ones draw other sizes)
_pe_inputs = _fixed([("even D", {"even D"}), ("odd D", {"odd D"}), ("D = 1", {"odd D", "D = 1"}),
                     ("T = 1", {"even D", "T = 1"}), ("T = 0", {"even D", "T = 0"}),
                     ("a long sequence", {"even D", "long sequence"})], _pe_list)


def _pe_oracle(T, D):
    torch = _torch()
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    pe = torch.zeros(T, D, dtype=torch.float64)
    for j in range(D):
        two_i = j - j % 2                                  # columns 2i and 2i + 1 share a frequency
        angle = pos[:, 0] / torch.tensor(10000.0, dtype=torch.float64) ** (two_i / D)
        pe[:, j] = torch.sin(angle) if j % 2 == 0 else torch.cos(angle)
    return pe.numpy()


def _pe_probe(fns, case):
    return {"pe": _out("pe", call(fns[0], "positional_encoding", case["T"], case["D"]))}


values("positional_encoding", ("positional_encoding",), _pe_inputs, _pe_probe,
       lambda case: {"pe": _pe_oracle(case["T"], case["D"])}, ("pe",), where=_where, oracle_name="the formula",
       says_oracle="the sinusoid formula", tol=TOL, doc="positional_encoding: against the formula in torch",
       hints={"pe": "pe[t, 2i] = sin(t / 10000^(2i/D)) and pe[t, 2i+1] = cos(t / 10000^(2i/D)): even columns "
                    "sine, odd columns cosine, the PAIR index i in the exponent (columns 2i and 2i+1 share a "
                    "frequency), positions t = 0 .. T-1; for odd D the last column is a sine"})


# =========================================================================== transformer block
BLOCK_KEYS = ("ln1_gamma", "ln1_beta", "Wq", "Wk", "Wv", "Wo", "ln2_gamma", "ln2_beta", "W1", "b1", "W2", "b2")
BLOCK_GROUPS = {"dattn": ("Wq", "Wk", "Wv", "Wo"), "dffn": ("W1", "b1", "W2", "b2"),
                "dln": ("ln1_gamma", "ln1_beta", "ln2_gamma", "ln2_beta")}
BLOCK_HINTS = {
    "out": "pre-LN: h = x + MHA(LN1(x)) with queries, keys and values all from LN1(x); "
           "out = h + relu(LN2(h) @ W1 + b1) @ W2 + b2; layer norms with eps = 1e-5 over the last axis; "
           "the layer norms sit INSIDE the residual branches (not after the additions)",
    "dx": "both residuals pass the gradient straight through: dh = dout + (FFN branch's gradient wrt h), "
          "dx = dh + LN1's backward of (dx_q + dx_kv) (LN1(x) feeds the queries AND the keys and values)",
    "Wq": "the attention gradients come from multi_head_attention_backward(dh, ...), dh = dout + the "
          "feed-forward branch's gradient wrt h (not dout alone)",
    "W1": "the feed-forward branch acts on the N*T rows: affine_backward of the (N*T, D) upstream gradient",
    "ln1_gamma": "LN1's input gradient is dx_q + dx_kv (self-attention); LN2's upstream gradient is what "
                 "the feed-forward branch sends back",
}


def _block_hint(key):
    if key in BLOCK_GROUPS["dattn"]:
        return BLOCK_HINTS["Wq"]
    if key in BLOCK_GROUPS["dffn"]:
        return BLOCK_HINTS["W1"]
    return BLOCK_HINTS["ln1_gamma"]


def _block_case(rng, N, T, D, h, F, mask=None, what=""):
    s = 1.0 / math.sqrt(D)
    params = {"ln1_gamma": 1 + 0.3 * rng.standard_normal(D), "ln1_beta": 0.3 * rng.standard_normal(D),
              "ln2_gamma": 1 + 0.3 * rng.standard_normal(D), "ln2_beta": 0.3 * rng.standard_normal(D),
              "W1": rng.standard_normal((D, F)) * math.sqrt(2.0) * s, "b1": 0.3 * rng.standard_normal(F),
              "W2": rng.standard_normal((F, D)) / math.sqrt(F), "b2": 0.3 * rng.standard_normal(D)}
    for name in ("Wq", "Wk", "Wv", "Wo"):
        params[name] = rng.standard_normal((D, D)) * 1.5 * s
    desc = f"N={N}, T={T}, D={D}, num_heads={h}, F={F}, {_describe_mask(mask)}" + (f" ({what})" if what else "")
    return {"what": desc, "x": rng.standard_normal((N, T, D)) * 2.0 + 0.5,
            "params": {k: params[k] for k in BLOCK_KEYS}, "num_heads": h, "mask": mask,
            "dout": rng.standard_normal((N, T, D))}


def _block_list(rng):
    cases = [
        _block_case(rng, 2, 5, 8, 2, 16),
        _block_case(rng, 2, 4, 6, 3, 10, mask=_causal(4), what="causal"),
    ]
    T = _ri(rng, 3, 7)
    cases.append(_block_case(rng, _ri(rng, 2, 3), T, 8, 4, _ri(rng, 5, 20), mask=_causal(T), what="causal"))
    cases.append(_block_case(rng, _ri(rng, 2, 3), 1, 6, 2, 12, what="sequences of length one"))
    cases.append(_block_case(rng, 1, _ri(rng, 3, 6), _ri(rng, 3, 6), 1, _ri(rng, 3, 9), what="one head, N=1"))
    D = _ri(rng, 2, 4)
    cases.append(_block_case(rng, 2, _ri(rng, 2, 5), D, D, _ri(rng, 2, 6), what="one feature per head"))
    N, T = 3, _ri(rng, 4, 7)
    pad = np.ones((N, 1, 1, T), dtype=bool)
    for n in range(N):
        pad[n, ..., _ri(rng, 1, T - 1):] = False
    cases.append(_block_case(rng, N, T, 6, 2, 24, mask=pad, what="padding mask"))
    return cases


# visible and hidden alike (hidden ones draw other sizes and values)
_block_inputs = _fixed([
    ("no mask", {"no mask", "several heads"}),
    ("causal, three heads", {"causal mask", "several heads"}),
    ("causal, four heads", {"causal mask", "several heads"}),
    ("sequences of length one", {"no mask", "several heads", "T = 1"}),
    ("one head, N = 1", {"no mask", "one head", "N = 1"}),
    ("one feature per head", {"no mask", "one feature per head"}),
    ("padding mask", {"padding mask", "several heads"}),
], _block_list)


def _block_oracle(case):
    torch = _torch()
    F = torch.nn.functional
    x = torch.tensor(case["x"], requires_grad=True)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in case["params"].items()}
    D = x.shape[-1]
    a = F.layer_norm(x, (D,), p["ln1_gamma"], p["ln1_beta"], eps=1e-5)
    h = x + _torch_mha(a, a, p["Wq"], p["Wk"], p["Wv"], p["Wo"], case["num_heads"], case["mask"])
    z = F.layer_norm(h, (D,), p["ln2_gamma"], p["ln2_beta"], eps=1e-5)
    out = h + torch.relu(z @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    out.backward(torch.tensor(case["dout"]))
    res = {"out": out.detach().numpy(), "dx": x.grad.numpy()}
    res.update({k: t.grad.numpy() for k, t in p.items()})
    return res


def _block_args(case):
    return [case["x"], case["params"], case["num_heads"], case["mask"]]


_BLOCK = layer("transformer_block_forward", None, _block_inputs, _block_oracle, args=_block_args,
               hints=BLOCK_HINTS, where=_where, compare_with=_cmp,
               forward_says_oracle="the pre-LN block in torch ops", forward_doc="{fn}: out against torch ops")


def _block_backward_probe(fns, case):
    _o, cache = call(fns[0], "transformer_block_forward", *_copy(_block_args(case)), returns=2)
    dx, grads = call(fns[1], "transformer_block_backward", case["dout"].copy(), cache, returns=2)
    if not isinstance(grads, dict):
        raise CheckFailed("transformer_block_backward must return (dx, grads) with grads a dict keyed like "
                          f"params; its second value is a {type(grads).__name__}")
    return {"dx": _out("dx", dx), "grads": {str(key): _out(f"grads[{key!r}]", v) for key, v in grads.items()}}


_BLOCK_FNS = ("transformer_block_forward", "transformer_block_backward")
_AUTOGRAD = dict(fn="transformer_block_backward", oracle_name="PyTorch autograd", where=_where, compare_with=_cmp)
values("transformer_block_backward.dx", _BLOCK_FNS, _block_inputs, _block_backward_probe, _block_oracle, ("dx",),
       hints=BLOCK_HINTS, doc="transformer_block_backward: dx against PyTorch autograd", **_AUTOGRAD)
for _name, _keys in BLOCK_GROUPS.items():
    values(f"transformer_block_backward.{_name}", _BLOCK_FNS, _block_inputs, _block_backward_probe, _block_oracle,
           _keys, within="grads", label="grads[{key!r}] from {fn}", hints=lambda key, inp, out: _block_hint(key),
           missing="grads from {fn} has no key {key!r}; it has {have}",
           doc=f"transformer_block_backward: {_name} against PyTorch autograd", **_AUTOGRAD)
