"""Replay: wrap-around, n-step sums against hand-computed values, bad input, state."""

import pytest
import torch

from hmarl.core import Field, ReplayBuffer


def transition_fields() -> dict[str, Field]:
    return {
        "observation": Field(()),
        "reward": Field(()),
        "next_observation": Field(()),
        "terminated": Field((), torch.bool),
        "truncated": Field((), torch.bool),
    }


def add_steps(buffer: ReplayBuffer, rewards, terminated, truncated) -> None:
    """One stream; the observation of step t is t and the next observation t + 100."""
    for t, (reward, term, trunc) in enumerate(zip(rewards, terminated, truncated, strict=True)):
        buffer.add(
            {
                "observation": torch.tensor([float(t)]),
                "reward": torch.tensor([reward]),
                "next_observation": torch.tensor([t + 100.0]),
                "terminated": torch.tensor([term]),
                "truncated": torch.tensor([trunc]),
            }
        )


def sample_all(buffer: ReplayBuffer, rounds: int = 400) -> dict[str, torch.Tensor]:
    """Many uniform draws, each no larger than what the buffer holds."""
    batches = [buffer.sample(len(buffer)) for _ in range(rounds)]
    return {name: torch.cat([batch[name] for batch in batches]) for name in batches[0]}


def by_step(batch: dict[str, torch.Tensor]) -> dict[int, dict[str, float]]:
    """The sampled transitions keyed by the step they start at."""
    return {int(step): {name: float(value[i]) for name, value in batch.items()} for i, step in enumerate(batch["observation"])}


def test_wrap_around_keeps_the_newest_rows_of_every_stream():
    buffer = ReplayBuffer({"observation": Field((2,))}, capacity=8, num_streams=2)
    for step in range(7):
        values = torch.tensor([[step, 0.0], [step, 1.0]])
        buffer.add({"observation": values})
    assert len(buffer) == 8
    # Rows 4..6 overwrote the slots of rows 0..2: the ring holds steps 3..6.
    stored = sorted(buffer.storage["observation"][:, 0].tolist())
    assert stored == [3, 3, 4, 4, 5, 5, 6, 6]
    sampled = sample_all(buffer)["observation"]
    assert set(sampled[:, 0].tolist()) == {3.0, 4.0, 5.0, 6.0}
    assert set(sampled[:, 1].tolist()) == {0.0, 1.0}


def test_n_step_returns_match_a_hand_computed_case():
    gamma = 0.5
    buffer = ReplayBuffer(transition_fields(), capacity=16, num_streams=1, n_step=3, gamma=gamma)
    rewards = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    terminated = [False, False, True, False, False, False, False, False]
    truncated = [False, False, False, False, True, False, False, False]
    add_steps(buffer, rewards, terminated, truncated)
    # Windows must be complete: steps 0..5 can start one (8 steps, n = 3).
    assert len(buffer) == 6
    samples = by_step(sample_all(buffer))
    assert sorted(samples) == [0, 1, 2, 3, 4, 5]
    expected = {
        # step: (return, bootstrap observation, terminated, truncated, discount)
        0: (1 + 0.5 * 2 + 0.25 * 3, 102, True, False, 0.125),  # ends with the termination at step 2
        1: (2 + 0.5 * 3, 102, True, False, 0.25),
        2: (3, 102, True, False, 0.5),
        3: (4 + 0.5 * 5, 104, False, True, 0.25),  # cut by the truncation at step 4
        4: (5, 104, False, True, 0.5),
        5: (6 + 0.5 * 7 + 0.25 * 8, 107, False, False, 0.125),
    }
    for step, (ret, bootstrap, term, trunc, discount) in expected.items():
        sample = samples[step]
        assert sample["reward"] == pytest.approx(ret)
        assert sample["next_observation"] == bootstrap
        assert sample["terminated"] == term
        assert sample["truncated"] == trunc
        assert sample["discount"] == pytest.approx(discount)


def test_n_step_windows_are_read_across_the_wrap():
    buffer = ReplayBuffer(transition_fields(), capacity=4, num_streams=1, n_step=2, gamma=0.9)
    add_steps(buffer, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [False] * 6, [False] * 6)
    samples = by_step(sample_all(buffer))
    # The ring holds steps 2..5; step 5 has no complete window yet.
    assert sorted(samples) == [2, 3, 4]
    for step in (2, 3, 4):
        assert samples[step]["reward"] == pytest.approx(step + 1 + 0.9 * (step + 2))
        assert samples[step]["next_observation"] == step + 101
        assert samples[step]["discount"] == pytest.approx(0.81)


def test_one_step_discount_is_gamma():
    buffer = ReplayBuffer(transition_fields(), capacity=8, num_streams=1, gamma=0.97)
    add_steps(buffer, [1.0, 2.0], [False, True], [False, False])
    batch = buffer.sample(2)
    assert batch["discount"].tolist() == pytest.approx([0.97, 0.97])


def test_bad_input_is_refused_with_the_argument_named():
    buffer = ReplayBuffer(transition_fields(), capacity=8, num_streams=2)
    with pytest.raises(ValueError, match="larger than the replay capacity"):
        buffer.sample(9)
    add_steps_two = {name: torch.zeros(2, dtype=f.dtype) for name, f in transition_fields().items()}
    buffer.add(add_steps_two)
    with pytest.raises(ValueError, match="larger than the 2 transitions the replay holds"):
        buffer.sample(3)
    with pytest.raises(ValueError, match="must have shape"):
        buffer.add({name: torch.zeros(3, dtype=f.dtype) for name, f in transition_fields().items()})
    with pytest.raises(ValueError, match="exactly the fields"):
        buffer.add({"observation": torch.zeros(2)})
    with pytest.raises(ValueError, match="n_step > 1 needs"):
        ReplayBuffer({"observation": Field(())}, capacity=8, num_streams=1, n_step=2)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(transition_fields(), capacity=3, num_streams=2, n_step=2)


def test_state_dict_restores_contents_and_sampling_stream():
    buffer = ReplayBuffer(transition_fields(), capacity=8, num_streams=1, n_step=2, seed=3)
    add_steps(buffer, [1.0, 2.0, 3.0, 4.0, 5.0], [False] * 5, [False] * 5)
    state = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in buffer.state_dict().items()}
    state["storage"] = {k: v.clone() for k, v in state["storage"].items()}
    expected = [buffer.sample(4) for _ in range(3)]
    restored = ReplayBuffer(transition_fields(), capacity=8, num_streams=1, n_step=2, seed=99)
    restored.load_state_dict(state)
    for batch in expected:
        again = restored.sample(4)
        for name in batch:
            assert torch.equal(batch[name], again[name])


def test_recent_returns_the_newest_steps_of_every_stream():
    buffer = ReplayBuffer({"observation": Field(())}, capacity=6, num_streams=2)
    for step in range(5):
        buffer.add({"observation": torch.tensor([step, step + 0.5])})
    assert buffer.recent(["observation"], 4)["observation"].tolist() == [3.0, 3.5, 4.0, 4.5]
    assert sorted(buffer.recent(["observation"], 100)["observation"].tolist()) == [2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
