"""BenchMARL: every registered environment as a task of the ``hmarl`` environment.

>>> from benchmarl.algorithms import MappoConfig
>>> from benchmarl.experiment import Experiment, ExperimentConfig
>>> from benchmarl.models import MlpConfig
>>> from hmarl.envs.bridges.benchmarl import HmarlTask
>>> task = HmarlTask.BASKETBALL_DEFENSE_V1.get_task({"n_players": 3})
>>> Experiment(task, MappoConfig.get_from_yaml(), MlpConfig.get_from_yaml(), seed=0,
...            config=ExperimentConfig.get_from_yaml()).run()

The task's config holds the environment's keyword arguments. Agents form one group,
``agents``, with flat ``("agents", "observation")``, ``("agents", "action_mask")``
and a global ``state``, through TorchRL's ``PettingZooWrapper``. BenchMARL pins a
TorchRL older than the one the ``dev`` extra needs: install the ``benchmarl`` extra in
a virtual environment of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarl.environments.common import Task, TaskClass
from torchrl.data import Composite
from torchrl.envs import EnvBase, PettingZooWrapper

from hmarl import envs
from hmarl.envs.bridges.pettingzoo import MasksInInfos

GROUP = "agents"


class HmarlTaskClass(TaskClass):
    """A BenchMARL task over the registered environment named by the task (lower case)."""

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any) -> Callable[[], EnvBase]:
        module, kwargs = envs.get(self.name.lower()), dict(self.config)

        def make() -> EnvBase:
            env = MasksInInfos(module.parallel_env(**kwargs))
            return PettingZooWrapper(
                env,
                categorical_actions=True,
                return_state=True,
                seed=seed,
                device=device,
                group_map={GROUP: list(env.possible_agents)},
            )

        return make

    def supports_continuous_actions(self) -> bool:
        return False

    def supports_discrete_actions(self) -> bool:
        return True

    def has_render(self, env: EnvBase) -> bool:
        return True

    def max_steps(self, env: EnvBase) -> int:
        return int(env._env.unwrapped.core.max_cycles)

    def group_map(self, env: EnvBase) -> dict[str, list[str]]:
        return env.group_map

    def _group_keys(self, env: EnvBase, keep: str) -> Composite | None:
        spec = env.observation_spec.clone()
        group = spec[GROUP]
        for key in list(group.keys()):
            if key != keep:
                del group[key]
        if "state" in spec.keys():
            del spec["state"]
        return None if group.is_empty() else spec

    def observation_spec(self, env: EnvBase) -> Composite:
        return self._group_keys(env, "observation")

    def action_mask_spec(self, env: EnvBase) -> Composite | None:
        return self._group_keys(env, "action_mask")

    def info_spec(self, env: EnvBase) -> Composite | None:
        return None

    def state_spec(self, env: EnvBase) -> Composite | None:
        return Composite({"state": env.observation_spec["state"].clone()})

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec

    @staticmethod
    def env_name() -> str:
        return "hmarl"


class HmarlTask(Task):
    """The current hmarl environments as BenchMARL tasks."""

    BASKETBALL_DEFENSE_V1 = None
    TRASH_COLLECTION_V0 = None

    @staticmethod
    def associated_class() -> type[TaskClass]:
        return HmarlTaskClass

    def get_task(self, config: dict[str, Any] | None = None) -> TaskClass:
        """The task with the environment's keyword arguments ``config`` (its defaults
        when ``None``; there are no task YAML files)."""
        return HmarlTaskClass(name=self.name, config=dict(config or {}))
