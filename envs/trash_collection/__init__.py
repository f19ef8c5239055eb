"""Multi-agent trash collection: the batched core, layouts, generator, renderer and a
scripted planner. Users import :mod:`hmarl.envs.trash_collection_v0`."""
