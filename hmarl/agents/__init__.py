"""Single-agent algorithms on the update core; each is its networks, its loss and how it acts."""

from hmarl.agents.ae_dqn import AEDQN, AEDQNConfig, LinearEliminationBandit
from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.agents.sac_n import SACN, SACNConfig

__all__ = ["AEDQN", "DQN", "SACN", "AEDQNConfig", "DQNConfig", "LinearEliminationBandit", "SACNConfig"]
