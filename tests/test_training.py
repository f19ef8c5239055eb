"""The shared training machinery: typed CLI, gymnasium adapter, exact resume, bad input."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from hmarl.core import EngineConfig, NonFiniteLossError, redefault
from hmarl.training import GymVectorEnv, build_parser, checkpoint_file, load_checkpoint, make_vector_env, parse_config
from hmarl.trainers import ae_dqn as ae_dqn_trainer
from hmarl.trainers import dqn as dqn_trainer
from hmarl.trainers import hqmix as hqmix_trainer


@pytest.mark.parametrize("config_cls", [dqn_trainer.Config, ae_dqn_trainer.Config])
def test_help_explains_every_option(config_cls, capsys):
    with pytest.raises(SystemExit):
        build_parser(config_cls).parse_args(["--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(config_cls):
        assert "--" + field.name.replace("_", "-") in text
        assert field.metadata["help"]


def test_a_learners_section_is_a_group_of_the_command_line(capsys):
    """hQmix's own options form a section: flat flags, their own group in --help, nested
    in the parsed config, and rebuilt from a checkpoint's dict (also one from before the
    section, which stored them at the top level)."""
    from hmarl.core import option, with_sections
    from hmarl.hier import QmixOptions
    from hmarl.training.config import config_from_dict

    config = parse_config(hqmix_trainer.Config, ["--mixer-embed", "16", "--team-reward", "mean", "--lr", "0.01"])
    assert config.qmix == QmixOptions(mixer_embed=16, team_reward="mean") and config.lr == 0.01
    assert config_from_dict(hqmix_trainer.Config, dataclasses.asdict(config)) == config
    legacy = {name: value for name, value in dataclasses.asdict(config).items() if name != "qmix"}
    assert config_from_dict(hqmix_trainer.Config, {**legacy, "mixer_embed": 16, "team_reward": "mean"}) == config
    with pytest.raises(SystemExit):
        build_parser(hqmix_trainer.Config).parse_args(["--help"])
    text = capsys.readouterr().out
    assert "qmix high level:" in text and "--mixer-embed MIXER_EMBED" in text
    with pytest.raises(SystemExit):
        parse_config(hqmix_trainer.Config, ["--team-reward", "max"])

    @dataclasses.dataclass
    class Clash:
        """A section whose option the base config has too."""

        lr: float = option(1.0, "a second --lr")

    with pytest.raises(TypeError, match="--lr is defined twice"):
        build_parser(with_sections("Clashing", dqn_trainer.Config, {"clash": (Clash, "clash")}))


def test_parsed_options_keep_their_types():
    config = parse_config(
        dqn_trainer.Config,
        ["--hidden-sizes", "32", "16", "--no-double-q", "--env-kwargs", '{"layout": "room"}', "--lr", "0.01"],
    )
    assert config.hidden_sizes == (32, 16)
    assert config.double_q is False
    assert config.env_kwargs == {"layout": "room"}
    assert config.lr == 0.01
    with pytest.raises(SystemExit):
        parse_config(dqn_trainer.Config, ["--optimizer", "sgd"])
    with pytest.raises(SystemExit):
        parse_config(dqn_trainer.Config, ["--env-kwargs", "[1, 2]"])


def test_a_subclass_changes_an_options_default_and_keeps_its_help_and_choices():
    field = {f.name: f for f in dataclasses.fields(hqmix_trainer.Config)}["lr_scaling"]
    base = {f.name: f for f in dataclasses.fields(EngineConfig)}["lr_scaling"]
    assert field.default == "none" and field.metadata == base.metadata
    assert parse_config(hqmix_trainer.Config, ["--lr-scaling", "sqrt"]).lr_scaling == "sqrt"
    with pytest.raises(SystemExit):
        parse_config(hqmix_trainer.Config, ["--lr-scaling", "cubic"])
    with pytest.raises(ValueError, match="no option 'learning_rate'"):
        redefault(EngineConfig, "learning_rate", 1.0)


def test_gym_adapter_presents_the_batched_face():
    env = make_vector_env("CartPole-v1", 3)
    assert isinstance(env, GymVectorEnv)
    assert (env.n_agents, env.n_actions, env.obs_dim) == (1, 2, 4)
    obs, _ = env.reset(seed=0)
    assert obs["observation"].shape == (3, 1, 4) and obs["action_mask"].dtype == np.int8
    finished = 0
    for _ in range(60):
        obs, rewards, terminated, truncated, infos = env.step(np.ones((3, 1), dtype=np.int64))
        assert rewards.shape == (3, 1) and terminated.shape == (3,)
        assert not infos["invalid_action"].any()
        done = terminated | truncated
        # The final observation of a finished episode is not the fresh one that follows it.
        if done.any():
            assert not np.allclose(infos["final_observation"][done], obs["observation"][done])
            assert (infos["episode_length"][done] == infos["episode_return"][done, 0]).all()
            finished += int(done.sum())
    assert finished > 0
    with pytest.raises(ValueError, match=r"neither an hmarl.envs module nor"):
        make_vector_env("NoSuchEnv-v0", 2)


def short_run_args(tmp_path, total_steps: int, checkpoint_every: int) -> list[str]:
    return [
        "--env",
        "CartPole-v1",
        "--env-kwargs",
        "{}",
        "--num-envs",
        "4",
        "--total-steps",
        str(total_steps),
        "--learning-starts",
        "200",
        "--batch-size",
        "32",
        "--hidden-sizes",
        "32",
        "--eval-every",
        "600",
        "--eval-episodes",
        "2",
        "--checkpoint-every",
        str(checkpoint_every),
        "--keep-checkpoints",
        "0",
        "--run-name",
        "resume",
        "--log-dir",
        str(tmp_path / "runs"),
        "--checkpoint-dir",
        str(tmp_path / "checkpoints"),
        "--no-progress",
    ]


@pytest.mark.parametrize(
    ("trainer", "extra"),
    [(dqn_trainer, []), (ae_dqn_trainer, ["--elimination-fit-every", "50"]), (dqn_trainer, ["--sampler", "prioritized"])],
    ids=["dqn", "ae_dqn", "dqn_prioritized"],
)
def test_resume_from_a_checkpoint_is_bit_identical(tmp_path, trainer, extra):
    args = short_run_args(tmp_path, total_steps=1_200, checkpoint_every=60) + extra + ["--checkpoint-replay"]
    uninterrupted = trainer.main(args)
    final = load_checkpoint(uninterrupted.checkpoint)
    checkpoints = sorted((tmp_path / "checkpoints" / "resume").glob("update_*.pt"))
    middle = checkpoints[len(checkpoints) // 2]
    assert load_checkpoint(middle)["loop"]["updates"] < uninterrupted.updates
    resumed = trainer.main(["--resume", str(middle), "--no-progress"])
    assert resumed.updates == uninterrupted.updates
    assert resumed.evaluations == uninterrupted.evaluations
    again = load_checkpoint(resumed.checkpoint)
    engine, engine_again = final["agent"]["engine"], again["agent"]["engine"]
    for part in ("modules", "targets"):
        for name, tensor in engine[part].items():
            assert torch.equal(tensor, engine_again[part][name]), name
    for name, tensor in final["agent"]["replay"]["storage"].items():
        assert torch.equal(tensor, again["agent"]["replay"]["storage"][name]), name
    sampler, sampler_again = final["agent"]["replay"]["sampler"], again["agent"]["replay"]["sampler"]
    assert sampler.keys() == sampler_again.keys()
    if "nodes" in sampler:
        assert torch.equal(sampler["nodes"], sampler_again["nodes"])
    optimizer_state = engine["optimizer"]["state"]
    for index, state in optimizer_state.items():
        for key, value in state.items():
            assert torch.equal(value, engine_again["optimizer"]["state"][index][key])


def test_a_run_directory_stands_for_its_newest_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no update_"):
        checkpoint_file(run)
    with pytest.raises(FileNotFoundError, match="neither a file nor a run directory"):
        load_checkpoint(tmp_path / "missing.pt")
    for updates in (5, 40, 300):
        torch.save({"updates": updates}, run / f"update_{updates:09d}.pt")
    (run / "notes.pt").write_bytes(b"")  # not a checkpoint of the run
    assert checkpoint_file(run) == run / "update_000000300.pt"
    assert load_checkpoint(run)["updates"] == 300
    assert load_checkpoint(run / "update_000000040.pt")["updates"] == 40


def test_non_finite_loss_stops_the_run_with_a_checkpoint(tmp_path, monkeypatch):
    from hmarl.agents.dqn import DQN

    original_loss = DQN.loss

    def exploding_loss(self, batch):
        rows, extras = original_loss(self, batch)
        if self.engine.updates >= 5:
            rows.values = rows.values * math.inf
        return rows, extras

    monkeypatch.setattr(DQN, "loss", exploding_loss)
    with pytest.raises(NonFiniteLossError, match=r"non-finite loss .* at update 6.*checkpoint: .*update_000000005\.pt"):
        dqn_trainer.main(short_run_args(tmp_path, total_steps=1_000, checkpoint_every=0))
    saved = load_checkpoint(tmp_path / "checkpoints" / "resume" / "update_000000005.pt")
    assert all(torch.isfinite(t).all() for t in saved["agent"]["engine"]["modules"].values())


def test_non_finite_compiled_update_stops_the_run_at_the_next_read(tmp_path, monkeypatch):
    """Compiled updates keep the finiteness check on the device; the loop reads it every
    --log-every updates. (torch.compile is the identity here: the loop's side is tested.)"""
    from hmarl.agents.dqn import DQN

    original_loss = DQN.loss

    def exploding_loss(self, batch):
        rows, extras = original_loss(self, batch)
        if self.engine.updates >= 5:
            rows.values = rows.values * math.inf
        return rows, extras

    monkeypatch.setattr(DQN, "loss", exploding_loss)
    monkeypatch.setattr(torch, "compile", lambda function, **options: function)
    args = short_run_args(tmp_path, total_steps=1_000, checkpoint_every=0)
    args += ["--compile", "default", "--log-every", "10"]
    with pytest.raises(NonFiniteLossError, match=r"between 1 and 10; .*checkpoint: .*update_000000010\.pt"):
        dqn_trainer.main(args)
    saved = load_checkpoint(tmp_path / "checkpoints" / "resume" / "update_000000010.pt")
    assert all(torch.isfinite(t).all() for t in saved["agent"]["engine"]["modules"].values())


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--optimizer", "adamod", None),
        ("--num-envs", "0", "num_envs must be >= 1"),
        ("--device", "tpu", "device='tpu' is not a torch device"),
        ("--batch-size", "200000", "batch_size=200000 is larger than buffer_size"),
    ],
)
def test_bad_run_options_are_refused_clearly(tmp_path, option, value, message):
    args = [*short_run_args(tmp_path, total_steps=300, checkpoint_every=0), option, value]
    if message is None:
        assert dqn_trainer.main(args).env_steps == 300
    else:
        with pytest.raises(ValueError, match=message):
            dqn_trainer.main(args)


def test_the_target_can_also_limit_the_episode_length(tmp_path):
    """An evaluation counts as reaching the target only when its mean episode length is
    within --target-max-length as well (CartPole's untrained episodes last 8-60 steps)."""
    args = [*short_run_args(tmp_path, total_steps=1200, checkpoint_every=0), "--target-value", "0"]
    unlimited = dqn_trainer.main(args)
    assert unlimited.steps_to_target == unlimited.evaluations[0][0]
    too_short = dqn_trainer.main([*args, "--target-max-length", "1", "--stop-at-target"])
    assert too_short.steps_to_target is None
    assert too_short.env_steps == 1_200
    longest = max(results["length"] for _, results in unlimited.evaluations)
    within = dqn_trainer.main([*args, "--target-max-length", str(longest), "--stop-at-target"])
    assert within.steps_to_target is not None
    assert within.env_steps == within.steps_to_target
