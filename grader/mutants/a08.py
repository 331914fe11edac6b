"""Assignment 08: slips students make in attention, multi-head attention, positional encoding and
the transformer block, and correct variants written differently."""
from grader.mutants import Mutant

_ATT_BWD = ["test_attention_backward_dq", "test_attention_backward_dk", "test_attention_backward_dv"]
_ATT_ALL = ["test_attention_forward"] + _ATT_BWD
_MHA_BWD = ["test_multi_head_attention_backward_dx_q", "test_multi_head_attention_backward_dx_kv",
            "test_multi_head_attention_backward_dW_qkv", "test_multi_head_attention_backward_dWo"]
_BLOCK_BWD = ["test_transformer_block_backward_dx", "test_transformer_block_backward_dattn",
              "test_transformer_block_backward_dffn", "test_transformer_block_backward_dln"]

# The post-LN block of the original paper: LN(x + sublayer(x)) instead of x + sublayer(LN(x))
_POST_LN = [
    ("""    a, ln1_cache = layernorm_forward(x, p["ln1_gamma"], p["ln1_beta"], ln)
    a, mha_cache = multi_head_attention_forward(a, a, p["Wq"], p["Wk"], p["Wv"], p["Wo"],
                                                num_heads, mask)
    h = x + a""",
     """    a, mha_cache = multi_head_attention_forward(x, x, p["Wq"], p["Wk"], p["Wv"], p["Wo"],
                                                num_heads, mask)
    h, ln1_cache = layernorm_forward(x + a, p["ln1_gamma"], p["ln1_beta"], ln)"""),
    ("""    z, ln2_cache = layernorm_forward(h.reshape(N * T, D), p["ln2_gamma"], p["ln2_beta"], ln)
    z, fc1_cache = affine_forward(z, p["W1"], p["b1"])""",
     """    z, fc1_cache = affine_forward(h.reshape(N * T, D), p["W1"], p["b1"])"""),
    ("""    out = h + z.reshape(N, T, D)""",
     """    out, ln2_cache = layernorm_forward(h + z.reshape(N, T, D), p["ln2_gamma"], p["ln2_beta"], ln)"""),
]

WRONG = [
    # ------------------------------------------------------------------ attention forward
    Mutant("attention_forward", "forgets the 1/sqrt(D) scaling",
           replace=[("scale = 1.0 / np.sqrt(q.shape[-1])", "scale = 1.0")], fails=_ATT_ALL),
    Mutant("attention_forward", "scales by 1/D instead of 1/sqrt(D)",
           replace=[("scale = 1.0 / np.sqrt(q.shape[-1])", "scale = 1.0 / q.shape[-1]")], fails=_ATT_ALL),
    Mutant("attention_forward", "mask applied after the softmax (weights no longer sum to 1)",
           replace=[("        np.copyto(p, -np.inf, where=~mask)", "        pass"),
                    ("    out = p @ v", "    if mask is not None:\n        p = np.where(mask, p, 0.0)\n    out = p @ v")],
           fails=["test_attention_forward", "test_attention_backward_dv"]),
    Mutant("attention_forward", "mask inverted (True taken as 'blocked', as in nn.MultiheadAttention)",
           replace=[("np.copyto(p, -np.inf, where=~mask)", "np.copyto(p, -np.inf, where=mask)")],
           fails=_ATT_ALL),
    Mutant("attention_forward", "softmax over the queries (axis -2) instead of the keys",
           replace=[("p -= p.max(axis=-1, keepdims=True)", "p -= p.max(axis=-2, keepdims=True)"),
                    ("p /= p.sum(axis=-1, keepdims=True)", "p /= p.sum(axis=-2, keepdims=True)")],
           fails=_ATT_ALL),
    Mutant("attention_forward", "unstable softmax: no max subtraction (scores of 1e3 overflow)",
           replace=[("    p -= p.max(axis=-1, keepdims=True)\n", "")], fails=["test_attention_forward"]),
    Mutant("attention_forward", "k.T reverses every axis, not just the last two",
           replace=[("p = q @ np.swapaxes(k, -1, -2)", "p = q @ k.T")], fails=_ATT_ALL),
    # ------------------------------------------------------------------ attention backward
    Mutant("attention_backward", "dk without the transpose of dS (dS @ q)",
           replace=[("dk = np.swapaxes(dp, -1, -2) @ q", "dk = dp @ q")], fails=["test_attention_backward_dk"]),
    Mutant("attention_backward", "dv from the unnormalized scores instead of the softmax weights",
           replace=[("dv = np.swapaxes(p, -1, -2) @ dout",
                     "dv = np.swapaxes(q @ np.swapaxes(k, -1, -2) * scale, -1, -2) @ dout")],
           fails=["test_attention_backward_dv"]),
    Mutant("attention_backward", "softmax backward without the row-sum term (dS = P * dP)",
           replace=[("    dp -= np.sum(dout * out, axis=-1, keepdims=True)\n", "")],
           fails=["test_attention_backward_dq", "test_attention_backward_dk"]),
    Mutant("attention_backward", "forgets the 1/sqrt(D) of the scores in the backward pass",
           replace=[("    dp *= scale ", "    dp *= 1.0 ")],
           fails=["test_attention_backward_dq", "test_attention_backward_dk"]),
    # ------------------------------------------------------------------ multi-head attention
    Mutant("multi_head_attention_forward", "heads split along the wrong axis (reshape to (N, h, T, Dh) directly)",
           replace=[("Q = (x_q @ Wq).reshape(N, Tq, num_heads, Dh).transpose(0, 2, 1, 3)",
                     "Q = (x_q @ Wq).reshape(N, num_heads, Tq, Dh)"),
                    ("K = (x_kv @ Wk).reshape(N, Tk, num_heads, Dh).transpose(0, 2, 1, 3)",
                     "K = (x_kv @ Wk).reshape(N, num_heads, Tk, Dh)"),
                    ("V = (x_kv @ Wv).reshape(N, Tk, num_heads, Dh).transpose(0, 2, 1, 3)",
                     "V = (x_kv @ Wv).reshape(N, num_heads, Tk, Dh)"),
                    ("concat = heads.transpose(0, 2, 1, 3).reshape(N, Tq, D)", "concat = heads.reshape(N, Tq, D)")],
           fails=["test_multi_head_attention_forward"]),
    Mutant("multi_head_attention_forward", "forgets the output projection Wo",
           replace=[("out = concat @ Wo", "out = concat")], fails=["test_multi_head_attention_forward"]),
    Mutant("multi_head_attention_forward", "keys and values projected from x_q (self-attention only)",
           replace=[("K = (x_kv @ Wk).reshape(N, Tk,", "K = (x_q @ Wk).reshape(N, Tk,"),
                    ("V = (x_kv @ Wv).reshape(N, Tk,", "V = (x_q @ Wv).reshape(N, Tk,")],
           fails=["test_multi_head_attention_forward"]),
    Mutant("multi_head_attention_backward", "dx_kv misses the path through the values",
           replace=[("dx_kv = (dK @ Wk.T + dV @ Wv.T)", "dx_kv = (dK @ Wk.T)")],
           fails=["test_multi_head_attention_backward_dx_kv"]),
    Mutant("multi_head_attention_backward", "dWq transposed (dQ^T x_q)",
           replace=[("dWq = xq2.T @ dQ", "dWq = dQ.T @ xq2")], fails=["test_multi_head_attention_backward_dW_qkv"]),
    Mutant("multi_head_attention_backward", "heads merged back without the transpose",
           replace=[("dQ = dQ.transpose(0, 2, 1, 3).reshape(N * Tq, D)", "dQ = dQ.reshape(N * Tq, D)"),
                    ("dK = dK.transpose(0, 2, 1, 3).reshape(N * Tk, D)", "dK = dK.reshape(N * Tk, D)"),
                    ("dV = dV.transpose(0, 2, 1, 3).reshape(N * Tk, D)", "dV = dV.reshape(N * Tk, D)")],
           fails=["test_multi_head_attention_backward_dx_q", "test_multi_head_attention_backward_dx_kv",
                  "test_multi_head_attention_backward_dW_qkv"]),
    Mutant("multi_head_attention_backward", "dout sent back through Wo instead of Wo^T",
           replace=[("dheads = (dout @ Wo.T)", "dheads = (dout @ Wo)")],
           fails=["test_multi_head_attention_backward_dx_q", "test_multi_head_attention_backward_dx_kv",
                  "test_multi_head_attention_backward_dW_qkv"]),
    # ------------------------------------------------------------------ positional encoding
    Mutant("positional_encoding", "sin and cos swapped (cosine in the even columns)",
           replace=[("pe[:, 0::2] = np.sin(angle)", "pe[:, 0::2] = np.cos(angle)"),
                    ("pe[:, 1::2] = np.cos(angle[:, :D // 2])", "pe[:, 1::2] = np.sin(angle[:, :D // 2])")],
           fails=["test_positional_encoding"]),
    Mutant("positional_encoding", "the column index j in the exponent instead of the pair's 2i", code='''
def positional_encoding(T, D):
    j = np.arange(D)
    angle = np.arange(T)[:, None] / 10000.0 ** (j / D)
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle))
''', fails=["test_positional_encoding"]),
    Mutant("positional_encoding", "exponent i/D instead of 2i/D",
           replace=[("10000.0 ** (two_i / D)", "10000.0 ** (two_i / 2 / D)")], fails=["test_positional_encoding"]),
    Mutant("positional_encoding", "positions counted from 1",
           replace=[("np.arange(T)[:, None]", "np.arange(1, T + 1)[:, None]")], fails=["test_positional_encoding"]),
    # ------------------------------------------------------------------ transformer block
    Mutant("transformer_block_forward", "post-LN (the original paper's LN(x + sublayer(x))) instead of pre-LN",
           replace=_POST_LN, fails=["test_transformer_block_forward"]),
    Mutant("transformer_block_forward", "no residual around the attention",
           replace=[("h = x + a", "h = a")], fails=["test_transformer_block_forward"]),
    Mutant("transformer_block_forward", "the second layer norm reads x instead of h",
           replace=[("layernorm_forward(h.reshape(N * T, D)", "layernorm_forward(x.reshape(N * T, D)")],
           fails=["test_transformer_block_forward"]),
    Mutant("transformer_block_forward", "feed-forward without the relu",
           replace=[("z, relu_cache = relu_forward(z)", "relu_cache = relu_forward(z)[1]")],
           fails=["test_transformer_block_forward"]),
    Mutant("transformer_block_backward", "dx forgets the residual path (dx = LN1's gradient only)",
           replace=[("dx = dh + da", "dx = da")], fails=["test_transformer_block_backward_dx"]),
    Mutant("transformer_block_backward", "LN1 gets only the queries' gradient (dx_kv dropped)",
           replace=[("layernorm_backward(dq + dkv, ln1_cache)", "layernorm_backward(dq, ln1_cache)")],
           fails=["test_transformer_block_backward_dx", "test_transformer_block_backward_dln"]),
    Mutant("transformer_block_backward", "attention branch fed dout instead of dh",
           replace=[("multi_head_attention_backward(dh, mha_cache)", "multi_head_attention_backward(dout, mha_cache)")],
           fails=["test_transformer_block_backward_dx", "test_transformer_block_backward_dattn",
                  "test_transformer_block_backward_dln"]),
    Mutant("transformer_block_backward", "dh forgets the feed-forward residual (dh = FFN branch only)",
           replace=[("dh = dout + dz.reshape(N, T, D)", "dh = dz.reshape(N, T, D)")],
           fails=["test_transformer_block_backward_dx", "test_transformer_block_backward_dattn"]),
]

RIGHT = [
    Mutant("attention_forward", "einsum, np.where for the mask, a separate softmax", replace=[(
        """    scale = 1.0 / np.sqrt(q.shape[-1])
    p = q @ np.swapaxes(k, -1, -2)                # scores, (..., Tq, Tk); matmul over the batch
    p *= scale
    if mask is not None:
        np.copyto(p, -np.inf, where=~mask)        # exp(-inf) = 0: masked keys get no weight
    # Softmax in place: subtracting the row max keeps exp from overflowing and changes nothing
    # (every row has a finite max because every row keeps a key)
    p -= p.max(axis=-1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=-1, keepdims=True)
    out = p @ v""",
        """    scale = 1.0 / np.sqrt(q.shape[-1])
    s = np.einsum('...qd,...kd->...qk', q, k) * scale
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    out = np.einsum('...qk,...kv->...qv', p, v)""")]),
    Mutant("attention_forward", "a loop over the flattened leading axes", replace=[(
        """    p = q @ np.swapaxes(k, -1, -2)                # scores, (..., Tq, Tk); matmul over the batch
    p *= scale
    if mask is not None:
        np.copyto(p, -np.inf, where=~mask)        # exp(-inf) = 0: masked keys get no weight
    # Softmax in place: subtracting the row max keeps exp from overflowing and changes nothing
    # (every row has a finite max because every row keeps a key)
    p -= p.max(axis=-1, keepdims=True)
    np.exp(p, out=p)
    p /= p.sum(axis=-1, keepdims=True)
    out = p @ v""",
        """    Tq, Tk = q.shape[-2], k.shape[-2]
    full = np.ones(q.shape[:-2] + (Tq, Tk), dtype=bool) if mask is None else \\
        np.broadcast_to(mask, q.shape[:-2] + (Tq, Tk))
    qf, kf, vf = q.reshape(-1, Tq, q.shape[-1]), k.reshape(-1, Tk, k.shape[-1]), v.reshape(-1, Tk, v.shape[-1])
    mf = full.reshape(-1, Tq, Tk)
    ps = []
    for b in range(qf.shape[0]):
        s = qf[b] @ kf[b].T * scale
        s[~mf[b]] = -np.inf
        for i in range(Tq):
            row = np.exp(s[i] - s[i].max())
            ps.append(row / row.sum())
    p = np.array(ps).reshape(q.shape[:-2] + (Tq, Tk))
    out = p @ v""")]),
    Mutant("attention_backward", "the textbook softmax backward: row sums of P * dP", replace=[
        ("dp -= np.sum(dout * out, axis=-1, keepdims=True)", "dp = dp - np.sum(p * dp, axis=-1, keepdims=True)")]),
    Mutant("multi_head_attention_backward", "a loop over the heads on slices of the attention cache",
           replace=[("    dQ, dK, dV = attention_backward(dheads, attn_cache)\n", """    aq, ak, av, ap, aout, ascale = attn_cache
    parts = [attention_backward(dheads[:, j], (aq[:, j], ak[:, j], av[:, j], ap[:, j], aout[:, j], ascale))
             for j in range(num_heads)]
    dQ, dK, dV = (np.stack([pr[i] for pr in parts], axis=1) for i in range(3))
""")]),
    Mutant("multi_head_attention_forward", "projections with einsum, heads with swapaxes", replace=[
        ("Q = (x_q @ Wq).reshape(N, Tq, num_heads, Dh).transpose(0, 2, 1, 3)",
         "Q = np.swapaxes(np.einsum('ntd,de->nte', x_q, Wq).reshape(N, Tq, num_heads, Dh), 1, 2)"),
        ("concat = heads.transpose(0, 2, 1, 3).reshape(N, Tq, D)",
         "concat = np.concatenate([heads[:, j] for j in range(num_heads)], axis=-1)")]),
    Mutant("positional_encoding", "frequencies through exp and log, a loop over the columns", code='''
def positional_encoding(T, D):
    pe = np.zeros((T, D))
    t = np.arange(T, dtype=float)
    for j in range(D):
        freq = np.exp(-np.log(10000.0) * (j - j % 2) / D)
        pe[:, j] = np.sin(t * freq) if j % 2 == 0 else np.cos(t * freq)
    return pe
'''),
    Mutant("transformer_block_backward", "the two residual sums written out step by step", replace=[
        ("dh = dout + dz.reshape(N, T, D)", "dh = dout.copy()\n    dh += dz.reshape(N, T, D)"),
        ("dx = dh + da", "dx = np.add(da, dh)")]),
]
