"""Network building blocks shared by the algorithms: MLP trunks, Q heads, dueling, and
the hierarchical learners' networks:

* :class:`GridNetwork` - convolutions pooled over the cells of a grid observation.
* :class:`GoalConditionedQ` - a low level: Q over primitives from an observation, a
  goal encoding and the agent's id; one
  network for all agents, or one per agent run together as a vectorised ensemble.
* :class:`EgocentricView` - a grid observation and a goal map re-centred on the agent,
  the low level's input on layouts that change from episode to episode.
* :class:`IndependentGoalQ` - each agent's Q over goals from its own observation.
* :class:`CommGoalQ` - CommNet-style Q over goals: each agent also sees the mean of
  the other agents' hidden vectors.
* :class:`QMixer` - QMIX's monotonic mixing network with hypernetworks on the state.

Vectorised ensembles live in :mod:`hmarl.core.ensemble`, next to the engine that
relies on their single batched call.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hmarl.core import EnsembleMLP


def trunk(in_dim: int, hidden_sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear layers each followed by ``activation``; outputs ``hidden_sizes[-1]`` features."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip([in_dim, *hidden_sizes[:-1]], hidden_sizes, strict=True):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    return nn.Sequential(*layers)


def mlp(in_dim: int, hidden_sizes: Sequence[int], out_dim: int, activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """A multilayer perceptron with a linear output layer."""
    last = hidden_sizes[-1] if hidden_sizes else in_dim
    return nn.Sequential(*trunk(in_dim, hidden_sizes, activation), nn.Linear(last, out_dim))


class DuelingHead(nn.Module):
    """``Q(s, a) = V(s) + A(s, a) - mean_a A(s, a)`` (Wang et al., 2016)."""

    def __init__(self, in_features: int, n_actions: int) -> None:
        super().__init__()
        self.value = nn.Linear(in_features, 1)
        self.advantage = nn.Linear(in_features, n_actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(-1, keepdim=True)


class QNetwork(nn.Module):
    """Action values from an observation: an MLP trunk and a linear or dueling head."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: Sequence[int], dueling: bool = False) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one hidden layer")
        self.trunk = trunk(obs_dim, hidden_sizes)
        self.head = DuelingHead(hidden_sizes[-1], n_actions) if dueling else nn.Linear(hidden_sizes[-1], n_actions)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """The last hidden layer's activations."""
        return self.trunk(obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(obs))


class GridNetwork(nn.Module):
    """Outputs from an observation that starts with a grid image, via convolutions.

    The first ``channels * height * width`` entries of the observation are read as a
    channel-major image, given one more channel that is 1 on the grid (so the zero
    padding marks its edge), and passed through 3x3 convolutions. Each feature map is
    max- and mean-pooled over the cells, so a local pattern (an agent standing on an
    item, next to a wall) gives the same feature wherever on the grid it occurs; the
    pooled features and the observation's flat remainder feed an MLP trunk.
    ``features`` - the input of the linear head - are the trunk's output followed by
    the flat remainder again: a value of those entries never seen before (say, an
    agent carrying an item) then lies in a direction of feature space that no
    statistic over earlier features has covered.
    """

    def __init__(
        self, obs_dim: int, n_outputs: int, grid: Sequence[int], channels: Sequence[int], hidden_sizes: Sequence[int]
    ) -> None:
        super().__init__()
        if len(grid) != 3 or min(grid) < 1:
            raise ValueError(f"grid must be (channels, height, width) of positive sizes, got {tuple(grid)}")
        if not channels:
            raise ValueError("channels must name at least one convolution")
        self.grid = tuple(int(size) for size in grid)
        self.grid_dim = self.grid[0] * self.grid[1] * self.grid[2]
        if self.grid_dim > obs_dim:
            raise ValueError(f"grid {self.grid} holds {self.grid_dim} entries, more than obs_dim={obs_dim}")
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip([self.grid[0] + 1, *channels[:-1]], channels, strict=True):
            layers += [nn.Conv2d(fan_in, fan_out, 3, padding=1), nn.ReLU()]
        self.convolutions = nn.Sequential(*layers)
        flat_dim = obs_dim - self.grid_dim
        self.trunk = trunk(2 * channels[-1] + flat_dim, hidden_sizes)
        self.head = nn.Linear((hidden_sizes[-1] + flat_dim) if hidden_sizes else 2 * channels[-1] + flat_dim, n_outputs)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        batch = obs.shape[:-1]
        flat = obs.reshape(-1, obs.shape[-1])
        image = flat[:, : self.grid_dim].reshape(-1, *self.grid)
        on_grid = torch.ones_like(image[:, :1])
        maps = self.convolutions(torch.cat([image, on_grid], 1)).flatten(2)
        rest = flat[:, self.grid_dim :]
        pooled = torch.cat([maps.amax(2), maps.mean(2), rest], 1)
        features = torch.cat([self.trunk(pooled), rest], 1) if len(self.trunk) else pooled
        return features.reshape(*batch, -1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(obs))


class EgocentricView(nn.Module):
    """Grid observation and goal maps as seen from the observing agent's cell.

    The observation's grid channels other than channel 0 (the agent's own cell), the
    goal's maps and a channel that is 1 on the grid are shifted so that the agent's cell
    is the centre of a ``(2 * height - 1, 2 * width - 1)`` window (zero beyond the grid,
    which the on-grid channel tells from an empty cell); the window covers the whole
    grid from any cell. The observation's and the goal's flat remainders follow. A
    wall next to the agent or a goal three cells to its left then reads the same
    wherever on the grid they occur, which a network meets on every new layout.
    ``out_dim`` is the length of the output rows.
    """

    under: torch.Tensor  # a buffer (register_buffer below)

    def __init__(self, obs_dim: int, goal_dim: int, observation_grid: Sequence[int], goal_grid: Sequence[int]) -> None:
        super().__init__()
        if len(observation_grid) != 3 or min(observation_grid) < 1:
            raise ValueError(
                f"observation_grid must be (channels, height, width) of positive sizes, got {tuple(observation_grid)}"
            )
        if len(goal_grid) != 3 or min(goal_grid) < 1 or tuple(goal_grid[1:]) != tuple(observation_grid[1:]):
            raise ValueError(
                f"goal_grid must be (channels, height, width) over the observation's "
                f"{tuple(observation_grid[1:])} grid, got {tuple(goal_grid)}"
            )
        self.channels, self.height, self.width = (int(size) for size in observation_grid)
        self.goal_channels = int(goal_grid[0])
        cells = self.height * self.width
        self.obs_grid_dim, self.goal_grid_dim = self.channels * cells, self.goal_channels * cells
        if self.obs_grid_dim > obs_dim or self.goal_grid_dim > goal_dim:
            raise ValueError(f"the grids hold more entries than obs_dim={obs_dim} or goal_dim={goal_dim}")
        window_height, window_width = 2 * self.height - 1, 2 * self.width - 1
        planes = self.channels - 1 + self.goal_channels + 1
        self.out_dim = planes * window_height * window_width + (obs_dim - self.obs_grid_dim) + (goal_dim - self.goal_grid_dim)
        # For an agent on each cell, the cell under each window position (``cells``: off the grid).
        y, x = torch.arange(self.height), torch.arange(self.width)
        rows = y[:, None, None, None] + torch.arange(window_height)[None, None, :, None] - (self.height - 1)
        cols = x[None, :, None, None] + torch.arange(window_width)[None, None, None, :] - (self.width - 1)
        inside = (rows >= 0) & (rows < self.height) & (cols >= 0) & (cols < self.width)
        under = torch.where(inside, rows * self.width + cols, cells).reshape(cells, -1)
        self.register_buffer("under", under, persistent=False)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Rows ``(M, out_dim)`` from flat ``obs`` ``(M, obs_dim)`` and ``goal`` ``(M, goal_dim)``."""
        cells = self.height * self.width
        image = obs[:, : self.obs_grid_dim].reshape(len(obs), self.channels, cells)
        goal_maps = goal[:, : self.goal_grid_dim].reshape(len(goal), self.goal_channels, cells)
        grid = torch.cat([image[:, 1:], goal_maps, torch.ones_like(image[:, :1])], 1)
        # One row per (sample, cell) holding the cell's planes, and one more cell per
        # sample, zero in every plane, for off the grid.
        planes = F.pad(grid, (0, 1)).transpose(1, 2).reshape(-1, grid.shape[1])
        under = self.under[image[:, 0].argmax(1)]  # (M, window cells)
        first = torch.arange(len(obs), device=obs.device)[:, None] * (cells + 1)
        # Row-major over the window, each cell's planes together.
        window = planes.index_select(0, (first + under).flatten()).reshape(len(obs), -1)
        return torch.cat([window, obs[:, self.obs_grid_dim :], goal[:, self.goal_grid_dim :]], 1)


def _with_agent_ids(obs: torch.Tensor) -> torch.Tensor:
    """Append a one-hot agent id to ``obs`` shaped ``(..., n_agents, obs_dim)``."""
    n_agents = obs.shape[-2]
    ids = torch.eye(n_agents, dtype=obs.dtype, device=obs.device).expand(*obs.shape[:-1], n_agents)
    return torch.cat([obs, ids], -1)


class GoalConditionedQ(nn.Module):
    """``Q(obs, goal, agent)`` over ``n_actions`` primitives.

    With ``shared=True`` one MLP serves every agent (the agent id is an input); with
    ``shared=False`` each agent has its own MLP, all evaluated in one batched call.
    With a ``view`` the MLP reads the observation and goal through it (an
    :class:`EgocentricView`), else the two concatenated.
    """

    def __init__(
        self,
        obs_dim: int,
        goal_dim: int,
        n_agents: int,
        n_actions: int,
        hidden_sizes: Sequence[int],
        shared: bool = True,
        view: EgocentricView | None = None,
    ) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one hidden layer")
        self.n_agents = n_agents
        self.n_actions = n_actions
        self.view = view
        in_dim = view.out_dim if view is not None else obs_dim + goal_dim
        self.body = EnsembleMLP(in_dim + n_agents, hidden_sizes, n_actions, 1 if shared else n_agents)

    def read(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """What the MLP reads of ``obs`` and ``goal`` (before the agent id). It has no
        parameters, so a caller evaluating two copies of the network (online and target)
        on the same rows can read them once and pass the result as ``read``."""
        return self.view(obs, goal) if self.view is not None else torch.cat([obs, goal], -1)

    def forward(
        self, obs: torch.Tensor, goal: torch.Tensor, agent: torch.Tensor, read: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Action values ``(M, n_actions)`` for flat rows."""
        ids = F.one_hot(agent, self.n_agents).to(obs.dtype)
        inputs = self.read(obs, goal) if read is None else read
        every_member = self.body(torch.cat([inputs, ids], -1))
        if self.body.ensemble_size == 1:
            return every_member[0]
        return every_member.gather(0, agent[None, :, None].expand(1, -1, every_member.shape[-1]))[0]


class IndependentGoalQ(nn.Module):
    """Each agent's Q over goals from its own observation and id: ``(..., N, obs) -> (..., N, G)``.

    With ``shared=True`` one MLP serves every agent; with ``shared=False`` each agent has
    its own MLP (as the original hQmix's per-agent networks), all run in one batched call.
    """

    def __init__(self, obs_dim: int, n_agents: int, n_goals: int, hidden_sizes: Sequence[int], shared: bool = True) -> None:
        super().__init__()
        self.shared = shared
        if shared:
            self.net = mlp(obs_dim + n_agents, hidden_sizes, n_goals)
        else:
            self.members = EnsembleMLP(obs_dim + n_agents, hidden_sizes, n_goals, n_agents)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        inputs = _with_agent_ids(obs)
        if self.shared:
            return self.net(inputs)
        n_agents, width = inputs.shape[-2:]
        by_agent = inputs.reshape(-1, n_agents, width).transpose(0, 1)
        values = self.members(by_agent).transpose(0, 1)
        return values.reshape(*inputs.shape[:-1], values.shape[-1])


class CommGoalQ(nn.Module):
    """CommNet-style Q over goals: agent ``i`` encodes its observation into ``h_i``,
    receives ``c_i``, the mean of the other agents' ``h_j``, and reads its goal values
    from ``[h_i, c_i]``. Works for any number of agents (``c_i = 0`` for a lone agent);
    gradients flow through the communication, as in CommNet's centralised training.
    """

    def __init__(self, obs_dim: int, n_agents: int, n_goals: int, hidden_sizes: Sequence[int]) -> None:
        super().__init__()
        if not hidden_sizes:
            raise ValueError("hidden_sizes must name at least one hidden layer")
        width = hidden_sizes[-1]
        self.encoder = trunk(obs_dim + n_agents, hidden_sizes)
        self.head = mlp(2 * width, [width], n_goals)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(_with_agent_ids(obs))
        n_agents = obs.shape[-2]
        others = hidden.sum(-2, keepdim=True) - hidden
        message = others / max(n_agents - 1, 1)
        return self.head(torch.cat([hidden, message], -1))


class QMixer(nn.Module):
    """QMIX (Rashid et al., 2018): ``Q_tot = w2 . elu(q W1 + b1) + b2`` with ``W1 = |f1(s)|``,
    ``w2 = |f2(s)|``, ``b1 = g1(s)``, ``b2 = g2(s)``; non-negative weights make ``Q_tot``
    monotonic in every agent's value."""

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hyper_hidden: int = 64) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.embed_dim = embed_dim
        self.hyper_w1 = mlp(state_dim, [hyper_hidden], n_agents * embed_dim)
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.hyper_w2 = mlp(state_dim, [hyper_hidden], embed_dim)
        self.hyper_b2 = mlp(state_dim, [embed_dim], 1)

    def forward(self, agent_q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``agent_q`` (M, N) and ``state`` (M, state_dim) -> ``Q_tot`` (M,)."""
        w1 = self.hyper_w1(state).abs().view(-1, self.n_agents, self.embed_dim)
        hidden = F.elu(torch.bmm(agent_q.unsqueeze(1), w1).squeeze(1) + self.hyper_b1(state))
        w2 = self.hyper_w2(state).abs()
        return (hidden * w2).sum(-1) + self.hyper_b2(state).squeeze(-1)
