"""Flat algorithms on the update core (DQN, AE-DQN, SAC-N, QMIX); each is its networks, its loss and how it acts."""

from hmarl.agents.ae_dqn import AEDQN, AEDQNConfig
from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.agents.qmix import QMIX, QMIXConfig
from hmarl.agents.sac_n import SACN, SACNConfig

__all__ = ["AEDQN", "DQN", "QMIX", "SACN", "AEDQNConfig", "DQNConfig", "QMIXConfig", "SACNConfig"]
