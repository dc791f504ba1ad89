"""The gated delta rule in chunked (WY) form: a second, independent implementation of §3.

Used only to cross-check the token-by-token recurrence in reference/gdn.py. Each sequence is cut
into chunks of C tokens from its own start (the last one may be partial). Inside a chunk, with the
inclusive cumulative gate G_t = Σ_{s≤t} g_s and Γ_ij = exp(G_i − G_j) for j ≤ i (0 above the
diagonal), the per-token updates δ_t (rows of Δ) solve one unit-lower-triangular system:

    (I + strict_tril(diag(β)·K·Kᵀ ⊙ Γ)) · Δ = diag(β)·V − diag(β·e^G)·K·S₀

so with that matrix written I + L,

    W  = (I + L)⁻¹ · diag(β·e^G)·K          U = (I + L)⁻¹ · diag(β)·V          Δ = U − W·S₀
    O  = (Q ⊙ e^G)·S₀ + tril(Q·Kᵀ ⊙ Γ)·Δ
    S₁ = e^{G_last}·S₀ + (K ⊙ e^{G_last − G})ᵀ·Δ

where Q already carries the 1/sqrt(K) scale and S₀, S₁ are the states at the chunk's ends.
"""

from __future__ import annotations

import torch

from reference.checks import PAD_SLOT_ID
from reference.gdn import L2NORM_EPS, check_prefill_args, l2norm, prepare_prefill
from reference.precision import ORACLE, Precision

CHUNK_SIZE = 64


def chunk_system(k, g, beta):
    """A chunk's gates and triangular system, per head: (G, Γ, I + L) for k [HV, m, K] and g,
    beta [HV, m]. Γ is masked before exp (above the diagonal G_i − G_j > 0 could overflow)."""
    m = k.shape[1]
    G = torch.cumsum(g, dim=-1)
    causal = torch.ones(m, m, dtype=torch.bool).tril()
    Gamma = torch.exp((G[:, :, None] - G[:, None, :]).masked_fill(~causal, float("-inf")))
    L = (beta[:, :, None] * (k @ k.transpose(-1, -2)) * Gamma).tril(-1)
    return G, Gamma, L + torch.eye(m, dtype=L.dtype)


def chunk_step(S, q, k, v, g, beta, operands=None):
    """One chunk of m tokens for every head at once.

    S [HV, K, V]; q, k [HV, m, K]; v [HV, m, V]; g, beta [HV, m]. Returns (S₁, O [HV, m, V]).

    `operands` (a dtype) rounds both operands of every product that involves the state or an
    intermediate to it, as the kernels' reduced-precision GEMM path does: (I + L)⁻¹ is formed
    explicitly and applied to [−diag(β·e^G)·K | diag(β)·V] by one product. K·Kᵀ and Q·Kᵀ stay
    unrounded: the kernel multiplies the raw inputs, exact for bf16 activations, and applies the
    l2norm and scale factors afterwards.
    """
    m = q.shape[1]
    G, Gamma, I_plus_L = chunk_system(k, g, beta)
    if operands is None:
        W = torch.linalg.solve_triangular(I_plus_L, (beta * torch.exp(G))[..., None] * k,
                                          upper=False, unitriangular=True)
        U = torch.linalg.solve_triangular(I_plus_L, beta[..., None] * v, upper=False,
                                          unitriangular=True)
        delta = U - W @ S
        O = (q * torch.exp(G)[..., None]) @ S + ((q @ k.transpose(-1, -2)) * Gamma) @ delta
        G_last = G[:, -1:]
        S = torch.exp(G_last)[..., None] * S + (k * torch.exp(G_last - G)[..., None]).transpose(-1, -2) @ delta
        return S, O

    def r(x):
        return x.to(operands).to(x.dtype)

    inv = torch.linalg.solve_triangular(I_plus_L, torch.eye(m, dtype=I_plus_L.dtype).expand_as(I_plus_L),
                                        upper=False, unitriangular=True)
    rhs = torch.cat([-(beta * torch.exp(G))[..., None] * k, beta[..., None] * v], dim=-1)
    X = r(inv) @ r(rhs)
    K = k.shape[-1]
    delta = X[..., K:] + r(X[..., :K]) @ r(S)
    O = r(q * torch.exp(G)[..., None]) @ r(S) + r((q @ k.transpose(-1, -2)) * Gamma) @ r(delta)
    G_last = G[:, -1:]
    S = torch.exp(G_last)[..., None] * S + r(k).transpose(-1, -2) @ r(torch.exp(G_last - G)[..., None] * delta)
    return S, O


def chunk_gated_delta_rule_chunked(query, key, value, g, beta, initial_state,
                                   output_final_state=True, cu_seqlens=None, head_first=False,
                                   use_qk_l2norm_in_kernel=False, initial_state_indices=None,
                                   eps=L2NORM_EPS, *, chunk_size: int = CHUNK_SIZE,
                                   pad_slot_id: int = PAD_SLOT_ID, precision: Precision = ORACLE,
                                   operands: torch.dtype | None = None):
    """Same contract and result as reference.gdn.chunk_gated_delta_rule, computed by chunks.

    `operands`: round GEMM operands to this dtype (see chunk_step), to model a reduced-precision
    GEMM path; None computes every product in precision.compute."""
    seqs = check_prefill_args(query, key, value, g, beta, initial_state, cu_seqlens, head_first,
                              initial_state_indices, pad_slot_id)
    q, k, v, g_, beta_ = prepare_prefill(query, key, value, g, beta, use_qk_l2norm_in_kernel, eps,
                                         precision)
    # Head-major views: [HV, T, ·].
    q, k, v, g_, beta_ = (x.transpose(0, 1) for x in (q, k, v, g_, beta_))
    out = torch.zeros(v.shape, dtype=precision.compute)
    new_state = precision.copy(initial_state)
    for start, n, slot in seqs:
        if slot is None:
            continue
        S = new_state[slot]
        for c in range(start, start + n, chunk_size):
            t = slice(c, min(c + chunk_size, start + n))
            S, out[:, t] = chunk_step(S, q[:, t], k[:, t], v[:, t], g_[:, t], beta_[:, t],
                                      operands)
        if output_final_state:
            new_state[slot] = S
    return (precision.result(out.transpose(0, 1)[None], query.dtype),
            precision.result(new_state, initial_state.dtype))


# --- conditioning of a case (recorded on every report row of the GDN ops) ----------------------

def conditioning(key, beta, g=None, cu_seqlens=None, use_l2norm=False, eps=L2NORM_EPS,
                 chunk_size: int = CHUNK_SIZE) -> dict:
    """How hard a case is for a chunked evaluation, from the oracle's view of its inputs.

    key [.., T, HK, K] (leading dims of size 1 dropped); beta [T, HV] or [1, T, HV]; g likewise
    (None: no chunk figure, as for decode steps). Returns

    - `max_beta_k2`: the largest β·‖k̂‖² over tokens and v heads; the transition I − β·k̂k̂ᵀ has
      the eigenvalue 1 − β‖k̂‖², so near 2 the recurrence flips the state's k̂ component each token;
    - `chunk_cond` (with g and cu_seqlens): the largest ∞-norm condition number of a chunk's
      unit-lower-triangular system I + L over the chunks of `chunk_size` tokens from each
      sequence's start (the error a chunked kernel adds grows with it; the token-by-token math has
      no such system). Chunks holding a non-finite value are left out.
    """
    HK, K, HV = key.shape[-2], key.shape[-1], beta.shape[-1]
    T = key.numel() // (HK * K) if HK * K else 0
    if T == 0:
        return dict(max_beta_k2=0.0) | ({} if g is None else dict(chunk_cond=0.0))
    k = key.double().reshape(T, HK, K)
    b = beta.double().reshape(T, HV)
    if use_l2norm:
        k = l2norm(k, eps)
    k = k.repeat_interleave(b.shape[1] // k.shape[1], dim=1)     # per v head
    bk2 = b * (k * k).sum(-1)
    finite = bk2[torch.isfinite(bk2)]
    out = dict(max_beta_k2=float(finite.max()) if finite.numel() else 0.0)
    if g is None or cu_seqlens is None:
        return out
    g = g.double().reshape(b.shape)
    worst = 0.0
    offsets = cu_seqlens.tolist()
    for start, end in zip(offsets[:-1], offsets[1:]):
        for c in range(start, end, chunk_size):
            t = slice(c, min(c + chunk_size, end))
            # gates clamped at −1e4 (exp of it is 0): a −∞ gate would make G_i − G_j NaN
            _, _, A = chunk_system(k[t].transpose(0, 1), g[t].T.clamp_min(-1e4), b[t].T)
            ok = torch.isfinite(A).flatten(1).all(-1)
            if ok.any():
                worst = max(worst, float(torch.linalg.cond(A[ok], p=float("inf")).max()))
    out["chunk_cond"] = worst
    return out
