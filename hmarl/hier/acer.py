"""ACER: augmented concurrent experience replay for the high level.

The recorder watches the options of ``num_envs`` copies x ``n_agents`` agents and
turns them into high-level transitions ("rows"), each a joint record of one copy:

==================  ==========================  =======================================
field               shape                       meaning
==================  ==========================  =======================================
``obs``             (n_agents, obs_dim)         observations where the row starts
``state``           (state_dim,)                global state where the row starts
``goal``            (n_agents,)                 each agent's goal during the row
``reward``          (n_agents,)                 discounted extrinsic reward over the row
``duration``        ()                          number of steps the row spans (tau)
``next_obs``        (n_agents, obs_dim)         observations where the row ends
``next_state``      (state_dim,)                global state where the row ends
``next_goal_mask``  (n_agents, n_goals)         feasible goals where the row ends
``next_free``       (n_agents,)                 agent picks a new goal where the row ends
``terminated``      ()                          the episode terminated inside the row
``acting``          (n_agents,)                 agents whose value this row updates
``episode_return``  (n_agents,)                 with ``episode_returns``: discounted reward
                                                from the row's start to the episode's end
``next_goal``       (n_agents,)                 with ``n_step > 1``: the goals in force where
                                                the row ends (``goal`` otherwise)
==================  ==========================  =======================================

Rows also carry ``copy`` and ``start``, the copy and the recorder's step they start at
(bookkeeping; replay does not store them).

The SMDP target of agent ``i`` is ``reward_i + gamma**duration * V_i(next)`` with
``V_i(next) = max_g Q_i(next_obs_i, g)`` over ``next_goal_mask`` where ``next_free_i``,
and ``Q_i(next_obs_i, goal_i)`` (the option it continues) where not.

**Concurrent** (``concurrent=True``), the alignment rule: in each copy, the *decision
points* are the steps where at least one agent picks a goal. They cut the copy's time
line into segments; one joint row is recorded per segment, from one decision point to
the next. Every agent contributes the goal it pursued during the segment - a new one
if it decided at the segment's start, its ongoing one otherwise - and every agent's
duration is the segment's length, so all agents' targets refer to the same start and
end times and a mixer (hQmix) or communication (hCom) sees a time-consistent joint
transition. An agent whose option continues past the segment's end bootstraps from the
value of continuing it (``next_free`` False). All agents are ``acting``.

**Not concurrent** (``concurrent=False``): a row is recorded for each agent when its
own option ends, spanning that option alone, with ``acting`` set for that agent only;
the other agents' goals are those they held when the row starts. This is the
per-agent SMDP experience of independent learners; for joint learners it is the
time-inconsistent baseline that the concurrent rule replaces.

**Augmented** (``augmented=True``): a span of ``tau`` steps starting at ``t`` also
yields rows starting at every intermediate step ``t + i`` (``0 < i < tau``) with the
same goals and end, the reward collected from ``t + i`` on and duration ``tau - i``.

**Episode returns** (``episode_returns=True``): every row is held back until its
episode ends and then carries ``episode_return``, the reward collected from the row's
start to the episode's end, discounted per step with ``gamma``: the Monte Carlo return
of the behaviour that followed, for a regulariser that keeps values near the returns
actually seen (Pan et al. 2021). A truncated episode's return stops at the truncation.

**n-step** (``n_step > 1``, concurrent rows only): every row is held back until its
episode ends and then extended by the rows that followed it in its copy, segment by
segment, until it spans at least ``n_step`` steps or reaches the episode's end: its
reward becomes the discounted reward of all of them, its duration their total length,
and it bootstraps where the last of them ends (``next_*`` and ``terminated`` of that
segment, ``next_goal`` the goals held through it, which the agents that do not pick
anew continue). The goals after the row's own segment are those the agents actually
pursued, so the target is the n-step return of the behaviour (uncorrected, as in
n-step DQN): where decisions come at almost every step, as on basketball, a
one-segment row spans a step or two and a reward at the episode's end would otherwise
reach its start only through one bootstrap per step. (The replay buffer's own ``n_step``
counts steps of a stream of one-step transitions; a row spans a segment of varying
length, so the chaining happens here, where the segments are known.)

Rewards are discounted within a row with ``gamma``. A row ends where the episode ends;
``terminated`` rows do not bootstrap, while time-limit truncations do (from the final
observation, with every goal feasible, since the environment has already reset).
"""

from __future__ import annotations

import numpy as np

from hmarl.hier.options import OptionOutcome

FIELDS = (
    "obs",
    "state",
    "goal",
    "reward",
    "duration",
    "next_obs",
    "next_state",
    "next_goal_mask",
    "next_free",
    "terminated",
    "acting",
)
RETURN_FIELD = "episode_return"
NEXT_GOAL_FIELD = "next_goal"


def discounted_returns(rewards: np.ndarray, alive: np.ndarray, gamma: float) -> np.ndarray:
    """Time-major ``rewards`` (T, E, ...) of episodes that each start at step 0 and run while
    ``alive`` (T, E) holds -> the discounted return from each step to its episode's end
    (float64), 0 where not alive."""
    returns = np.zeros(rewards.shape, dtype=np.float64)
    following = np.zeros(rewards.shape[1:], dtype=np.float64)
    live = alive.reshape(alive.shape + (1,) * (rewards.ndim - alive.ndim))
    for step in range(len(rewards) - 1, -1, -1):
        following = np.where(live[step], rewards[step] + gamma * following, 0.0)
        returns[step] = following
    return returns


class ACERRecorder:
    """Builds high-level rows from a batched rollout, vectorised over copies and agents.

    Call :meth:`observe` with the observations the agents act on, after new goals are
    chosen, and :meth:`record` after the environment step; ``record`` returns the rows
    that ended at that step as a dict of arrays with a leading row axis.
    """

    def __init__(
        self,
        num_envs: int,
        n_agents: int,
        obs_dim: int,
        state_dim: int,
        n_goals: int,
        option_len: int,
        gamma: float,
        augmented: bool = True,
        concurrent: bool = True,
        episode_returns: bool = False,
        n_step: int = 1,
    ) -> None:
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if isinstance(n_step, bool) or not isinstance(n_step, (int, np.integer)) or n_step < 1:
            raise ValueError(f"n_step must be an integer >= 1, got {n_step!r}")
        if n_step > 1 and not concurrent:
            raise ValueError("n_step > 1 chains the joint rows of concurrent ACER; it needs concurrent=True")
        self.num_envs, self.n_agents, self.n_goals = num_envs, n_agents, n_goals
        self.augmented = augmented
        self.concurrent = concurrent
        self.episode_returns = episode_returns
        self.n_step = int(n_step)
        # Rows wait for their episode's end when they need what follows them.
        self.holds = episode_returns or self.n_step > 1
        self.gamma = float(gamma)
        # A row never spans more than one option, so option_len steps of history suffice.
        self.horizon = option_len
        self.obs = np.zeros((num_envs, option_len, n_agents, obs_dim), dtype=np.float32)
        self.state = np.zeros((num_envs, option_len, state_dim), dtype=np.float32)
        self.goal = np.zeros((num_envs, option_len, n_agents), dtype=np.int64)
        self.reward = np.zeros((num_envs, option_len, n_agents), dtype=np.float32)
        self.step = np.zeros(num_envs, dtype=np.int64)
        self.segment_start = np.zeros(num_envs, dtype=np.int64)
        self.option_start = np.zeros((num_envs, n_agents), dtype=np.int64)
        offsets = np.arange(option_len)
        # discount[i, k] = gamma ** (k - i) for k >= i: reward from step k seen from step i.
        exponent = offsets[None, :] - offsets[:, None]
        self.discount = np.where(exponent >= 0, float(gamma) ** np.maximum(exponent, 0), 0.0).astype(np.float32)
        # With episode_returns: every reward of the running episodes (grown as needed).
        # While holding: the step each episode started at, and the rows waiting for their
        # episode's end (one chunk per step, joined only when an episode ends).
        self.episode_rewards = np.zeros((num_envs, 256 if episode_returns else 0, n_agents), dtype=np.float64)
        self.episode_start = np.zeros(num_envs, dtype=np.int64)
        self.held: list[dict[str, np.ndarray]] = []

    def observe(self, obs: np.ndarray, state: np.ndarray, goals: np.ndarray, deciding: np.ndarray) -> None:
        """Store the step about to be taken: observations, state, the goals in force
        and which agents just picked theirs."""
        slot = self.step % self.horizon
        copies = np.arange(self.num_envs)
        self.obs[copies, slot] = obs
        self.state[copies, slot] = state
        self.goal[copies, slot] = goals
        self.option_start = np.where(deciding, self.step[:, None], self.option_start)
        self.segment_start = np.where(deciding.any(axis=1), self.step, self.segment_start)

    def record(
        self,
        rewards: np.ndarray,
        outcome: OptionOutcome,
        next_obs: np.ndarray,
        next_state: np.ndarray,
        next_goal_mask: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Account for the step just taken and return the rows that ended with it.

        ``next_obs``/``next_state`` are the observations the step led to - for copies
        that finished, the final ones (``infos["final_observation"]``), not the reset.
        """
        slot = self.step % self.horizon
        copies = np.arange(self.num_envs)
        self.reward[copies, slot] = rewards
        if self.episode_returns:
            self._keep_episode_rewards(rewards)
        self.step += 1
        done = terminated | truncated
        next_goal_mask = np.where(done[:, None, None], True, next_goal_mask)
        if self.concurrent:
            ended = outcome.ended.any(axis=1)
            env_index = np.flatnonzero(ended)
            start = self.segment_start[env_index]
            acting = np.ones((env_index.size, self.n_agents), dtype=bool)
        else:
            env_index, agent_index = np.nonzero(outcome.ended)
            start = self.option_start[env_index, agent_index]
            acting = np.zeros((env_index.size, self.n_agents), dtype=bool)
            acting[np.arange(env_index.size), agent_index] = True
        end = self.step[env_index]
        rows = self._rows(
            env_index,
            start,
            end,
            acting,
            outcome.ended,
            next_obs,
            next_state,
            next_goal_mask,
            terminated,
        )
        if not self.holds:
            return rows
        return self._release(rows, done)

    def _keep_episode_rewards(self, rewards: np.ndarray) -> None:
        at = self.step - self.episode_start
        if at.max() >= self.episode_rewards.shape[1]:
            grown = np.zeros_like(self.episode_rewards, shape=(self.num_envs, 2 * (at.max() + 1), self.n_agents))
            grown[:, : self.episode_rewards.shape[1]] = self.episode_rewards
            self.episode_rewards = grown
        self.episode_rewards[np.arange(self.num_envs), at] = rewards

    def _release(self, rows: dict[str, np.ndarray], done: np.ndarray) -> dict[str, np.ndarray]:
        """Hold ``rows`` back with the earlier ones; return those whose episode just ended
        (``done``), extended to ``n_step`` steps and with their ``episode_return`` as asked."""
        self.held.append(rows)
        finished = np.flatnonzero(done)
        if finished.size:
            held = {name: np.concatenate([chunk[name] for chunk in self.held]) for name in rows}
            ended = done[held["copy"]]
            self.held = [{name: value[~ended] for name, value in held.items()}]
            out = {name: value[ended] for name, value in held.items()}
        else:
            out = {name: value[:0] for name, value in rows.items()}
        if self.n_step > 1:
            out = self._extend(out)
        if self.episode_returns:
            self._attach_returns(out, finished)
        self.episode_start[finished] = self.step[finished]
        return out

    def _extend(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``rows`` of finished episodes, each extended by the segments that followed it
        until it spans ``n_step`` steps or its episode ends (see the module's docstring)."""
        copy, start, duration = rows["copy"], rows["start"], rows["duration"]
        if not copy.size:
            return {**rows, NEXT_GOAL_FIELD: rows["goal"]}
        span = int(self.step.max()) + 1
        key = copy * span + start
        order = np.argsort(key)  # (copy, start) is unique: one row starts at each step at most
        end_key = key + duration
        at = np.minimum(np.searchsorted(key[order], end_key), len(key) - 1)
        # The row that starts where each row ends; none at the episode's end (all of these
        # episodes end at the current step).
        successor = np.where((key[order][at] == end_key) & (start + duration < self.step[copy]), order[at], -1)
        reward = rows["reward"].astype(np.float64)
        total = duration.copy()
        last = np.arange(len(key))
        while True:
            following = successor[last]
            grow = np.flatnonzero((total < self.n_step) & (following >= 0))
            if not grow.size:
                break
            after = following[grow]
            reward[grow] += self.gamma ** total[grow, None] * rows["reward"][after]
            total[grow] += duration[after]
            last[grow] = after
        extended = dict(rows)
        for name in ("next_obs", "next_state", "next_goal_mask", "next_free", "terminated"):
            extended[name] = rows[name][last]
        extended[NEXT_GOAL_FIELD] = rows["goal"][last]
        extended["reward"] = reward.astype(np.float32)
        extended["duration"] = total
        return extended

    def _attach_returns(self, out: dict[str, np.ndarray], finished: np.ndarray) -> None:
        """Add ``episode_return`` to ``out``, the rows of the ``finished`` copies' episodes."""
        if not finished.size:
            out[RETURN_FIELD] = np.zeros((0, self.n_agents), dtype=np.float32)
            return
        lengths = self.step[finished] - self.episode_start[finished]
        steps = np.arange(int(lengths.max()))
        returns = discounted_returns(
            self.episode_rewards[finished, : len(steps)].swapaxes(0, 1), steps[:, None] < lengths, self.gamma
        )
        position = np.zeros(self.num_envs, dtype=np.int64)
        position[finished] = np.arange(finished.size)
        copy = out["copy"]
        out[RETURN_FIELD] = returns[out["start"] - self.episode_start[copy], position[copy]].astype(np.float32)
        self.episode_rewards[finished] = 0.0

    def _rows(
        self,
        env_index: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        acting: np.ndarray,
        ended: np.ndarray,
        next_obs: np.ndarray,
        next_state: np.ndarray,
        next_goal_mask: np.ndarray,
        terminated: np.ndarray,
    ) -> dict[str, np.ndarray]:
        span = end - start
        offsets = np.arange(self.horizon)
        history = (start[:, None] + offsets) % self.horizon
        inside = offsets[None, :] < span[:, None]
        rewards = np.where(inside[..., None], self.reward[env_index[:, None], history], 0.0)
        # returns[r, i] = discounted reward from step start + i to the end of span r.
        returns = np.einsum("ik,rka->ria", self.discount, rewards)
        if self.augmented:
            row, offset = np.nonzero(inside)
        else:
            row, offset = np.arange(env_index.size), np.zeros(env_index.size, dtype=np.int64)
        copy = env_index[row]
        at = history[row, offset]
        return {
            "obs": self.obs[copy, at],
            "state": self.state[copy, at],
            "goal": self.goal[copy, at],
            "reward": returns[row, offset].astype(np.float32),
            "duration": (span[row] - offset).astype(np.int64),
            "next_obs": next_obs[copy],
            "next_state": next_state[copy],
            "next_goal_mask": next_goal_mask[copy],
            "next_free": ended[copy],
            "terminated": terminated[copy],
            "acting": acting[row],
            "copy": copy,
            "start": start[row] + offset,
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        names = ("obs", "state", "goal", "reward", "step", "segment_start", "option_start")
        state = {name: getattr(self, name).copy() for name in names}
        if self.holds:
            held = [{name: np.concatenate([c[name] for c in self.held]) for name in self.held[0]}] if self.held else []
            state.update(episode_start=self.episode_start.copy(), held=held)
        if self.episode_returns:
            state.update(episode_rewards=self.episode_rewards.copy())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name, value in state.items():
            if name == "held":
                self.held = [{key: array.copy() for key, array in chunk.items()} for chunk in value]
            elif name == "episode_rewards":  # grows with the longest episode, so it is replaced
                self.episode_rewards = value.copy()
            else:
                getattr(self, name)[...] = value
