"""Ray for the quality stage: a running cluster (ray.address / --ray-address) or a local Ray, started once."""
from __future__ import annotations

import sys
import time

from pipeline.core.config import Config


def init_ray(cfg: Config) -> float:
    """Connect to (or start) Ray once per process; returns the seconds it took (0.0 when already up)."""
    import ray

    from pipeline.core.engine_logs import quiet_python_warnings, quiet_ray_data, ray_init_options
    quiet_python_warnings()
    quiet_ray_data()
    if ray.is_initialized():
        return 0.0
    t0 = time.perf_counter()
    address = cfg.ray.address
    logs = ray_init_options()  # Ray's own lines and its workers' output only with --verbose
    if address:
        ray.init(address=address, **logs)
    else:  # local mode: a Ray of its own ("local": never one a `ray start` left on this machine, which a bare
        # ray.init() would join), the CPUs of this machine, no dashboard; the actors are the job, so they run at the
        # driver's priority, not Ray's default nice 15 (which starves them on a machine shared with other work)
        ray.init(address="local", include_dashboard=False, **logs, _system_config={"worker_niceness": 0})
    seconds = time.perf_counter() - t0
    where = address or "a local Ray"
    print(f"[ray] connected to {where} in {seconds:.1f}s: {ray.cluster_resources().get('CPU', 0):g} CPUs, "
          f"{ray.cluster_resources().get('GPU', 0):g} GPUs", file=sys.stderr)
    return seconds
