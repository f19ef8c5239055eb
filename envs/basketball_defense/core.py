"""The batched core of basketball defense: ``n_players`` defenders (the agents) against
a scripted offense on a half court, one possession per episode.

All rules and constants are in :mod:`rules`; the offense's behaviour is in
:mod:`offense`. Positions are metres, one step is 0.1 s.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hmarl.envs._base import MAX_CYCLES, BatchedCore, CoreState, check_choice, check_int, copies_axis
from hmarl.envs.basketball_defense import offense, rules

#: What each defender observes: ``"full"`` (everyone) or ``"matched"`` (himself, the
#: ball and his matched opponent, the offensive player of his own index).
VIEWS = ("full", "matched")
#: Ball phases: held by ``holder`` (dribbling or at the check), a pass in flight to
#: ``holder``, or ``holder`` in his shooting motion.
HELD, PASS, SHOOTING = 0, 1, 2

_ANGLES = np.arange(8) * np.pi / 4
_DIRECTIONS = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)
#: Actions: noop, run in 8 directions, slide in 8 directions, steal, block. Angles
#: are degrees counter-clockwise from +x; +y points from the baseline to half court.
ACTION_NAMES = ("noop", *(f"run_{45 * k}" for k in range(8)), *(f"slide_{45 * k}" for k in range(8)), "steal", "block")
NOOP, STEAL, BLOCK = 0, 17, 18
RUN_ACTIONS = np.arange(1, 9)
SLIDE_ACTIONS = np.arange(9, 17)
#: Displacement of each action over one step, coordinate first (2, n_actions).
ACTION_DISPLACEMENT = (
    np.concatenate([np.zeros((1, 2)), _DIRECTIONS * rules.RUN_SPEED, _DIRECTIONS * rules.SLIDE_SPEED, np.zeros((2, 2))]).T
    * rules.DT
)
ACTION_STANCE = np.array([rules.STANCE_STILL] + [rules.STANCE_RUN] * 8 + [rules.STANCE_SLIDE] * 8 + [rules.STANCE_STILL] * 2)
_WANTED_SQ = ACTION_DISPLACEMENT[0] * ACTION_DISPLACEMENT[0] + ACTION_DISPLACEMENT[1] * ACTION_DISPLACEMENT[1]
#: A move is blocked by the edge when its lost squared displacement exceeds this; actions
#: that do not move are never blocked.
_EDGE_BLOCKED_SQ = np.where(_WANTED_SQ > 0.0, rules.EDGE_BLOCK_FRACTION**2 * _WANTED_SQ, np.inf)

#: Reward of each outcome before the points of a made shot are subtracted: +1 for a stop.
_STOP_REWARD = np.zeros(len(rules.OUTCOMES))
_STOP_REWARD[[rules.MISS, rules.BLOCK, rules.STEAL, rules.SHOT_CLOCK]] = 1.0
_SHOT_OUTCOMES = np.zeros(len(rules.OUTCOMES), dtype=bool)
_SHOT_OUTCOMES[[rules.MADE_2, rules.MADE_3, rules.MISS, rules.BLOCK]] = True
#: The outcome of a made shot, indexed by its points.
_MADE_OUTCOME = np.array([rules.NONE, rules.NONE, rules.MADE_2, rules.MADE_3])
_COURT_LOW = np.array([-rules.HALF_WIDTH, 0.0])[:, None, None]
_COURT_HIGH = np.array([rules.HALF_WIDTH, rules.COURT_LENGTH])[:, None, None]
_BASKET2 = rules.BASKET[:, None]
_BASKET3 = rules.BASKET[:, None, None]
_SCALED_BASKET3 = _BASKET3 / rules.POS_SCALE
_PHASES = np.array([HELD, PASS, SHOOTING])[:, None]
_RECOVERY_SCALE = float(max(rules.BLOCK_RECOVERY, rules.STEAL_RECOVERY))


def _clip_to_court(positions: np.ndarray) -> np.ndarray:
    """``positions`` (2, ...) clipped to the court, in place (np.clip's wrapper costs more
    than the two ufuncs at the small sizes of one copy)."""
    np.maximum(positions, _COURT_LOW, out=positions)
    return np.minimum(positions, _COURT_HIGH, out=positions)


@dataclasses.dataclass
class BasketballState(CoreState):
    """Per copy, the copies axis last so that every operation runs over long contiguous
    rows: positions and velocities (2, n, E: coordinate, player, copy) of both teams,
    the offense's spots and cut targets; per defender (n, E) his stance, steps of
    recovery left and per offensive player steps of cut left; the ball's phase, holder
    and timers, a pass's origin, and the outcome and points of the possession."""

    off_pos: np.ndarray = copies_axis(-1)
    off_vel: np.ndarray = copies_axis(-1)
    def_pos: np.ndarray = copies_axis(-1)
    def_vel: np.ndarray = copies_axis(-1)
    spots: np.ndarray = copies_axis(-1)
    cut_targets: np.ndarray = copies_axis(-1)
    stance: np.ndarray = copies_axis(-1)
    recovery: np.ndarray = copies_axis(-1)
    cut_left: np.ndarray = copies_axis(-1)
    phase: np.ndarray = copies_axis(-1)
    holder: np.ndarray = copies_axis(-1)
    hold_steps: np.ndarray = copies_axis(-1)
    shot_step: np.ndarray = copies_axis(-1)
    pass_origin: np.ndarray = copies_axis(-1)
    pass_left: np.ndarray = copies_axis(-1)
    pass_total: np.ndarray = copies_axis(-1)
    outcome: np.ndarray = copies_axis(-1)
    points: np.ndarray = copies_axis(-1)


class BasketballDefenseCore(BatchedCore):
    """Half-court basketball defense: the agents are the defenders of a possession.

    The rules, spaces, rewards and options are documented in the module docstring of
    :mod:`hmarl.envs.basketball_defense_v1` (rendered as the environment's docs page).

    Arguments
    ---------
    ``n_players``
        players per side, 1-5 (default 3).
    ``skill``
        the scripted offense's level: ``"easy"``, ``"normal"`` (default) or ``"hard"``
        (shooting, speed and ball security multipliers).
    ``shot_clock_s``
        the shot clock in seconds, 1-60 (default 20).
    ``max_cycles``
        the truncation limit in steps; by default the shot clock plus the longest
        shooting motion, so a possession always ends on its own before it.
    ``view``
        ``"full"`` (default: each defender observes all players) or ``"matched"``
        (himself, the ball and only his matched opponent, the offensive player of his
        own index, as a defender who keeps his eyes on his man); ``state()`` stays
        complete.
    """

    name = "basketball_defense_v1"
    #: Version 0 masked every move during the check although moves take effect there.
    moves_masked_in_check = False
    agent_prefix = "defender"
    state_type = BasketballState
    state: BasketballState
    # State fields read as attributes (properties made by BatchedCore.__init_subclass__).
    off_pos: np.ndarray
    def_pos: np.ndarray
    spots: np.ndarray
    cut_targets: np.ndarray
    recovery: np.ndarray
    cut_left: np.ndarray
    outcome: np.ndarray
    phase: np.ndarray
    holder: np.ndarray
    hold_steps: np.ndarray
    shot_step: np.ndarray
    pass_origin: np.ndarray
    pass_left: np.ndarray
    pass_total: np.ndarray
    points: np.ndarray
    render_fps = rules.STEPS_PER_SECOND
    episode_stat_names = ("outcome", "points_allowed", "shot", "miss", "block", "steal")

    def __init__(
        self,
        num_envs: int = 1,
        n_players: int = 3,
        skill: str = "normal",
        shot_clock_s: float = rules.DEFAULT_SHOT_CLOCK_S,
        max_cycles: int | None = None,
        view: str = "full",
    ) -> None:
        super().__init__(num_envs)
        n = check_int("n_players", n_players, 1, 5)
        check_choice("skill", skill, tuple(rules.SKILLS))
        check_choice("view", view, VIEWS)
        if isinstance(shot_clock_s, bool) or not isinstance(shot_clock_s, (int, float, np.number)):
            raise TypeError(f"shot_clock_s must be a number of seconds, got {shot_clock_s!r}")
        if not 1.0 <= shot_clock_s <= 60.0:
            raise ValueError(f"shot_clock_s={shot_clock_s} is out of range; it must be in [1, 60]")
        self.n_players = n
        self.skill_name = skill
        self.skill = rules.SKILLS[skill]
        self.clock_steps = int(np.rint(shot_clock_s * rules.STEPS_PER_SECOND))
        default_cycles = self.clock_steps + rules.SHOT_MOTION_STEPS
        self.max_cycles = default_cycles if max_cycles is None else check_int("max_cycles", max_cycles, 1, MAX_CYCLES)
        self.n_agents = n
        self.n_actions = len(ACTION_NAMES)
        self.view = view
        full_dim = 11 + 10 * n
        # The matched view keeps, of the full observation, the defender's own and the
        # ball's features (the first 15), his matched opponent's block and his index.
        self._matched_columns = np.array(
            [[*range(15), *range(15 + 5 * i, 20 + 5 * i), *range(full_dim - n, full_dim)] for i in range(n)]
        )[None]
        self.obs_dim = full_dim if view == "full" else self._matched_columns.shape[-1]
        self.state_dim = 8 + 10 * n
        self.goal_names = [f"guard_{k}" for k in range(n)] + ["double_team", "protect_rim", "steal", "block"]
        self.goal_dim = len(self.goal_names) + 2
        self._goal_primitive = np.full(len(self.goal_names), -1, dtype=np.int64)
        self._goal_primitive[-2:] = [STEAL, BLOCK]
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.int64).reshape(n, n - 1)
        self._agent_ids = np.eye(n, dtype=np.float32)

        self.state = self.fresh_state(self.num_envs)
        # Per-step caches of what the observations, masks and states share; any change
        # of the state clears them.
        self._reach: tuple[np.ndarray, ...] | None = None
        self._ball: tuple[np.ndarray, np.ndarray] | None = None
        self._columns = np.arange(self.num_envs)
        self._player_ids = np.arange(n)[:, None]

    # --- rules -------------------------------------------------------------------------
    def _state_changed(self) -> None:
        self._reach = self._ball = None

    def fresh_state(self, count: int) -> BasketballState:
        n = self.n_players
        order = np.argsort(self.rng.random((n, count)), axis=0)
        jitter = self.rng.uniform(-rules.SPOT_JITTER, rules.SPOT_JITTER, (2, n, count))
        spots = _clip_to_court(rules.SPOTS.T[:, order] + jitter)
        toward_basket, _ = offense.unit(_BASKET3 - spots)
        gap = rules.START_GAP + self.rng.uniform(-rules.START_JITTER, rules.START_JITTER, (n, count))
        players = np.zeros((n, count), dtype=np.int64)
        copies = np.zeros(count, dtype=np.int64)
        return BasketballState(
            t=copies.copy(),
            off_pos=spots.copy(),
            off_vel=np.zeros((2, n, count)),
            def_pos=_clip_to_court(spots + gap * toward_basket),
            def_vel=np.zeros((2, n, count)),
            spots=spots,
            cut_targets=offense.cut_targets(spots),
            stance=np.full((n, count), rules.STANCE_STILL, dtype=np.int64),
            recovery=players.copy(),
            cut_left=players.copy(),
            phase=np.full(count, HELD, dtype=np.int64),
            holder=np.argmin(order, axis=0).astype(np.int64),
            hold_steps=copies.copy(),
            shot_step=copies.copy(),
            pass_origin=np.zeros((2, count)),
            pass_left=copies.copy(),
            pass_total=np.ones(count, dtype=np.int64),
            outcome=np.full(count, rules.NONE, dtype=np.int64),
            points=copies.copy(),
        )

    def _columns_of(self, idx: np.ndarray | slice) -> np.ndarray:
        """``arange`` over the copies ``idx``, for picking one player per copy."""
        return self._columns if isinstance(idx, slice) else np.arange(len(idx))

    def _ball_geometry(self, idx: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Where the ball's holder (the shooter, or the receiver of a pass) and the ball
        are (2, E); the ball is with its holder or on its way to the receiver."""
        if isinstance(idx, slice) and self._ball is not None:
            return self._ball
        holder = offense.flat_index(self.holder[idx], self._columns_of(idx))
        holder_pos = offense.pick(self.off_pos[..., idx], holder)
        passing = self.phase[idx] == PASS
        if passing.any():
            fraction = self.pass_left[idx] / self.pass_total[idx]
            in_flight = holder_pos + fraction * (self.pass_origin[:, idx] - holder_pos)
            ball = (holder_pos, np.where(passing, in_flight, holder_pos))
        else:
            ball = (holder_pos, holder_pos)
        if isinstance(idx, slice):
            self._ball = ball
        return ball

    def _ball_position(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Where the ball is (2, E)."""
        return self._ball_geometry(idx)[1]

    def _in_reach(self, idx: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, ...]:
        """Which defenders (n, E) may steal or block, and their distances to the ball's
        holder (the shooter, or the receiver of a pass) and to the ball itself."""
        if isinstance(idx, slice) and self._reach is not None:
            return self._reach
        def_pos = self.def_pos[..., idx]
        phase = self.phase[idx]
        holder_pos, ball_pos = self._ball_geometry(idx)
        to_holder = offense.norm(def_pos - holder_pos[:, None, :])
        # With no pass in flight the ball is the holder's position itself (the same array).
        to_ball = to_holder if ball_pos is holder_pos else offense.norm(def_pos - ball_pos[:, None, :])
        ready = (self.recovery[:, idx] == 0) & (self.t[idx] >= rules.CHECK_STEPS)
        can_steal = ready & (
            ((phase == HELD) & (to_holder <= rules.STEAL_REACH)) | ((phase == PASS) & (to_ball <= rules.INTERCEPT_REACH))
        )
        can_block = ready & (phase == SHOOTING) & (to_holder <= rules.BLOCK_REACH)
        reach = (ready, can_steal, can_block, to_holder, to_ball)
        if isinstance(idx, slice):
            self._reach = reach
        return reach

    def step_rules(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.n_players
        uniform = self.rng.random((2 * n + 1, self.num_envs))
        u_defense, u_cut, u_offense = uniform[:n], uniform[n : 2 * n], uniform[2 * n]
        live = self.t >= rules.CHECK_STEPS

        # Defenders act on the situation they observed: reach is judged before moving.
        _, can_steal, can_block, to_holder, to_ball = self._in_reach()
        holder_pos, _ = self._ball_geometry()
        self._reach = self._ball = None
        actions = actions.T
        recovering = self.recovery > 0
        invalid = recovering & (actions != NOOP)
        actions = np.where(recovering, NOOP, actions)
        tries_steal = actions == STEAL
        tries_block = actions == BLOCK
        invalid |= (tries_steal & ~can_steal) | (tries_block & ~can_block)
        tries_steal &= can_steal
        tries_block &= can_block
        self.recovery = np.maximum(self.recovery - 1, 0)
        attempts = (tries_steal | tries_block).any(axis=0)
        if attempts.any():
            self._defensive_plays(
                np.flatnonzero(attempts), tries_steal, tries_block, holder_pos, to_holder, to_ball, u_defense
            )

        wanted = ACTION_DISPLACEMENT[:, actions]
        moved = _clip_to_court(self.def_pos + wanted)
        shift = moved - self.def_pos
        lost = wanted - shift
        invalid |= lost[0] * lost[0] + lost[1] * lost[1] > _EDGE_BLOCKED_SQ[actions]
        self.def_pos = moved
        self.def_vel = shift / rules.DT
        self.stance = np.where(self.recovery > 0, rules.STANCE_RECOVERING, ACTION_STANCE[actions])

        self._offense_step(live, u_offense, u_cut)

        rewards = np.empty((self.num_envs, n), dtype=np.float32)
        np.subtract(_STOP_REWARD[self.outcome][:, None], self.points[:, None], out=rewards)
        return rewards, self.outcome != rules.NONE, np.ascontiguousarray(invalid.T)

    def _defensive_plays(
        self,
        copies: np.ndarray,
        tries_steal: np.ndarray,
        tries_block: np.ndarray,
        holder_pos: np.ndarray,
        to_holder: np.ndarray,
        to_ball: np.ndarray,
        uniform: np.ndarray,
    ) -> None:
        """Resolve the steal and block attempts (n, E) of defenders in reach of the ball's
        holder at ``holder_pos``, judged only in the ``copies`` where any is tried."""
        tries_steal, tries_block = tries_steal[:, copies], tries_block[:, copies]
        to_holder, to_ball, holder_pos = to_holder[:, copies], to_ball[:, copies], holder_pos[:, copies]
        catching = np.where(self.hold_steps[copies] < rules.CATCH_STEPS, rules.CATCH_BONUS, 1.0)
        p_steal = np.where(
            self.phase[copies] == HELD,
            rules.STEAL_MAX * rules.closeness(to_holder, rules.STEAL_REACH, rules.STEAL_FULL) * catching,
            rules.INTERCEPT_MAX * rules.closeness(to_ball, rules.INTERCEPT_REACH, rules.INTERCEPT_FULL),
        )
        to_basket, _ = offense.unit(_BASKET2 - holder_pos)
        rel = self.def_pos[..., copies] - holder_pos[:, None, :]
        cos_front = (rel[0] * to_basket[0] + rel[1] * to_basket[1]) / np.maximum(to_holder, 1e-9)
        timing = rules.BLOCK_TIMING[np.minimum(self.shot_step[copies], rules.SHOT_MOTION_STEPS - 1)]
        p_block = (
            rules.BLOCK_MAX
            * rules.closeness(to_holder, rules.BLOCK_REACH, rules.BLOCK_FULL)
            * timing
            * rules.front_factor(cos_front)
        )
        p_success = np.where(tries_steal, p_steal, np.where(tries_block, p_block, 0.0))
        success = uniform[:, copies] < p_success * self.skill.turnover
        self.outcome[copies[(success & tries_steal).any(axis=0)]] = rules.STEAL
        self.outcome[copies[(success & tries_block).any(axis=0)]] = rules.BLOCK
        recovery = self.recovery[:, copies]
        recovery[tries_steal & ~success] = rules.STEAL_RECOVERY
        recovery[tries_block & ~success] = rules.BLOCK_RECOVERY
        self.recovery[:, copies] = recovery

    def _offense_step(self, live: np.ndarray, u_offense: np.ndarray, u_cut: np.ndarray) -> None:
        """Advance the ball and the scripted offense by one step in every copy still playing."""
        playing = self.outcome == rules.NONE
        clock_left_s = (self.clock_steps - self.t - 1) / rules.STEPS_PER_SECOND

        shooting = playing & (self.phase == SHOOTING)
        self.shot_step += shooting
        released = shooting & (self.shot_step >= rules.SHOT_MOTION_STEPS)
        passing = playing & (self.phase == PASS)
        self.pass_left -= passing
        caught = passing & (self.pass_left <= 0)
        self.phase[caught] = HELD
        self.hold_steps[caught] = 0
        dribbling = playing & live & (self.phase == HELD)
        # During the check, a pass's flight and a shooting motion nobody handles the ball.
        if (released | dribbling).any():
            deciding = dribbling & ~caught
            handler_velocity = self._handler_step(released, deciding, live, clock_left_s, u_offense)
        else:
            handler_velocity = np.zeros((2, self.num_envs))
        self.hold_steps += self.phase == HELD

        self.cut_left = np.maximum(self.cut_left - 1, 0)
        is_handler = (self.holder == self._player_ids) & (self.phase != PASS)
        starts_cut = live & ~is_handler & (self.cut_left == 0) & (u_cut < rules.CUT_HAZARD)
        self.cut_left[starts_cut] = rules.CUT_STEPS
        targets = np.where(self.cut_left > 0, self.cut_targets, self.spots)
        velocity = offense.run_to(self.off_pos, targets, rules.OFF_BALL_SPEED * self.skill.speed)
        velocity = np.where(is_handler, handler_velocity[:, None, :], velocity)
        velocity *= playing
        moved = _clip_to_court(self.off_pos + velocity * rules.DT)
        self.off_vel = (moved - self.off_pos) / rules.DT
        self.off_pos = moved

        violation = (self.outcome == rules.NONE) & (self.phase != SHOOTING) & (clock_left_s <= 0.0)
        self.outcome[violation] = rules.SHOT_CLOCK

    def _handler_step(
        self,
        released: np.ndarray,
        deciding: np.ndarray,
        live: np.ndarray,
        clock_left_s: np.ndarray,
        uniform: np.ndarray,
    ) -> np.ndarray:
        """Score the ``released`` shots, let the ``deciding`` handlers shoot or pass, and
        return the velocity (2, E) of every handler: his drive while he dribbles, else 0."""
        columns = self._columns
        skill = self.skill
        # Every defender's offset from every offensive player (2, n_def, n_off, E) and its
        # length, computed once: the shot, the pass and the drive all judge from them.
        offsets = self.def_pos[:, :, None, :] - self.off_pos[:, None, :, :]
        gaps = offense.norm(offsets)
        holder = offense.flat_index(self.holder, columns)
        handler = offense.pick(self.off_pos, holder)
        handler_offsets = offense.pick(offsets, holder)
        handler_gaps = offense.pick(gaps, holder)

        # The holder's shot is judged once: released shots go in with this probability,
        # and the handler weighs it when he decides whether to shoot.
        p_make, points = offense.shot_expectation(handler, handler_offsets, handler_gaps, self.stance, skill, columns)
        if released.any():
            made = released & (uniform < p_make)
            self.points[made] = points[made]
            self.outcome = np.where(released, np.where(made, _MADE_OUTCOME[points], rules.MISS), self.outcome)

        shoot, passes, receiver = offense.handler_choice(
            gaps.min(axis=0), holder, self.hold_steps, p_make * points, clock_left_s, uniform, skill
        )
        shoot &= deciding
        passes &= deciding
        self.phase[shoot] = SHOOTING
        self.shot_step[shoot] = 0
        if passes.any():
            passers = np.flatnonzero(passes)
            origin = handler[:, passers]
            length = offense.norm(self.off_pos[:, receiver[passers], passers] - origin)
            flight = np.maximum(np.ceil(length / (rules.PASS_SPEED * rules.DT)), 1).astype(np.int64)
            self.pass_origin[:, passers] = origin
            self.pass_total[passers] = flight
            self.pass_left[passers] = flight
            self.holder[passers] = receiver[passers]
            self.phase[passers] = PASS

        # Judged from the handler before any pass: a handler who just passed does not drive.
        drive = offense.drive_velocity(handler, handler_offsets, handler_gaps, self.stance, skill, columns)
        return np.where(live & (self.phase == HELD), drive, 0.0)

    # --- views -------------------------------------------------------------------------
    def _ball_features(self, idx: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
        """Ball phase one-hot, ball position, motion progress, shot clock and live flag
        (8, E), and who holds the ball (n, E)."""
        phase = self.phase[idx]
        t = self.t[idx]
        features = np.empty((8, phase.shape[0]))
        features[0:3] = phase == _PHASES
        np.divide(self._ball_position(idx), rules.POS_SCALE, out=features[3:5])
        np.divide(self.shot_step[idx], rules.SHOT_MOTION_STEPS, out=features[5])
        np.divide(np.maximum(self.clock_steps - t, 0), self.clock_steps, out=features[6])
        features[7] = t >= rules.CHECK_STEPS
        has_ball = (self.holder[idx] == self._player_ids) & (phase != PASS)
        return features, has_ball

    def observations(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        """The full view, per defender: own position (2), velocity (2) and recovery (1); the basket
        relative to self (2); ball phase one-hot (held, pass, shooting) (3), ball
        relative to self (2), shooting-motion progress (1), shot clock left (1) and
        live-ball flag (1); for every offensive player his position relative to self
        (2), velocity (2) and has-ball (1); for every other defender (in index order)
        relative position (2) and velocity (2); own index one-hot (n). Positions are
        divided by ``POS_SCALE``, velocities by ``VEL_SCALE``. The matched view keeps the
        features up to the live-ball flag, the block of his matched opponent (offensive
        player ``i`` for defender ``i``) and the index."""
        n = self.n_players
        ball, has_ball = self._ball_features(idx)
        count = ball.shape[1]
        full = self.view == "full"
        obs = out if full and out is not None else np.empty((count, n, 11 + 10 * n), dtype=np.float32)
        # Filled through a (feature, defender, copy) view, the layout of the state arrays,
        # so that each feature group is one broadcast ufunc writing straight into obs.
        view = obs.transpose(2, 1, 0)
        def_pos = np.divide(self.def_pos[..., idx], rules.POS_SCALE)
        view[0:2] = def_pos
        np.divide(self.def_vel[..., idx], rules.VEL_SCALE, out=view[2:4])
        np.divide(self.recovery[:, idx], _RECOVERY_SCALE, out=view[4])
        np.subtract(_SCALED_BASKET3, def_pos, out=view[5:7])
        view[7:10] = ball[0:3, None]
        np.subtract(ball[3:5, None], def_pos, out=view[10:12])
        view[12:15] = ball[5:8, None]
        # Offensive player k's feature f for defender i sits at view[15 + 5 k + f, i].
        offense_block = view[15 : 15 + 5 * n].reshape(n, 5, n, count).transpose(1, 0, 2, 3)
        off_pos = np.divide(self.off_pos[..., idx], rules.POS_SCALE)
        np.subtract(off_pos[:, :, None], def_pos[:, None], out=offense_block[0:2])
        np.divide(self.off_vel[..., idx][:, :, None], rules.VEL_SCALE, out=offense_block[2:4])
        offense_block[4] = has_ball[:, None]
        start = 15 + 5 * n
        mates_block = view[start : start + 4 * (n - 1)].reshape(n - 1, 4, n, count).transpose(1, 0, 2, 3)
        mates = self._others.T
        np.subtract(def_pos[:, mates], def_pos[:, None], out=mates_block[0:2])
        np.divide(self.def_vel[..., idx][:, mates], rules.VEL_SCALE, out=mates_block[2:4])
        view[start + 4 * (n - 1) :] = self._agent_ids.T[:, :, None]
        if full:
            return obs
        matched = np.take_along_axis(obs, self._matched_columns, axis=2)
        if out is None:
            return matched
        out[...] = matched
        return out

    def action_masks(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        ready, can_steal, can_block, _, _ = self._in_reach(idx)
        mask = np.empty((ready.shape[1], self.n_players, self.n_actions), dtype=np.int8) if out is None else out
        view = mask.transpose(2, 1, 0)
        view[NOOP] = 1
        # Defenders take position during the check: only recovery stops their moves.
        view[NOOP + 1 : STEAL] = ready if self.moves_masked_in_check else self.recovery[:, idx] == 0
        view[STEAL] = can_steal
        view[BLOCK] = can_block
        return mask

    def states(self, idx: np.ndarray | slice = slice(None), out: np.ndarray | None = None) -> np.ndarray:
        """Every offensive player's position (2), velocity (2) and has-ball (1); every
        defender's position (2), velocity (2) and recovery (1); the ball features (8),
        laid out as in the observation."""
        n = self.n_players
        ball, has_ball = self._ball_features(idx)
        count = ball.shape[1]
        state = np.empty((count, self.state_dim), dtype=np.float32) if out is None else out
        view = state.T
        offense_block = view[: 5 * n].reshape(n, 5, count).transpose(1, 0, 2)
        np.divide(self.off_pos[..., idx], rules.POS_SCALE, out=offense_block[0:2])
        np.divide(self.off_vel[..., idx], rules.VEL_SCALE, out=offense_block[2:4])
        offense_block[4] = has_ball
        defense_block = view[5 * n : 10 * n].reshape(n, 5, count).transpose(1, 0, 2)
        np.divide(self.def_pos[..., idx], rules.POS_SCALE, out=defense_block[0:2])
        np.divide(self.def_vel[..., idx], rules.VEL_SCALE, out=defense_block[2:4])
        np.divide(self.recovery[:, idx], _RECOVERY_SCALE, out=defense_block[4])
        view[10 * n :] = ball
        return state

    def episode_stats(self, idx: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        outcome = self.outcome[idx]
        return {
            "outcome": outcome.copy(),
            "points_allowed": self.points[idx].copy(),
            "shot": _SHOT_OUTCOMES[outcome].astype(np.int64),
            "miss": (outcome == rules.MISS).astype(np.int64),
            "block": (outcome == rules.BLOCK).astype(np.int64),
            "steal": (outcome == rules.STEAL).astype(np.int64),
        }

    def observation_bounds(self) -> tuple[float, float]:
        return -1.0, 1.0

    def state_bounds(self) -> tuple[float, float]:
        return -1.0, 1.0

    # --- options -----------------------------------------------------------------------
    def _guard_spots(self) -> np.ndarray:
        """Where ``guard_k`` sends a defender (2, n, E): ``GUARD_GAP`` metres from
        offensive player k towards the basket."""
        toward_basket, _ = offense.unit(_BASKET3 - self.off_pos)
        return self.off_pos + rules.GUARD_GAP * toward_basket

    def _goal_targets(self) -> np.ndarray:
        """Where each goal sends each defender (2, n_goals, E), in metres."""
        n = self.n_players
        targets = np.empty((2, n + 4, self.num_envs))
        targets[:, :n] = self._guard_spots()
        targets[:, n] = offense.pick(self.off_pos, offense.flat_index(self.holder, self._columns))
        targets[:, n + 1] = rules.RIM_PROTECT_SPOT[:, None]
        targets[:, n + 2] = self._ball_position()
        targets[:, n + 3] = targets[:, n]
        return targets

    def goal_mask(self) -> np.ndarray:
        """Feasible goals (num_envs, n, n_goals): every ``guard_k`` and ``protect_rim``;
        ``double_team`` unless a pass is in flight; ``steal`` within reach of the ball
        (``action_masks``' steal); ``block`` within reach of a shooter at the release
        only, the last step of his shooting motion: the best-timed try
        (``BLOCK_TIMING``), as a defender jumps when the ball leaves the hands. The
        ``block`` primitive itself stays available through the whole motion."""
        n = self.n_players
        _, can_steal, can_block, _, _ = self._in_reach()
        mask = np.ones((self.num_envs, n, n + 4), dtype=bool)
        mask[:, :, n] = (self.phase != PASS)[:, None]
        mask[:, :, n + 2] = can_steal.T
        mask[:, :, n + 3] = (can_block & (self.shot_step == rules.SHOT_MOTION_STEPS - 1)).T
        return mask

    def goal_reached(self, goals: np.ndarray) -> np.ndarray:
        """``guard_k``: within ``GUARD_RANGE`` of the guard spot, ``GUARD_GAP`` metres
        from offensive player k towards the basket; ``double_team``: within
        ``DOUBLE_TEAM_RANGE`` of the ball handler while he holds the ball;
        ``protect_rim``: within ``RIM_PROTECT_RANGE`` of ``RIM_PROTECT_SPOT``; the
        one-step goals ``steal`` and ``block`` end after their action, so they always
        count as reached."""
        n = self.n_players
        columns = np.arange(self.num_envs)
        _, distance = offense.unit(self.def_pos[:, :, None, :] - self.off_pos[:, None, :, :])
        _, to_spot = offense.unit(self.def_pos[:, :, None, :] - self._guard_spots()[:, None, :, :])
        reached = np.ones((n, n + 4, self.num_envs), dtype=bool)
        reached[:, :n] = to_spot <= rules.GUARD_RANGE
        to_holder = distance[:, self.holder, columns]
        reached[:, n] = (to_holder <= rules.DOUBLE_TEAM_RANGE) & (self.phase != PASS)
        _, to_rim = offense.unit(self.def_pos - rules.RIM_PROTECT_SPOT[:, None, None])
        reached[:, n + 1] = to_rim <= rules.RIM_PROTECT_RANGE
        return reached[np.arange(n)[None, :], goals, columns[:, None]]

    def goal_encoding(self, goals: np.ndarray) -> np.ndarray:
        """One-hot goal (n_goals) and the goal's target relative to the defender (2,
        divided by ``POS_SCALE``)."""
        n_goals = len(self.goal_names)
        columns = np.arange(self.num_envs)[:, None]
        encoding = np.zeros((self.num_envs, self.n_players, self.goal_dim), dtype=np.float32)
        np.put_along_axis(encoding, goals[..., None], 1.0, axis=2)
        target = self._goal_targets()[:, goals, columns]
        encoding[:, :, n_goals:] = ((target - self.def_pos.transpose(0, 2, 1)) / rules.POS_SCALE).transpose(1, 2, 0)
        return encoding

    def goal_primitive(self, goals: np.ndarray) -> np.ndarray:
        return self._goal_primitive[goals]

    # --- rendering ---------------------------------------------------------------------
    def render_size(self) -> tuple[int, int]:
        from hmarl.envs.basketball_defense import render

        return render.frame_size()

    def draw(self, surface: Any, index: int, episode_return: float) -> None:
        from hmarl.envs.basketball_defense import render

        render.draw(self, surface, index, episode_return)


class BasketballDefenseCoreV0(BasketballDefenseCore):
    """Version 0 of :class:`BasketballDefenseCore`: its action mask forbids every move
    during the check, although moves take effect there (kept so old runs replay)."""

    name = "basketball_defense_v0"
    moves_masked_in_check = True
