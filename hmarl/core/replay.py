"""Replay: preallocated ring buffers of named tensors on the training device.

Transitions arrive as one row per environment step, holding every parallel stream
(environment copies, and agents where they learn independently). Storing rows in
time order per stream is what lets n-step returns be summed at sampling time with
array operations, and lets the buffer wrap around without ever moving data.

The buffer is storage; which slots a batch reads is its sampler's choice
(:mod:`hmarl.core.samplers`). :meth:`ReplayBuffer.draw` returns a :class:`Sample`:
the batch, the storage slots it came from and their importance weights, and
:meth:`ReplayBuffer.feedback` takes per-row scores back to the sampler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from hmarl.core.samplers import Sampler, SamplerConfig, UniformSampler, make_sampler

REWARD = "reward"
TERMINATED = "terminated"
TRUNCATED = "truncated"
DISCOUNT = "discount"
NEXT_PREFIX = "next_"


@dataclass(frozen=True)
class Field:
    """Shape (per stream) and dtype of one stored quantity."""

    shape: tuple[int, ...] = ()
    dtype: torch.dtype = torch.float32


@dataclass
class Sample:
    """A drawn batch: its rows, the storage slots they came from, their importance
    weights (None: all equal) and the source that takes their scores back (None: none)."""

    batch: dict[str, torch.Tensor]
    index: torch.Tensor
    weights: torch.Tensor | None = None
    source: BatchSource | None = None

    def __len__(self) -> int:
        return len(self.index)

    def take(self, rows: torch.Tensor) -> Sample:
        """The sample restricted to ``rows`` (positions in this sample)."""
        return Sample(
            {name: value.index_select(0, rows) for name, value in self.batch.items()},
            self.index.index_select(0, rows),
            None if self.weights is None else self.weights.index_select(0, rows),
            self.source,
        )

    @staticmethod
    def join(samples: Sequence[Sample]) -> Sample:
        """One sample of the rows of ``samples``, in order (all from the same source)."""
        first = samples[0]
        return Sample(
            {name: torch.cat([sample.batch[name] for sample in samples]) for name in first.batch},
            torch.cat([sample.index for sample in samples]),
            _joined_weights(samples),
            first.source,
        )


def _joined_weights(samples: Sequence[Sample]) -> torch.Tensor | None:
    """The samples' weights joined, or ``None`` where the samples carry none."""
    weights = [sample.weights for sample in samples if sample.weights is not None]
    if not weights:
        return None
    if len(weights) != len(samples):
        raise ValueError("samples to join must all carry weights or all carry none")
    return torch.cat(weights)


class BatchSource(Protocol):
    """Where the update engine draws batches from and returns per-row scores to."""

    def draw(self, count: int) -> Sample: ...

    def feedback(self, index: torch.Tensor, scores: torch.Tensor) -> None: ...


class ReplayBuffer:
    """Replay over ``num_streams`` parallel transition streams, drawn by a sampler.

    ``fields`` names what one transition holds. Sampling returns every field at the
    sampled step, plus ``discount``: the factor in front of the bootstrap value. With
    ``n_step > 1`` the fields ``reward``, ``terminated`` and ``truncated`` are required;
    ``reward`` becomes the discounted sum over up to ``n_step`` steps (cut where an
    episode ended), ``terminated``, ``truncated`` and every ``next_*`` field are read at
    the last step of that window, and ``discount`` is ``gamma ** steps``.

    ``sampler`` chooses the slots: a :class:`~hmarl.core.SamplerConfig` builds the one it
    names for this buffer (seeded by ``seed``; prioritised replay anneals over
    ``total_draws``), a sampler object is used as it is, and None is uniform.
    """

    def __init__(
        self,
        fields: Mapping[str, Field],
        capacity: int,
        num_streams: int,
        device: torch.device | str = "cpu",
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
        sampler: Sampler | SamplerConfig | None = None,
        total_draws: int = 1,
    ) -> None:
        if num_streams < 1:
            raise ValueError(f"num_streams must be >= 1, got {num_streams}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if capacity < num_streams * n_step:
            raise ValueError(
                f"capacity={capacity} must hold at least n_step={n_step} steps of "
                f"num_streams={num_streams} streams (>= {num_streams * n_step})"
            )
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {gamma}")
        if n_step > 1:
            missing = {REWARD, TERMINATED, TRUNCATED} - set(fields)
            if missing:
                raise ValueError(f"n_step > 1 needs the fields {sorted(missing)}")
            for name in (TERMINATED, TRUNCATED):
                if fields[name].dtype != torch.bool:
                    raise TypeError(f"field {name!r} must be torch.bool, got {fields[name].dtype}")
        self.fields = dict(fields)
        self.num_streams = num_streams
        self.rows = capacity // num_streams
        self.capacity = self.rows * num_streams
        self.device = torch.device(device)
        self.n_step = n_step
        self.gamma = gamma
        self.storage = {
            name: torch.zeros((self.capacity, *field.shape), dtype=field.dtype, device=self.device)
            for name, field in self.fields.items()
        }
        self.next_row = 0
        self.filled_rows = 0
        # When each row was last written (a count of add/extend calls), so that what
        # is kept per slot elsewhere (StaleSB's scores) can tell a slot written over.
        self.writes = 0
        self.row_written = torch.full((self.rows,), -1, dtype=torch.long, device=self.device)
        if sampler is None:
            sampler = UniformSampler(self.device, seed)
        elif isinstance(sampler, SamplerConfig):
            sampler = make_sampler(sampler, self.capacity, self.device, total_draws, seed)
        self.sampler: Sampler = sampler
        self._streams = torch.arange(num_streams, device=self.device)
        self._discount_powers = gamma ** torch.arange(n_step + 1, dtype=torch.float32, device=self.device)
        #: False once :meth:`extend` stored rows: they are then independent, not time-ordered
        #: streams, and n-step windows over them would mean nothing.
        self.time_ordered = True

    def __len__(self) -> int:
        """Number of transitions that can be sampled (complete n-step windows)."""
        return max(self.filled_rows - self.n_step + 1, 0) * self.num_streams

    def add(self, transition: Mapping[str, torch.Tensor | np.ndarray]) -> None:
        """Store one step of every stream: each value is shaped ``(num_streams, *shape)``."""
        if transition.keys() != self.fields.keys():
            raise ValueError(f"a transition must hold exactly the fields {sorted(self.fields)}, got {sorted(transition)}")
        values = {name: torch.as_tensor(value, device=self.device) for name, value in transition.items()}
        for name, value in values.items():
            field = self.fields[name]
            if value.shape != (self.num_streams, *field.shape):
                raise ValueError(
                    f"field {name!r} must have shape {(self.num_streams, *field.shape)}, got {tuple(value.shape)}"
                )
        start = self.next_row * self.num_streams
        # The row written over no longer starts a complete window; the row n_step - 1
        # before it now does.
        if self.n_step > 1:
            self.sampler.retired(start + self._streams)
        for name, value in values.items():
            self.storage[name][start : start + self.num_streams] = value
        self.row_written[self.next_row] = self.writes
        self.writes += 1
        self.filled_rows = min(self.filled_rows + 1, self.rows)
        if self.filled_rows >= self.n_step:
            complete = (self.next_row - self.n_step + 1) % self.rows
            self.sampler.written(complete * self.num_streams + self._streams)
        self.next_row = (self.next_row + 1) % self.rows

    def extend(self, transitions: Mapping[str, torch.Tensor | np.ndarray]) -> None:
        """Store any number of transitions at once, each value shaped ``(count, *shape)``.

        For producers that emit a variable number of transitions per step (the
        high-level rows of ACER, the low-level steps of running options): the buffer
        must have one stream and ``n_step == 1``, as its rows are then independent.
        """
        if self.num_streams != 1 or self.n_step != 1:
            raise ValueError(
                f"extend() needs num_streams=1 and n_step=1, this buffer has "
                f"num_streams={self.num_streams} and n_step={self.n_step}"
            )
        if transitions.keys() != self.fields.keys():
            raise ValueError(f"transitions must hold exactly the fields {sorted(self.fields)}, got {sorted(transitions)}")
        values = {name: torch.as_tensor(value, device=self.device) for name, value in transitions.items()}
        counts = {len(value) for value in values.values()}
        if len(counts) != 1:
            raise ValueError(f"every field must hold the same number of transitions, got {sorted(counts)}")
        count = counts.pop()
        self.time_ordered = False
        if count == 0:
            return
        keep = min(count, self.rows)
        rows = (self.next_row + count - keep + torch.arange(keep, device=self.device)) % self.rows
        for name, value in values.items():
            field = self.fields[name]
            if value.shape[1:] != field.shape:
                raise ValueError(f"field {name!r} must have shape (count, *{field.shape}), got {tuple(value.shape)}")
            self.storage[name][rows] = value[count - keep :].to(field.dtype)
        self.row_written[rows] = self.writes
        self.writes += 1
        self.sampler.written(rows)
        self.next_row = (self.next_row + count) % self.rows
        self.filled_rows = min(self.filled_rows + count, self.rows)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """The rows of :meth:`draw`, for users that need neither weights nor feedback."""
        return self.draw(batch_size).batch

    def draw(self, batch_size: int) -> Sample:
        """Draw ``batch_size`` transitions as the sampler says (uniform: with replacement)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > self.capacity:
            raise ValueError(f"batch_size={batch_size} is larger than the replay capacity {self.capacity}")
        available = len(self)
        if batch_size > available:
            raise ValueError(
                f"batch_size={batch_size} is larger than the {available} transitions the "
                "replay holds; collect more before sampling"
            )
        index, weights = self.sampler.draw(self, batch_size)
        return Sample(self.gather(index), index, weights, self)

    def gather(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The transitions that start at the storage slots ``index``, with ``discount``."""
        batch = {name: tensor.index_select(0, index) for name, tensor in self.storage.items()}
        if self.n_step == 1:
            batch[DISCOUNT] = self._discount_powers[1].expand(len(index))
            return batch
        return self._n_step_batch(batch, index // self.num_streams, index % self.num_streams)

    def written_at(self, index: torch.Tensor) -> torch.Tensor:
        """For each storage slot, the number of the write (add or extend call) that last
        wrote its row: a slot whose number changed holds another transition."""
        return self.row_written[index // self.num_streams]

    def feedback(self, index: torch.Tensor, scores: torch.Tensor) -> None:
        """Per-row scores of the slots ``index`` after an update, for the sampler."""
        self.sampler.feedback(index, scores)

    def recent(self, names: Sequence[str], count: int) -> dict[str, torch.Tensor]:
        """The fields ``names`` of the newest ``count`` stored steps' transitions (at most
        all of them), without drawing random numbers: for statistics over the contents."""
        rows = min(max(count // self.num_streams, 1), self.filled_rows)
        index = (self.next_row - rows + torch.arange(rows, device=self.device)) % self.rows
        flat = (index[:, None] * self.num_streams + torch.arange(self.num_streams, device=self.device)).flatten()
        return {name: self.storage[name].index_select(0, flat) for name in names}

    def set_n_step(self, n_step: int) -> None:
        """Sum ``n_step``-step returns from the next draw on (delayed multi-step targets).

        The rows whose window is no longer complete stop being drawable until the steps
        after them arrive; the sampler is told. Only time-ordered streams (rows stored
        with :meth:`add`) have windows.
        """
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if n_step == self.n_step:
            return
        if not self.time_ordered:
            raise ValueError("n_step > 1 needs time-ordered streams; this buffer holds rows stored with extend()")
        if n_step > 1 and {REWARD, TERMINATED, TRUNCATED} - set(self.fields):
            raise ValueError(f"n_step > 1 needs the fields {sorted({REWARD, TERMINATED, TRUNCATED})}")
        if self.capacity < self.num_streams * n_step:
            raise ValueError(f"n_step={n_step} does not fit a replay of {self.rows} rows per stream")
        old = self.n_step
        newest = self.next_row - 1
        if n_step > old:
            # The windows that start at the newest n_step - old complete rows are now incomplete.
            count = min(n_step - old, max(self.filled_rows - old + 1, 0))
            rows = (newest - old + 1 - torch.arange(count, device=self.device)) % self.rows
        else:
            # Windows start at up to old - n_step more recent rows.
            count = min(old - n_step, max(self.filled_rows - n_step + 1, 0))
            rows = (newest - n_step + 1 - torch.arange(count, device=self.device)) % self.rows
        slots = (rows[:, None] * self.num_streams + self._streams).flatten()
        if len(slots):
            (self.sampler.retired if n_step > old else self.sampler.written)(slots)
        self.n_step = n_step
        self._discount_powers = self.gamma ** torch.arange(n_step + 1, dtype=torch.float32, device=self.device)

    def oldest(self, count: int) -> dict[str, torch.Tensor]:
        """Every field of the oldest ``count`` stored transitions (at most all of them),
        without drawing random numbers: for statistics over the oldest contents."""
        rows = min(max(count // self.num_streams, 1), self.filled_rows)
        index = (self.next_row - self.filled_rows + torch.arange(rows, device=self.device)) % self.rows
        flat = (index[:, None] * self.num_streams + self._streams).flatten()
        return {name: tensor.index_select(0, flat) for name, tensor in self.storage.items()}

    def drop_oldest(self, count: int) -> int:
        """Forget the oldest ``count`` transitions (whole steps of every stream, rounded
        down); new ones fill the freed room later. Returns how many were dropped."""
        rows = min(max(count, 0) // self.num_streams, self.filled_rows)
        if rows == 0:
            return 0
        first = self.next_row - self.filled_rows
        index = (first + torch.arange(rows, device=self.device)) % self.rows
        self.sampler.retired((index[:, None] * self.num_streams + self._streams).flatten())
        self.filled_rows -= rows
        return rows * self.num_streams

    def _n_step_batch(
        self, batch: dict[str, torch.Tensor], row: torch.Tensor, stream: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        offsets = torch.arange(self.n_step, device=self.device)
        window = ((row[:, None] + offsets) % self.rows) * self.num_streams + stream[:, None]
        rewards = self.storage[REWARD][window]
        ended = (self.storage[TERMINATED][window] | self.storage[TRUNCATED][window]).float()
        # A step counts when no earlier step of the window ended its episode.
        counted = torch.cumprod(torch.cat([torch.ones_like(ended[:, :1]), 1.0 - ended[:, :-1]], 1), 1)
        weights = counted * self._discount_powers[: self.n_step]
        weights = weights.reshape(weights.shape + (1,) * (rewards.dim() - 2))
        batch[REWARD] = (weights * rewards).sum(1).to(rewards.dtype)
        steps = counted.sum(1).long()
        last = window.gather(1, (steps - 1)[:, None]).squeeze(1)
        for name, tensor in self.storage.items():
            if name in (TERMINATED, TRUNCATED) or name.startswith(NEXT_PREFIX):
                batch[name] = tensor.index_select(0, last)
        batch[DISCOUNT] = self._discount_powers[steps]
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {
            "storage": self.storage,
            "next_row": self.next_row,
            "filled_rows": self.filled_rows,
            "num_streams": self.num_streams,
            "writes": self.writes,
            "row_written": self.row_written,
            "n_step": self.n_step,
            "time_ordered": self.time_ordered,
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # Storage of the same size but another stream count would load without an
        # error and interleave the streams wrongly.
        streams = state.get("num_streams", self.num_streams)
        if streams != self.num_streams:
            raise ValueError(
                f"the checkpoint's replay has num_streams={streams} but this buffer has "
                f"{self.num_streams}; was the checkpoint written with another configuration?"
            )
        for name, tensor in state["storage"].items():
            if name not in self.storage or self.storage[name].shape != tensor.shape:
                raise ValueError(
                    f"replay field {name!r} of shape {tuple(tensor.shape)} does not match "
                    "this buffer; was the checkpoint written with another configuration?"
                )
            self.storage[name].copy_(tensor)
        self.next_row = int(state["next_row"])
        self.filled_rows = int(state["filled_rows"])
        if "row_written" in state:
            self.writes = int(state["writes"])
            self.row_written.copy_(state["row_written"])
        self.time_ordered = bool(state.get("time_ordered", self.time_ordered))
        n_step = int(state.get("n_step", self.n_step))
        self.n_step = n_step
        self._discount_powers = self.gamma ** torch.arange(n_step + 1, dtype=torch.float32, device=self.device)
        # Checkpoints from before samplers hold the uniform draw's generator directly.
        self.sampler.load_state_dict(state["sampler"] if "sampler" in state else {"generator": state["generator"]})
