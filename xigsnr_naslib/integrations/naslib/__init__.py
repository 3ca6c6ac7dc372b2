"""NASLib: the project's proxies as NASLib zero-cost measures (:mod:`.bridge`, :mod:`.plugin`),
the launcher of NASLib scripts (:mod:`.launcher`), the live runner of NASLib zero-cost configs
(:mod:`.runner`) and its parts: NASLib data files, graphs, draws and metrics."""
