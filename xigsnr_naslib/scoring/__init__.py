"""The scoring path: :class:`~.study.Study` (the one orchestrator), worker processes
(:mod:`.parallel`) and the resumable results store (:mod:`.results`)."""
