"""Optuna storage (SQLite or PostgreSQL, heartbeats, retries), studies, samplers, workers."""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Callable
from typing import Any

from gankit.errors import (
    ConfigError,
    DependencyError,
    TrainingError,
)
from gankit.tune.space import SAMPLERS, Param

HEARTBEAT = 10  # seconds between a running trial's heartbeats


MAX_RETRY = 3  # times a trial whose worker died is run again


def require_optuna():
    try:
        import optuna
    except ModuleNotFoundError as exc:
        raise DependencyError(
            "tuning needs Optuna: pip install 'gankit[hpo]' (or pip install optuna)"
        ) from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # heartbeats and their retry callback are marked experimental; they are what we rely on
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def masked(url: str | None) -> str | None:
    """A storage URL without its password (for messages and tune.json)."""
    if url is None or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url


def open_storage(url: str | None, heartbeat: int = HEARTBEAT):
    """Optuna's RDB storage for `url` (SQLite or PostgreSQL) with heartbeats and retries of
    trials whose worker died; None (in memory) without a URL."""
    optuna = require_optuna()
    if url is None:
        return None
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # workers wait for the write lock
    elif url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]  # psycopg 3, the hpo extra
        engine_kwargs["pool_pre_ping"] = True
    if "psycopg" in url:
        try:
            import psycopg  # noqa: F401
        except ModuleNotFoundError as exc:
            raise DependencyError(
                "a PostgreSQL study needs the psycopg driver: pip install 'gankit[hpo]' "
                "(or pip install 'psycopg[binary]')"
            ) from exc
    from optuna import storages
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    # Optuna >= 4.9 names the retry "heartbeat stale"; older releases "failed trial"
    if "heartbeat_stale_trial_callback" in inspect.signature(storages.RDBStorage).parameters:
        retry = {
            "heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            )
        }
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)}
    last: Exception | None = None
    for attempt in range(6):  # workers starting together race to create the tables
        try:
            return storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                **retry,
            )
        except (SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            last = exc
            if isinstance(exc, OperationalError) or attempt == 5:
                break  # no server, refused login, missing database: say so at once
            time.sleep(0.2 * (attempt + 1))
    first = str(last).strip().splitlines()[0] if str(last).strip() else type(last).__name__
    raise ConfigError(f"cannot open the study storage {masked(url)}: {first}") from last


def open_study(storage: Any, name: str, direction: str, sampler: Any, pruner: Any):
    """Create the study, or join it when another worker already did (same direction)."""
    optuna = require_optuna()
    for attempt in range(6):
        try:
            study = optuna.create_study(
                storage=storage,
                study_name=name,
                direction=direction,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
            break
        except Exception as exc:  # another worker created it between the check and the insert
            if attempt == 5:
                raise ConfigError(f"cannot create or load the study {name!r}: {exc}") from exc
            time.sleep(0.2 * (attempt + 1))
    if study.direction.name.lower() != direction:
        raise ConfigError(
            f"study {name!r} already exists with direction {study.direction.name.lower()}; "
            f"this run asked to {direction} (use another --study)"
        )
    return study


def make_sampler(name: str, space: list[Param], n_trials: int, seed: int | None):
    optuna = require_optuna()
    if name == "grid":
        return optuna.samplers.GridSampler({p.key: p.grid_values() for p in space}, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        startup = min(10, max(1, n_trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)
    raise ConfigError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


def _retried(trials: list) -> set[int]:
    """Numbers of trials whose worker died and that were queued again (they do not count)."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history", []))
    return out


def run_worker(
    study: Any, storage: Any, objective: Callable, n_trials: int, poll: float = 0.5
) -> None:
    """Run trials until the study holds `n_trials` of them (every worker of the study counts)
    and none is still running: a trial whose worker died is failed once its heartbeat is
    stale, re-queued with the same parameters, and run here."""
    require_optuna()
    from optuna.storages import RDBStorage, fail_stale_trials
    from optuna.trial import TrialState

    heartbeat = isinstance(storage, RDBStorage)  # in memory: one process, nothing goes stale
    while True:
        if heartbeat:
            fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        retried = _retried(trials)
        counted = [t for t in trials if t.number not in retried]
        waiting = any(t.state == TrialState.WAITING for t in trials)
        if waiting or len(counted) < n_trials:
            study.optimize(objective, n_trials=1, catch=(TrainingError,), gc_after_trial=False)
            continue
        if any(t.state == TrialState.RUNNING for t in counted) and heartbeat:
            time.sleep(poll)  # another worker's trial: wait for it, or for its heartbeat to stop
            continue
        return
