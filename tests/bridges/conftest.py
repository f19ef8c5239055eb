"""Bridges whose libraries cannot share the ``dev`` virtual environment; ``.ci/run``
runs these files in virtual environments of their own (see ``pyproject.toml``)."""

from __future__ import annotations

import numpy as np
import pytest

from hmarl import envs

# Basketball pays only when a possession ends: the reward every bridge must carry.
SPARSE_ENV = "basketball_defense_v1"
SPARSE_KWARGS = {"n_players": 2, "shot_clock_s": 2.0}


class ReturnRecorder:
    """Wraps a PettingZoo parallel env's ``step`` to record each finished episode's
    return per agent, as our environment computed it."""

    def __init__(self, env) -> None:
        self.returns: list[dict[str, float]] = []
        self._running: dict[str, float] = {}
        step, reset = env.step, env.reset

        def recording_reset(*args, **kwargs):
            self._running = {}
            return reset(*args, **kwargs)

        def recording_step(actions):
            result = step(actions)
            rewards, terminations, truncations = result[1], result[2], result[3]
            for agent, reward in rewards.items():
                self._running[agent] = self._running.get(agent, 0.0) + reward
            if all(terminations[a] or truncations[a] for a in terminations):
                self.returns.append(dict(self._running))
                self._running = {}
            return result

        env.step, env.reset = recording_step, recording_reset


@pytest.fixture
def sparse_parallel_env():
    """A parallel env of the sparse task whose finished episodes are recorded."""
    env = envs.get(SPARSE_ENV).parallel_env(**SPARSE_KWARGS)
    return env, ReturnRecorder(env)


def parameters(module) -> np.ndarray:
    return np.concatenate([p.detach().cpu().numpy().ravel().copy() for p in module.parameters()])
