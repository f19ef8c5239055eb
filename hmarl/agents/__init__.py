"""Single-agent algorithms on the update core; each is its networks, its loss and how it acts."""

from hmarl.agents.ae_dqn import AEDQN, AEDQNConfig
from hmarl.agents.dqn import DQN, DQNConfig
from hmarl.agents.sac_n import SACN, SACNConfig

