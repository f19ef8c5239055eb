"""The conformance kit over every registered environment, and what it must catch."""

from __future__ import annotations

import pytest

from hmarl import envs
from hmarl.envs import conformance

# Small instances keep the default suite fast; the defaults are covered per environment.
KWARGS = {
    "basketball_defense_v1": {"n_players": 2},
    "trash_collection_v0": {"layout": "ring"},
}


@pytest.mark.parametrize("name", envs.names())
def test_registered_environments_pass_the_kit(name):
    conformance.check_environment(envs.get(name), KWARGS[name], steps=120)


def test_every_registered_environment_has_test_arguments():
    assert sorted(KWARGS) == envs.names()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_kit_catches_a_masked_action_that_takes_effect():
    # Version 0 of basketball masks moves during the check although they take effect.
    module = envs.get("basketball_defense_v0")
    with pytest.raises(AssertionError, match="took effect without invalid_action"):
        conformance.assert_invariants(module, {"n_players": 2}, steps=20)


def test_the_egocentric_view_passes_the_kit():
    kwargs = {"layout": "random", "width": 8, "height": 6, "n_agents": 3, "view": "egocentric", "view_size": 5}
    conformance.check_environment(envs.get("trash_collection_v0"), kwargs, steps=120)
