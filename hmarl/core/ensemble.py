"""Vectorised ensembles: N members evaluated in one batched matrix multiply.

Member weights are stacked along a leading axis, so an ensemble of N MLPs costs one
``baddbmm`` per layer instead of N separate calls (SAC-N / LB-SAC critics).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn


class VectorizedLinear(nn.Module):
    """``ensemble_size`` independent linear layers applied to inputs ``(N, B, in)``."""

    def __init__(self, in_features: int, out_features: int, ensemble_size: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.ensemble_size = ensemble_size
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The same distribution nn.Linear draws from, member by member.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, ensemble_size={self.ensemble_size}"


class EnsembleMLP(nn.Module):
    """``ensemble_size`` MLPs with the same shape, run together.

    ``forward`` takes ``(B, in)`` (the same input for every member) or ``(N, B, in)``
    and returns ``(N, B, out)``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_sizes: Sequence[int],
        out_dim: int,
        ensemble_size: int,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if ensemble_size < 1:
            raise ValueError(f"ensemble_size must be >= 1, got {ensemble_size}")
        self.ensemble_size = ensemble_size
        sizes = [in_dim, *hidden_sizes, out_dim]
        layers: list[nn.Module] = []
        for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(VectorizedLinear(fan_in, fan_out, ensemble_size))
            if index < len(sizes) - 2:
                layers.append(activation())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)
        return self.layers(x)

    @classmethod
    def from_members(cls, members: Sequence[nn.Sequential], activation: type[nn.Module] = nn.ReLU) -> EnsembleMLP:
        """Stack MLPs made of ``nn.Linear`` layers into one ensemble with their weights."""
        linears = [[m for m in member.modules() if isinstance(m, nn.Linear)] for member in members]
        first = linears[0]
        hidden_sizes = [layer.out_features for layer in first[:-1]]
        ensemble = cls(first[0].in_features, hidden_sizes, first[-1].out_features, len(members), activation)
        vectorized = [m for m in ensemble.modules() if isinstance(m, VectorizedLinear)]
        with torch.no_grad():
            for depth, layer in enumerate(vectorized):
                layer.weight.copy_(torch.stack([member[depth].weight.T for member in linears]))
                layer.bias.copy_(torch.stack([member[depth].bias[None] for member in linears]))
        return ensemble
