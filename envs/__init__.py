"""hmarl environments: PettingZoo environments with sparse, delayed rewards.

Each environment is a versioned module (``trash_collection_v0``,
``basketball_defense_v0``) exposing ``env`` (AEC), ``parallel_env``, ``raw_env`` and
``vector_env`` (the batched face). This package depends on numpy, gymnasium,
pettingzoo and pygame only; it never imports torch.
"""
