"""Banded, masked, log-domain Sinkhorn for windowed entropic optimal transport.

Sources: Han, Chen, Kan & Poria, "MM-Align: Learning Optimal Transport-based Alignment
Dynamics for Fast and Accurate Inference on Missing Modality Sequences", EMNLP 2022,
section 3.4, Eq. 6-11; Peyré & Cuturi, "Computational Optimal Transport", Foundations and
Trends in Machine Learning, 2019, section 4.4 (log-domain Sinkhorn).

Corrections to the paper and its code: Eq. 9 has a sign slip (the Gibbs kernel is
``exp(-M / mu)``), and we iterate the actual Sinkhorn fixed point to a tolerance on the marginal
error, in the log domain, instead of a fixed two-step rescaling.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn.functional import pad

from mmalign.ot.band import _check_window, band_transpose, band_valid_mask
from mmalign.validation import ConfigError, ConvergenceWarning, check_positive

__all__ = ["SinkhornResult", "sinkhorn_banded"]


@dataclass(frozen=True)
class SinkhornResult:
    """Output of :func:`sinkhorn_banded`.

    Attributes
    ----------
    plan : Tensor, shape (B, L, W)
        Row band of the transport plan, ``plan[b, i, k] = A[b, i, i + k - K]``; exactly 0
        outside the window and on padded rows and columns.
    log_u : Tensor, shape (B, L)
        Log row scaling (``f / reg`` for the dual potential ``f``); 0 on padded rows.
    log_v : Tensor, shape (B, M)
        Log column scaling (``g / reg``); 0 on padded columns.
    n_iter : int
        Number of iterations run (one iteration = one row and one column update).
    converged : Tensor, shape (B,), bool
        True where ``marginal_error <= tol`` at the last check.
    marginal_error : Tensor, shape (B,)
        L1 error of the row marginal plus L1 error of the column marginal of ``plan``.
    """

    plan: Tensor
    log_u: Tensor
    log_v: Tensor
    n_iter: int
    converged: Tensor
    marginal_error: Tensor


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"`{name}` must be an integer >= {minimum}; got {value!r}.")
    return value


def _shifted(values: Tensor, n_out: int, window: int) -> Tensor:
    """Read ``values[b, t + k - K]`` for ``t < n_out`` as a strided view (0 out of range).

    >>> _shifted(torch.tensor([[1.0, 2.0, 3.0]]), 3, 1)[0].tolist()
    [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 0.0]]
    """
    n_in = values.shape[1]
    padded = pad(values, (window, window + max(0, n_out - n_in)))  # (B, N + 2K)
    return padded.unfold(1, 2 * window + 1, 1)[:, :n_out]  # (B, n_out, W)


def _log_uniform(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Log of the uniform weights ``1 / n_valid`` on valid steps, ``-inf`` elsewhere."""
    count = mask.sum(1, keepdim=True).clamp_min(1).to(dtype)  # (B, 1)
    log_weight = -torch.log(count).expand(mask.shape)  # (B, N)
    return log_weight.masked_fill(~mask, -math.inf)


def _warn_unconverged(
    solver: str,
    converged: Tensor,
    error: Tensor,
    tol: float,
    max_iter: int,
    reg: float | Tensor,
    hint: str,
) -> None:
    """Warn (ConvergenceWarning) when some sample's marginal error is still above ``tol``."""
    if bool(converged.all()):
        return
    if isinstance(reg, Tensor):  # one value per sample
        reg_text = f"reg in [{float(reg.min()):g}, {float(reg.max()):g}] per sample"
    else:
        reg_text = f"reg={float(reg):g}"
    warnings.warn(
        f"{solver} did not reach tol={tol:g} within max_iter={max_iter} iterations "
        f"({reg_text}) for {int((~converged).sum())} of {converged.numel()} samples; largest "
        f"marginal error {float(error.max()):.3g}. Increase `max_iter` or `reg`, or {hint}.",
        ConvergenceWarning,
        stacklevel=3,
    )


def sinkhorn_banded(
    cost: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    *,
    window: int,
    reg: float = 0.1,
    max_iter: int = 100,
    tol: float = 1e-6,
    check_every: int = 10,
    overrelaxation: float = 1.0,
) -> SinkhornResult:
    r"""Solve windowed entropic OT for a padded batch, in the log domain, on the band.

    For each sample ``b``, with ``n`` valid source steps and ``m`` valid victim steps, solves
    (MM-Align Eq. 7-8 with the kernel of Eq. 9 corrected to ``exp(-M / reg)``)

    .. math::

        \min_{A \ge 0} \sum_{ij} A_{ij} M_{ij} - \mathrm{reg}\, H(A), \quad
        H(A) = -\sum_{ij} A_{ij} (\log A_{ij} - 1),

        \text{s.t. } A \mathbf{1} = a,\; A^\top \mathbf{1} = b,\;
        a_i = 1/n,\; b_j = 1/m \text{ on valid steps},\;
        A_{ij} = 0 \text{ where } |i - j| > K \text{ or a step is padded.}

    The solution is ``A_ij = exp(log_u_i - M_ij / reg + log_v_j)`` with the Sinkhorn updates
    (Eq. 10-11; Peyré & Cuturi 2019, Remark 4.23) done in the log domain:
    ``log_u = log a - logsumexp_k(-M / reg + log_v)`` over the ``W`` offsets of each row band,
    and ``log_v = log b - logsumexp_k(-M^T / reg + log_u)`` over the column band.

    Parameters
    ----------
    cost : Tensor, shape (B, L, W)
        Row band of the cost (e.g. :func:`mmalign.ot.windowed_cosine_cost`), ``W = 2K + 1``;
        ``+inf`` marks forbidden entries. Entries on padded steps are ignored. float32 or
        float64, on any device.
    source_mask : Tensor, shape (B, L), bool
        True on valid source steps.
    victim_mask : Tensor, shape (B, M), bool
        True on valid victim steps.
    window : int
        Window radius ``K >= 0``.
    reg : float, default 0.1
        Entropic regularisation ``mu > 0``.
    max_iter : int, default 100
        Maximum number of iterations.
    tol : float, default 1e-6
        Stop when every sample's marginal error (L1 row error + L1 column error) is ``<= tol``.
    check_every : int, default 10
        Check the marginal error every ``check_every`` iterations (and at ``max_iter``).
    overrelaxation : float, default 1.0
        ``omega`` in ``[1, 2)``: each update becomes ``(1 - omega) * old + omega * new`` in the
        log domain (over-relaxed Sinkhorn, Thibault, Chizat, Dossal & Papadakis, Algorithms,
        2021). 1.0 is plain Sinkhorn. Values near 1.8 cut the iteration count several times on
        long, banded problems (see ``benchmarks/ot_solver.py``); the fixed point, hence the
        plan, is the same. Safeguard: if the marginal error grows between two checks (or
        overflows), the solver returns to the last checked state and goes on with
        ``omega = 1``.

    Returns
    -------
    SinkhornResult
        ``plan (B, L, W)``, ``log_u (B, L)``, ``log_v (B, M)``, ``n_iter``,
        ``converged (B,)`` and ``marginal_error (B,)``.

    Warns
    -----
    ConvergenceWarning
        When some sample is still above ``tol`` after ``max_iter`` iterations. This also
        happens when the window makes the marginals infeasible (valid lengths too different
        for ``K``): the plan stays finite and ``converged`` is False for those samples.

    Notes
    -----
    Runs under ``torch.no_grad()``: no gradient flows through the solver. Samples with no
    valid step get an all-zero plan. Memory is ``O(B * L * W)``.

    Examples
    --------
    >>> cost = torch.tensor([[[float("inf"), 0.0, 1.0], [1.0, 0.0, float("inf")]]])
    >>> mask = torch.ones(1, 2, dtype=torch.bool)
    >>> result = sinkhorn_banded(cost, mask, mask, window=1, reg=0.1)
    >>> result.plan.sum(-1)
    tensor([[0.5000, 0.5000]])
    >>> bool(result.converged.all())
    True

    A ``reg`` so small that ``exp(-cost / reg)`` underflows in float32 falls back to the log
    domain and gives the same kind of answer:

    >>> cost = torch.tensor([[[float("inf"), 1.5, 2.0], [2.0, 1.5, float("inf")]]])
    >>> tiny = sinkhorn_banded(cost, mask, mask, window=1, reg=0.01, tol=1e-4)
    >>> tiny.plan.sum(-1), bool(tiny.converged.all())
    (tensor([[0.5000, 0.5000]]), True)
    """
    window = _check_window(window)
    reg = float(check_positive("reg", reg))
    max_iter = _check_int("max_iter", max_iter, 1)
    check_every = _check_int("check_every", check_every, 1)
    tol = float(check_positive("tol", tol))
    if (
        isinstance(overrelaxation, bool)
        or not isinstance(overrelaxation, (int, float))
        or not (1 <= overrelaxation < 2)
    ):
        raise ConfigError(f"`overrelaxation` must be in [1, 2); got {overrelaxation!r}.")
    overrelaxation = float(overrelaxation)
    if not isinstance(cost, Tensor) or cost.dtype not in (torch.float32, torch.float64):
        got = cost.dtype if isinstance(cost, Tensor) else type(cost).__name__
        raise ConfigError(f"`cost` must be a float32 or float64 tensor; got {got!r}.")
    width = 2 * window + 1
    if cost.dim() != 3 or cost.shape[-1] != width:
        raise ConfigError(
            f"`cost` must have shape (B, L, {width}) for window K={window}; "
            f"got {tuple(cost.shape)!r}."
        )
    n_batch, n_rows, _ = cost.shape
    if tuple(source_mask.shape) != (n_batch, n_rows):
        raise ConfigError(
            f"`source_mask` must have shape ({n_batch}, {n_rows}); "
            f"got {tuple(source_mask.shape)!r}."
        )
    if victim_mask.dim() != 2 or victim_mask.shape[0] != n_batch:
        raise ConfigError(
            f"`victim_mask` must have shape ({n_batch}, M); got {tuple(victim_mask.shape)!r}."
        )
    with torch.no_grad():
        plan, log_u, log_v, n_iter, error = _solve(
            cost, source_mask, victim_mask, window, reg, max_iter, tol, check_every, overrelaxation
        )
    converged = error <= tol
    _warn_unconverged(
        "sinkhorn_banded", converged, error, tol, max_iter, reg,
        "check that the window can match the valid lengths",
    )  # fmt: skip
    return SinkhornResult(
        plan=plan,
        log_u=log_u,
        log_v=log_v,
        n_iter=n_iter,
        converged=converged,
        marginal_error=error,
    )


def _solve(
    cost: Tensor,
    source_mask: Tensor,
    victim_mask: Tensor,
    window: int,
    reg: float,
    max_iter: int,
    tol: float,
    check_every: int,
    overrelaxation: float,
) -> tuple[Tensor, Tensor, Tensor, int, Tensor]:
    """Run the iterations in blocks of ``check_every``; arguments are already validated.

    Each block first tries the log-stabilised scaling form (:func:`_scaling_block`); if that
    under- or overflows, the block is redone from the last checked state in the pure log
    domain (:func:`_log_block`), which then runs to the end.
    """
    n_batch, n_rows, _ = cost.shape
    n_cols = victim_mask.shape[1]
    source_mask = source_mask.bool()
    victim_mask = victim_mask.bool()
    dtype = cost.dtype
    valid = band_valid_mask(source_mask, victim_mask, window)  # (B, L, W)
    log_kernel = (cost / -reg).masked_fill(~valid, -math.inf)  # (B, L, W)
    valid_col = band_transpose(valid, window, n_cols)  # (B, M, W)
    log_kernel_col = band_transpose(log_kernel, window, n_cols).masked_fill(
        ~valid_col, -math.inf
    )  # (B, M, W)
    problem = _Problem(
        log_kernel,
        log_kernel_col,
        _log_uniform(source_mask, dtype),
        _log_uniform(victim_mask, dtype),
        valid.any(-1),
        valid_col.any(-1),
        window,
    )
    log_u = torch.zeros(n_batch, n_rows, dtype=dtype, device=cost.device)
    log_v = torch.zeros(n_batch, n_cols, dtype=dtype, device=cost.device)
    error = torch.full((n_batch,), math.inf, dtype=dtype, device=cost.device)
    saved, best = (log_u, log_v, error), math.inf
    omega = overrelaxation
    scaling_ok = True
    n_iter = 0
    while n_iter < max_iter:
        # check only every `check_every` steps: the error is a full reduction and, on a GPU,
        # reading it back synchronises the device
        steps = min(check_every - n_iter % check_every, max_iter - n_iter)
        block = _scaling_block if scaling_ok else _log_block
        log_u, log_v, error = block(problem, log_u, log_v, steps, omega)
        worst = float(error.max()) if n_batch else 0.0
        if scaling_ok and not math.isfinite(worst):
            # a scaling under- or overflowed (tiny reg far from the solution): redo this block
            # from the last checked state in the log domain, without counting it
            log_u, log_v, error = saved
            scaling_ok = False
            continue
        n_iter += steps
        if omega != 1.0 and not (math.isfinite(worst) and worst <= best):
            # over-relaxation overshot (error grew or overflowed): go back to the last
            # checked state and continue with plain Sinkhorn, which always converges
            log_u, log_v, error = saved
            omega = 1.0
            continue
        saved, best = (log_u, log_v, error), worst
        if worst <= tol:
            break

    plan = torch.exp(log_kernel + log_u[:, :, None] + _shifted(log_v, n_rows, window))
    return plan, log_u, log_v, n_iter, error


@dataclass(frozen=True)
class _Problem:
    """Fixed tensors of one solve: log kernels (row and column band), log weights, live steps."""

    log_kernel: Tensor  # (B, L, W)
    log_kernel_col: Tensor  # (B, M, W)
    log_a: Tensor  # (B, L)
    log_b: Tensor  # (B, M)
    row_live: Tensor  # (B, L) rows with at least one allowed entry
    col_live: Tensor  # (B, M)
    window: int


def _absorbed(log_kernel: Tensor, log_here: Tensor, log_there: Tensor, window: int) -> Tensor:
    """``exp(log_kernel + log_here[i] + log_there[i + k - K])``, a (B, N, W) band, in place."""
    out = log_kernel + _shifted(log_there, log_kernel.shape[1], window)  # (B, N, W)
    return out.add_(log_here[:, :, None]).exp_()  # (B, N, W)


def _scale(old: Tensor, weight: Tensor, sums: Tensor, live: Tensor, omega: float) -> Tensor:
    """Scaling update ``weight / sums`` (over-relaxed: ``old^(1-omega) (weight/sums)^omega``).

    Steps without an allowed entry keep the scaling 1 (their potential stays 0); a live step
    whose sum underflowed to 0 gets ``inf``, which the block's error check catches.
    """
    new = weight / sums
    if omega != 1.0:
        new = old.pow(1.0 - omega) * new.pow(omega)
    return torch.where(live, new, 1.0)


def _scaling_block(
    problem: _Problem, log_u: Tensor, log_v: Tensor, steps: int, omega: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Run ``steps`` Sinkhorn iterations in the log-stabilised scaling form, then absorb.

    The potentials are absorbed into the kernel band once per block,
    ``Kt = exp(log_kernel + log_u + log_v)`` (Schmitzer, "Stabilized sparse scaling
    algorithms for entropy regularized transport problems", SIAM J. Sci. Comput., 2019), so
    each iteration is two banded multiply-and-sum passes instead of two log-sum-exps; the
    scalings ``s, t`` start at 1 and are folded back into ``log_u, log_v`` at the end. The
    iterates are those of the log-domain updates, up to float rounding. After a column
    update every entry of ``Kt`` is at most 1, so only a far-from-solved start can overflow.
    """
    window = problem.window
    n_rows, n_cols = log_u.shape[1], log_v.shape[1]
    kernel = _absorbed(problem.log_kernel, log_u, log_v, window)  # (B, L, W)
    kernel_col = _absorbed(problem.log_kernel_col, log_v, log_u, window)  # (B, M, W)
    a, b = problem.log_a.exp(), problem.log_b.exp()  # (B, L), (B, M); 0 on padding
    s, t = torch.ones_like(log_u), torch.ones_like(log_v)
    row = kernel.sum(-1)  # (B, L)
    col = row.new_zeros(log_v.shape)
    # one product buffer per band, reused: a fresh large temporary per iteration costs more
    # than the multiply itself on CPU (page faults of a new allocation)
    row_buffer, col_buffer = torch.empty_like(kernel), torch.empty_like(kernel_col)
    for _ in range(steps):
        s = _scale(s, a, row, problem.row_live, omega)
        col = torch.mul(kernel_col, _shifted(s, n_cols, window), out=col_buffer).sum(-1)  # (B, M)
        t = _scale(t, b, col, problem.col_live, omega)
        row = torch.mul(kernel, _shifted(t, n_rows, window), out=row_buffer).sum(-1)  # (B, L)
    error = (s * row - a).abs().sum(1) + (t * col - b).abs().sum(1)  # (B,)
    return log_u + s.log(), log_v + t.log(), error


def _log_block(
    problem: _Problem, log_u: Tensor, log_v: Tensor, steps: int, omega: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Run ``steps`` Sinkhorn iterations with log-sum-exps over the bands (the safe fallback)."""
    window = problem.window
    n_rows, n_cols = log_u.shape[1], log_v.shape[1]

    def scaling(log_weight: Tensor, lse: Tensor) -> Tensor:
        # a row (column) with no allowed entry has lse = -inf: keep its scaling at 0, the
        # kernel already zeroes it, and the marginal error reports the infeasibility
        return torch.where(torch.isfinite(lse), log_weight - lse, 0.0)

    lse_row = torch.logsumexp(problem.log_kernel + _shifted(log_v, n_rows, window), -1)  # (B, L)
    lse_col = lse_row.new_full(log_v.shape, -math.inf)
    for _ in range(steps):
        log_u = _relax(log_u, scaling(problem.log_a, lse_row), omega)
        lse_col = torch.logsumexp(
            problem.log_kernel_col + _shifted(log_u, n_cols, window), -1
        )  # (B, M)
        log_v = _relax(log_v, scaling(problem.log_b, lse_col), omega)
        lse_row = torch.logsumexp(
            problem.log_kernel + _shifted(log_v, n_rows, window), -1
        )  # (B, L)
    error = _marginal_error(log_u, lse_row, problem.log_a) + _marginal_error(
        log_v, lse_col, problem.log_b
    )
    return log_u, log_v, error


def _relax(old: Tensor, new: Tensor, omega: float) -> Tensor:
    """Over-relaxed update ``(1 - omega) * old + omega * new`` (plain update when omega = 1).

    >>> _relax(torch.tensor([1.0]), torch.tensor([2.0]), 1.5)
    tensor([2.5000])
    """
    if omega == 1.0:
        return new
    return torch.lerp(old, new, omega)


def _marginal_error(log_scaling: Tensor, lse: Tensor, log_weight: Tensor) -> Tensor:
    """L1 distance between the marginal ``exp(log_scaling + lse)`` and ``exp(log_weight)``."""
    marginal = torch.exp(log_scaling + lse)  # (B, N); 0 where lse = -inf
    return (marginal - torch.exp(log_weight)).abs().sum(1)
