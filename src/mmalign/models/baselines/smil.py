"""SMIL baseline: the victim as weighted sums of cluster centres with learned Gaussian noise.

Follows Ma, Ren, Zhao, Tulyakov, Wu and Peng, "SMIL: Multimodal Learning with Severely
Missing Modality", AAAI 2021 (section 3, the reconstruction network): the missing
modality is reconstructed as a weighted sum of k-means centres of the complete-split
representations, with weights predicted from the present modality and perturbed by a
learned Gaussian (reparameterised), as described in MM-Align (Han et al., EMNLP 2022)
section 4.2 ("linearly adding clustered center vectors with weights from learned Gaussian
distribution").

What we simplified, and how it sits on the shared backbone:

- The centres are k-means centres of the *encoded victim steps* ``(d,)`` of complete
  batches (a buffer, not a parameter). They are refreshed by an **online EMA k-means
  update on every complete (and warm-up) training batch**: each valid victim step
  (detached) goes to its nearest centre, and every centre that received steps moves to
  ``decay * centre + (1 - decay) * mean(its steps)``. The first complete batch seeds the
  centres with randomly drawn valid steps. Centres that win no steps stay where they are
  (no dead-centre reseeding). Because the encoder keeps training, the EMA (rather than
  k-means run once) lets the centres follow the moving representation.
- No meta-learning (SMIL's Bayesian meta-learning over the missing pattern) and no
  feature-regularisation network: one weight network (per-step MLP on the encoded source
  steps) outputs the mean and log-variance of the mixing logits; logits are sampled by the
  reparameterisation trick in training and set to the mean at evaluation, then a softmax
  over the centres gives convex weights (the imputation stays in the hull of the
  prototypes). A small KL term towards unit variance (``kl_weight``) keeps the learned
  perturbation from collapsing to zero.
- Reconstruction: masked MSE between the imputation and the (detached) real encoded
  victim steps, on rows that have the victim only; added to the main loss on complete
  batches. Missing batches: main loss with the imputation (plus the KL term).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmalign.config import TrainConfig
from mmalign.data.batching import Batch
from mmalign.models.backbone import Backbone
from mmalign.models.baselines.mfm import masked_mean, masked_mse
from mmalign.models.method import Losses, MissingModalityModel, Phase
from mmalign.validation import ConfigError, check_fraction, check_non_negative, check_positive

__all__ = ["SMIL", "ema_kmeans_step"]


def ema_kmeans_step(centres: Tensor, points: Tensor, decay: float) -> tuple[Tensor, Tensor]:
    """One online k-means step: assign ``points`` to the nearest centre, EMA-move hit centres.

    Parameters
    ----------
    centres : Tensor, shape (K, d)
    points : Tensor, shape (P, d)
    decay : float
        In [0, 1): 0 replaces a hit centre by the mean of its points (a Lloyd step).

    Returns
    -------
    new_centres : Tensor, shape (K, d)
    counts : Tensor, shape (K,)
        Points assigned to each centre.

    >>> c = torch.tensor([[0.0], [10.0]])
    >>> new, n = ema_kmeans_step(c, torch.tensor([[1.0], [3.0]]), 0.5)
    >>> new.tolist(), n.tolist()
    ([[1.0], [10.0]], [2, 0])
    """
    assign = torch.cdist(points, centres).argmin(dim=1)  # (P,)
    sums = torch.zeros_like(centres).index_add_(0, assign, points)  # (K, d)
    counts = torch.bincount(assign, minlength=centres.shape[0])  # (K,)
    means = sums / counts.clamp(min=1)[:, None].to(sums.dtype)  # (K, d)
    hit = (counts > 0)[:, None]  # (K, 1)
    return torch.where(hit, decay * centres + (1.0 - decay) * means, centres), counts


class SMIL(MissingModalityModel):
    """Backbone + cluster-centre imputation with learned Gaussian noise (see module docstring).

    Parameters
    ----------
    backbone : Backbone
    task : str
        ``"regression"`` or ``"classification"``.
    n_clusters : int
        Number of k-means centres ``K``.
    decay : float
        EMA factor of the online k-means update, in [0, 1).
    recon_weight : float
        Weight of the reconstruction loss on complete batches.
    kl_weight : float
        Weight of the KL term that keeps the perturbation's variance near 1.
    lambda_imputed, victim_stream_dropout : float
        The imputing methods' shared training options, documented once in
        :class:`~mmalign.models.method.MissingModalityModel`.
    """

    def __init__(
        self,
        backbone: Backbone,
        task: str,
        n_clusters: int = 16,
        decay: float = 0.9,
        recon_weight: float = 1.0,
        kl_weight: float = 1e-3,
        lambda_imputed: float = TrainConfig.lambda_imputed,
        victim_stream_dropout: float = TrainConfig.victim_stream_dropout,
    ) -> None:
        super().__init__(backbone, task, lambda_imputed, victim_stream_dropout)
        if isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or n_clusters < 1:
            raise ConfigError(f"`n_clusters` must be an integer >= 1; got {n_clusters!r}.")
        check_fraction("decay", decay)
        check_non_negative("recon_weight", recon_weight)
        check_non_negative("kl_weight", kl_weight)
        d = backbone.d_model
        check_positive("d_model", d)
        self.n_clusters, self.decay = n_clusters, float(decay)
        self.recon_weight, self.kl_weight = float(recon_weight), float(kl_weight)
        self.register_buffer("centres", torch.zeros(n_clusters, d))
        self.register_buffer("centres_ready", torch.zeros((), dtype=torch.bool))
        self.weight_net = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 2 * n_clusters))

    @torch.no_grad()
    def update_centres(self, victim_steps: Tensor, valid: Tensor) -> None:
        """Online EMA k-means update from the valid encoded victim steps of one complete batch.

        Parameters
        ----------
        victim_steps : Tensor, shape (B, L, d)
        valid : Tensor, shape (B, L)
            True on real victim steps of rows that have the victim.
        """
        points = victim_steps[valid].detach().to(self.centres.dtype)  # (P, d)
        if points.shape[0] == 0:
            return
        if not bool(self.centres_ready):
            # seed with distinct random steps (with replacement only if there are too few)
            if points.shape[0] >= self.n_clusters:
                pick = torch.randperm(points.shape[0], device=points.device)[: self.n_clusters]
            else:
                pick = torch.randint(points.shape[0], (self.n_clusters,), device=points.device)
            self.centres.copy_(points[pick])  # (K, d)
            self.centres_ready.fill_(True)
        new, _ = ema_kmeans_step(self.centres, points, self.decay)
        self.centres.copy_(new)

    def mixture_weights(self, source_steps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Convex weights over the centres from the encoded source steps.

        Parameters
        ----------
        source_steps : Tensor, shape (B, L, d)

        Returns
        -------
        weights : Tensor, shape (B, L, K)
            Softmax of the logits: sampled ``mean + exp(logvar / 2) * eps`` in training,
            ``mean`` in evaluation.
        mean, logvar : Tensor, shape (B, L, K)
        """
        mean, logvar = self.weight_net(source_steps).chunk(2, dim=-1)  # (B, L, K) each
        logvar = logvar.clamp(-10.0, 4.0)  # keep exp() finite early in training
        logits = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if self.training else mean
        return torch.softmax(logits, dim=-1), mean, logvar

    def impute_steps(self, source_steps: Tensor) -> tuple[Tensor, Tensor]:
        """Imputed victim steps ``weights @ centres`` (B, L, d) and the log-variance (B, L, K)."""
        weights, _, logvar = self.mixture_weights(source_steps)
        # a copy: the k-means update writes the buffer in place while this graph may live on
        centres = self.centres.to(weights.dtype, copy=True)  # (K, d)
        return weights @ centres, logvar  # (B, L, d)

    def impute_victim(self, z_source: Tensor, batch: Batch) -> tuple[Tensor, Tensor]:
        """Centre mixtures with the victim head token at position 0, and the source mask."""
        steps, _ = self.impute_steps(z_source[:, 1:])
        head = self.backbone.victim_head_token().expand(steps.shape[0], 1, -1)  # (B, 1, d)
        return torch.cat([head, steps], dim=1), batch.source_mask  # (B, 1+L, d)

    @staticmethod
    def _kl(logvar: Tensor, mask: Tensor) -> Tensor:
        """KL(N(m, s^2) || N(m, 1)) per logit, averaged over centres and valid steps."""
        kl = 0.5 * (logvar.exp() - logvar - 1.0).mean(-1)  # (B, L)
        return masked_mean(kl[..., None], mask).mean()  # (B, L, 1) -> (B, 1) -> ()

    def compute_losses(self, batch: Batch, phase: Phase) -> Losses:
        """Missing: main (imputed victim) + KL. Otherwise: refresh centres, main + recon + KL."""
        if phase == "missing":
            z_source = self.backbone.encode_source(batch.source, batch.source_mask)
            steps, logvar = self.impute_steps(z_source[:, 1:])
            head = self.backbone.victim_head_token().expand(steps.shape[0], 1, -1)  # (B, 1, d)
            z_imp = torch.cat([head, steps], dim=1)  # (B, 1+L, d)
            out = self.fuse(z_source, batch.source_mask, z_imp, batch.source_mask)
            main = self.loss(out, batch)
            kl = self._kl(logvar, batch.source_mask)
            total = main + self.kl_weight * kl
            return Losses({"backbone": total}, {"main": main.detach(), "kl": kl.detach()})
        z_source, z_victim, victim_mask = self.encode_pair_or_impute(batch)
        victim_steps = z_victim[:, 1:]  # (B, L, d)
        valid = batch.victim_mask & batch.has_victim[:, None]  # (B, L)
        if self.training:
            self.update_centres(victim_steps, valid)
        out = self.fuse(z_source, batch.source_mask, z_victim, victim_mask)
        main = self.loss(out, batch)
        steps, logvar = self.impute_steps(z_source[:, 1:])
        recon = masked_mse(steps, victim_steps.detach(), valid & batch.source_mask)
        kl = self._kl(logvar, batch.source_mask)
        total = main + self.recon_weight * recon + self.kl_weight * kl
        logged = {"main": main.detach(), "recon": recon.detach(), "kl": kl.detach()}
        return self.with_imputed_loss(Losses({"backbone": total}, logged), z_source, batch, phase)
