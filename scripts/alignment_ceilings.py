"""How well can any alignment do on the unaligned synthetic data? Ceilings from the truth.

Run ``python scripts/alignment_ceilings.py [--seed 0] [--threads 1]`` from the repository
root (about ten minutes). It scores, with ``score-alignment``'s metrics, the alignment of
audio frames (victim) to text words (source) on the test split of
``synthetic:unaligned=1``, band ``K = 8``, for predictors that are *given* more than a model
gets, so that a model's score can be read against what the data allows:

- ``diagonal`` / ``uniform``: the two references of ``score-alignment``;
- ``durations known``: every frame on the word its true cumulative durations put it on (the
  best a predictor that never sees the victim could do if it knew every duration; it does
  not know the text's own warp, see ``mmalign.data.synthetic``, step 7);
- ``linear emission, per step``: a Gaussian emission of the centred audio frame from its
  word's centred text features, fitted by least squares *on the true alignment* of the
  training split; each frame's posterior over its band on its own (what a per-step plan
  such as OT can reach from a linear cost);
- ``linear emission, monotone``: the same emission under the monotone path
  (:mod:`mmalign.ot.monotone`), with geometric durations (``S = 1``) and with up to
  ``S = 5`` sub-states per word (``--alignment-states 5``);
- ``EM from a flat start``: the emission fitted without the truth, by three rounds of
  posterior-weighted least squares on the monotone posteriors of half the training split
  (the complete half at ``p = 0.5``), starting from no content: what
  ``--alignment-space emission --alignment-solver monotone`` does by gradient steps; for
  ``S = 1`` and ``S = 5``.

Nothing here trains a model or is asserted; ``docs/results.md`` quotes the numbers.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mmalign.data.synthetic import SyntheticConfig, generate_synthetic
from mmalign.evaluate.alignment_score import ScoreAccumulator, diagonal_band, uniform_band
from mmalign.models.emission import centred
from mmalign.ot.column_band import column_band_index, column_band_valid_mask, diagonal_centres
from mmalign.ot.monotone import monotone_band_posterior

WINDOW = 8
CHUNK = 64  # samples per forward-backward call: the transition blocks are (B, M, W, W)


def _tensors(dataset, split: str) -> dict[str, torch.Tensor]:
    """Return the text->audio pair of a split as tensors, features centred per sample."""
    s = dataset.splits[split]
    n = torch.as_tensor(s.lengths["text"])
    m = torch.as_tensor(s.lengths["audio"])
    x = torch.as_tensor(s.features["text"])  # (N, L, D_s)
    y = torch.as_tensor(s.features["audio"])  # (N, M, D_v)
    source_mask = torch.arange(x.shape[1]) < n[:, None]
    victim_mask = torch.arange(y.shape[1]) < m[:, None]
    return {
        "x": centred(x, source_mask),
        "y": centred(y, victim_mask),
        "source_mask": source_mask,
        "victim_mask": victim_mask,
        "centres": diagonal_centres(n, m, y.shape[1]),
        "spans": torch.as_tensor(s.spans["audio_text"]),  # (N, M, 2)
    }


def _gaussian_log_emission(t: dict, rows: slice, weight: torch.Tensor, precision: torch.Tensor):
    """Log N(y_j | [x_i, 1] @ weight, precision^-1) on the band, (B, M, W); -inf off it."""
    x = t["x"][rows]
    mean = torch.cat([x, torch.ones_like(x[..., :1])], -1) @ weight  # (B, L, D_v)
    index, _ = column_band_index(t["centres"][rows], WINDOW, x.shape[1])  # (B, M, W)
    b, m, w = index.shape
    band = torch.gather(mean, 1, index.reshape(b, -1, 1).expand(-1, -1, mean.shape[-1]))
    diff = t["y"][rows][:, :, None] - band.view(b, m, w, -1)  # (B, M, W, D_v)
    log_e = -0.5 * torch.einsum("bmwd,de,bmwe->bmw", diff, precision, diff)
    valid = column_band_valid_mask(
        t["source_mask"][rows], t["victim_mask"][rows], t["centres"][rows], WINDOW
    )
    return log_e.masked_fill(~valid, -torch.inf), valid


def _posteriors(t, rows, weight, precision, monotone: bool, states: int = 1) -> torch.Tensor:
    """Column-normalised posterior (B, M, W) of each victim step over its band."""
    log_e, valid = _gaussian_log_emission(t, rows, weight, precision)
    if not monotone:
        return torch.where(valid, log_e.softmax(-1).nan_to_num(0.0), 0.0)
    out = monotone_band_posterior(
        log_e, t["source_mask"][rows], t["victim_mask"][rows], t["centres"][rows], WINDOW,
        states=states,
    )  # fmt: skip
    return out.plan * t["victim_mask"][rows].sum(1).clamp_min(1)[:, None, None]


def _chunks(n: int):
    return [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


def _score(t: dict, band_of_rows) -> dict[str, float]:
    acc = ScoreAccumulator()
    for rows in _chunks(t["x"].shape[0]):
        acc.add(band_of_rows(rows), t["centres"][rows], WINDOW, t["spans"][rows],
                t["victim_mask"][rows])  # fmt: skip
    return acc.result().to_dict()


def _least_squares(t: dict, rows_list, weights_of_rows) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior-weighted least squares of y_j on [x_i, 1]; returns (weight, precision)."""
    d_s, d_v = t["x"].shape[-1] + 1, t["y"].shape[-1]
    gram = torch.zeros(d_s, d_s, dtype=torch.float64)
    cross = torch.zeros(d_s, d_v, dtype=torch.float64)
    for rows in rows_list:
        gamma = weights_of_rows(rows).double()  # (B, M, W)
        x = t["x"][rows].double()
        x1 = torch.cat([x, torch.ones_like(x[..., :1])], -1)  # (B, L, D_s + 1)
        index, _ = column_band_index(t["centres"][rows], WINDOW, x.shape[1])
        # per source step: summed posterior and posterior-weighted victim sum
        mass = torch.zeros(x.shape[:2], dtype=torch.float64).scatter_add_(
            1, index.flatten(1), gamma.flatten(1)
        )  # (B, L)
        y = t["y"][rows].double()  # (B, M, D_v)
        ysum = torch.zeros(*x.shape[:2], d_v, dtype=torch.float64)
        contrib = (gamma[..., None] * y[:, :, None]).flatten(1, 2)  # (B, M*W, D_v)
        ysum.scatter_add_(1, index.flatten(1)[..., None].expand(-1, -1, d_v), contrib)
        gram += torch.einsum("bl,bld,ble->de", mass, x1, x1)
        cross += torch.einsum("bld,blv->dv", x1, ysum)
    weight = torch.linalg.solve(gram + 1e-3 * torch.eye(d_s, dtype=torch.float64), cross)
    resid = torch.zeros(d_v, d_v, dtype=torch.float64)
    count = 0.0
    for rows in rows_list:  # residual covariance under the same weights
        gamma = weights_of_rows(rows).double()
        x = t["x"][rows].double()
        mean = torch.cat([x, torch.ones_like(x[..., :1])], -1) @ weight
        index, _ = column_band_index(t["centres"][rows], WINDOW, x.shape[1])
        b, m, w = index.shape
        band = torch.gather(mean, 1, index.reshape(b, -1, 1).expand(-1, -1, d_v)).view(b, m, w, -1)
        diff = t["y"][rows].double()[:, :, None] - band
        resid += torch.einsum("bmw,bmwd,bmwe->de", gamma, diff, diff)
        count += float(gamma.sum())
    precision = torch.linalg.inv(resid / count)
    return weight.float(), precision.float()


def _truth_band(t: dict, rows: slice) -> torch.Tensor:
    """One-hot-over-true-span weights (B, M, W), normalised per victim step."""
    index, _ = column_band_index(t["centres"][rows], WINDOW, t["x"].shape[1])
    spans = t["spans"][rows]
    hit = (index >= spans[..., :1]) & (index < spans[..., 1:])  # (B, M, W)
    hit = hit & column_band_valid_mask(
        t["source_mask"][rows], t["victim_mask"][rows], t["centres"][rows], WINDOW
    )
    return hit.float() / hit.sum(-1, keepdim=True).clamp_min(1)


def _durations_known(data, t: dict, rows: slice) -> torch.Tensor:
    """Each frame on the latent step its true durations give, read as a word index."""
    latent = torch.as_tensor(data.warps["test"]["audio"])[rows]  # (B, M) frame's latent step
    index, _ = column_band_index(t["centres"][rows], WINDOW, t["x"].shape[1])
    return (index == latent[:, :, None]).float()


def main(argv: list[str] | None = None) -> None:
    """Print the table of the module docstring's predictors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = generate_synthetic(SyntheticConfig(unaligned=True, seed=args.seed))
    train, test = _tensors(data.dataset, "train"), _tensors(data.dataset, "test")
    results: dict[str, dict[str, float]] = {}

    def valid(rows):
        return column_band_valid_mask(
            test["source_mask"][rows], test["victim_mask"][rows], test["centres"][rows], WINDOW
        )

    results["diagonal"] = _score(test, lambda r: diagonal_band(valid(r), WINDOW))
    results["uniform"] = _score(test, lambda r: uniform_band(valid(r)))
    results["durations known"] = _score(test, lambda r: _durations_known(data, test, r))
    all_train = _chunks(train["x"].shape[0])
    weight, precision = _least_squares(train, all_train, lambda r: _truth_band(train, r))
    for name, monotone, states in (("per step", False, 1), ("monotone", True, 1),
                                   ("monotone, S = 5", True, 5)):  # fmt: skip
        results[f"linear emission, {name}"] = _score(
            test,
            lambda r, mono=monotone, s=states: _posteriors(test, r, weight, precision, mono, s),
        )
    half = [slice(r.start, r.stop, 2) for r in all_train]  # every other training sample
    d_s, d_v = train["x"].shape[-1] + 1, train["y"].shape[-1]
    for states in (1, 5):
        weight, precision = torch.zeros(d_s, d_v), torch.eye(d_v)  # no content: position only
        for round_ in range(4):
            results[f"EM from a flat start, S = {states}, round {round_}"] = _score(
                test, lambda r, w=weight, p=precision, s=states: _posteriors(test, r, w, p, True, s)
            )
            if round_ < 3:
                weight, precision = _least_squares(
                    train, half,
                    lambda r, w=weight, p=precision, s=states: _posteriors(train, r, w, p, True, s),
                )  # fmt: skip
    print(f"synthetic:unaligned=1 seed {args.seed}, test split, audio frames -> text words, "
          f"K = {WINDOW}, {args.threads} thread(s)")  # fmt: skip
    print(f"{'predictor':<42} {'mass_on_truth':>13} {'argmax_acc':>10} {'offset_err':>10}")
    for name, r in results.items():
        print(
            f"{name:<42} {r['mass_on_truth']:>13.3f} {r['argmax_accuracy']:>10.3f} "
            f"{r['offset_error']:>10.3f}"
        )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
