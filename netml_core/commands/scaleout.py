"""``--workers N`` / ``--scheduler ADDRESS``, shared by learn, classify and evaluate.

The options are checked here without importing Dask; only a run that asks for them starts a client
(``netml_core.distributed``), so every other run stays as fast to start as before.
"""

from __future__ import annotations

import click


def dask_options(f):
    f = click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Run extraction on an existing Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                          "(needs netml[dask]; workers read the captures by the same path).")(f)
    f = click.option("--workers", type=int, default=None, metavar="N",
                     help="Run extraction on a local Dask cluster of N worker processes (needs netml[dask]).")(f)
    return f


def start_dask(workers: int | None, scheduler: str | None, **kw):
    """A started ``DaskRunner`` when asked for, else ``None``; closed (its cluster stopped) when the
    command's click context closes, so a command body needs no extra block."""
    from ..distributed import DaskRunner, requested

    if not requested(workers, scheduler):
        return None
    runner = DaskRunner(workers, scheduler, **kw).start()
    click.get_current_context().call_on_close(runner.close)
    return runner
