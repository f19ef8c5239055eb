"""RLlib (new API stack): a ``MultiAgentEnv`` over any registered environment and a
PPO RLModule that applies the action masks.

>>> from ray.rllib.algorithms.ppo import PPOConfig
>>> from hmarl.envs.bridges.rllib import HmarlMultiAgentEnv, masked_ppo_config
>>> algo = masked_ppo_config("trash_collection_v0", {"layout": "ring"}).build_algo()
>>> algo.train()

Each agent observes ``{"observations": Box, "action_mask": Box(0, 1)}`` (RLlib's
masking convention, so RLlib's own masking examples read it too). Rewards of every
agent are reported at every step, the final one included; ``terminateds`` and
``truncateds`` carry ``"__all__"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_rl_module import PPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.env.multi_agent_env import MultiAgentEnv
from ray.rllib.utils.torch_utils import FLOAT_MIN

from hmarl import envs

#: The policy every agent shares in :func:`masked_ppo_config`.
SHARED_POLICY = "shared"


class HmarlMultiAgentEnv(MultiAgentEnv):
    """One copy of a registered environment; ``config`` holds ``env`` (its registry
    name) and the environment's keyword arguments."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        config = dict(config or {})
        if "env" not in config:
            raise ValueError(f"config must name the environment: {{'env': one of {envs.names()}, ...}}")
        name = config.pop("env")
        self.env = envs.get(name).parallel_env(**config)
        agent_ids: list[Any] = list(self.env.possible_agents)  # RLlib's AgentID type admits any hashable
        self.possible_agents = agent_ids
        self.agents: list[Any] = []
        agent = self.possible_agents[0]
        n_actions = int(self.env.action_space(agent).n)
        observation = spaces.Dict(
            {
                "observations": self.env.observation_space(agent)["observation"],
                "action_mask": spaces.Box(0.0, 1.0, (n_actions,), np.float32),
            }
        )
        self.observation_spaces = {agent: observation for agent in self.possible_agents}
        self.action_spaces = {agent: self.env.action_space(agent) for agent in self.possible_agents}

    @staticmethod
    def _convert(observations: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
        return {
            agent: {"observations": value["observation"], "action_mask": value["action_mask"].astype(np.float32)}
            for agent, value in observations.items()
        }

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        observations, infos = self.env.reset(seed=seed, options=options)
        self.agents = list(self.env.agents)
        return self._convert(observations), infos

    # RLlib's multi-agent step returns five dicts; its class inherits gymnasium.Env's signature.
    def step(self, action_dict: dict[Any, Any]) -> tuple[dict, dict, dict, dict, dict]:  # type: ignore[override]
        observations, rewards, terminations, truncations, infos = self.env.step(
            {agent: int(action) for agent, action in action_dict.items()}
        )
        self.agents = list(self.env.agents)
        terminateds = {**terminations, "__all__": all(terminations.values())}
        truncateds = {**truncations, "__all__": all(truncations.values())}
        return self._convert(observations), rewards, terminateds, truncateds, infos

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


class MaskedPPOTorchRLModule(PPOTorchRLModule):
    """RLlib's default PPO module over ``"observations"``, with the logits of the
    actions that ``"action_mask"`` forbids pushed to the float minimum."""

    def __init__(self, *, observation_space: gymnasium.Space | None = None, **kwargs: Any) -> None:
        if not isinstance(observation_space, spaces.Dict) or set(observation_space) != {"observations", "action_mask"}:
            raise ValueError(
                "MaskedPPOTorchRLModule needs a Dict observation space with 'observations' and "
                f"'action_mask', got {observation_space}"
            )
        self._observation_space_with_mask = observation_space
        super().__init__(observation_space=observation_space["observations"], **kwargs)

    def setup(self) -> None:
        super().setup()
        self.observation_space = self._observation_space_with_mask

    @staticmethod
    def _split(batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        observation = batch[Columns.OBS]
        return observation["action_mask"], {**batch, Columns.OBS: observation["observations"]}

    @staticmethod
    def _mask(outs: dict[str, Any], mask: Any) -> dict[str, Any]:
        import torch

        outs[Columns.ACTION_DIST_INPUTS] = outs[Columns.ACTION_DIST_INPUTS] + torch.clamp(torch.log(mask), min=FLOAT_MIN)
        return outs

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, batch = self._split(batch)
        return self._mask(super()._forward_inference(batch, **kwargs), mask)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, batch = self._split(batch)
        return self._mask(super()._forward_exploration(batch, **kwargs), mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, batch = self._split(batch)
        return self._mask(super()._forward_train(batch, **kwargs), mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> Any:
        if isinstance(batch[Columns.OBS], Mapping):
            _, batch = self._split(batch)
        return super().compute_values(batch, embeddings)


def masked_ppo_config(env: str, env_kwargs: Mapping[str, Any] | None = None) -> PPOConfig:
    """PPO on the registered environment ``env``, all agents sharing one masked policy;
    change anything further on the returned config."""
    return (
        PPOConfig()
        .environment(HmarlMultiAgentEnv, env_config={"env": env, **dict(env_kwargs or {})})
        .multi_agent(policies={SHARED_POLICY}, policy_mapping_fn=lambda agent_id, *args, **kwargs: SHARED_POLICY)
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={SHARED_POLICY: RLModuleSpec(module_class=MaskedPPOTorchRLModule)}
            )
        )
    )
