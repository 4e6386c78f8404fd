"""Queries on ``ml_models``, ``model_versions`` and ``predictions``. Functions take a session and never commit.

Every model lookup is scoped to its owner: another user's id reads as missing (404, no existence leak).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from aaiti.core.tasks.models import Job
from aaiti.ml.models import MLModel, ModelVersion, Prediction


async def get_model(
    session: AsyncSession, owner_id: uuid.UUID, model_id: uuid.UUID, *, for_update: bool = False
) -> MLModel | None:
    query = select(MLModel).where(MLModel.id == model_id, MLModel.user_id == owner_id)
    if for_update:
        query = query.with_for_update()
    model: MLModel | None = await session.scalar(query)
    return model


async def list_models(
    session: AsyncSession, owner_id: uuid.UUID, *, limit: int, offset: int, status: str | None = None
) -> tuple[list[MLModel], int]:
    query = select(MLModel).where(MLModel.user_id == owner_id)
    if status:
        query = query.where(MLModel.training_status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = await session.scalars(query.order_by(MLModel.created_at.desc(), MLModel.id).limit(limit).offset(offset))
    return list(rows.all()), int(total)


async def jobs_by_id(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Job]:
    if not job_ids:
        return {}
    rows = await session.scalars(select(Job).where(Job.id.in_(list(job_ids))))
    return {job.id: job for job in rows.all()}


async def latest_version(session: AsyncSession, model_id: uuid.UUID) -> ModelVersion | None:
    row: ModelVersion | None = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model_id).order_by(ModelVersion.version.desc()).limit(1)
    )
    return row


async def latest_versions(session: AsyncSession, model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ModelVersion]:
    if not model_ids:
        return {}
    newest = (
        select(ModelVersion.model_id, func.max(ModelVersion.version).label("v"))
        .where(ModelVersion.model_id.in_(list(model_ids)))
        .group_by(ModelVersion.model_id)
        .subquery()
    )
    rows = await session.scalars(
        select(ModelVersion).join(
            newest, (ModelVersion.model_id == newest.c.model_id) & (ModelVersion.version == newest.c.v)
        )
    )
    return {row.model_id: row for row in rows.all()}


async def max_version(session: AsyncSession, model_id: uuid.UUID) -> int:
    value = await session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id))
    return int(value or 0)


async def list_versions(
    session: AsyncSession, model_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[ModelVersion], int]:
    total = await session.scalar(select(func.count()).where(ModelVersion.model_id == model_id)) or 0
    rows = await session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == model_id)
        .order_by(ModelVersion.version.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total)


async def prune_versions(session: AsyncSession, model_id: uuid.UUID, keep: int) -> list[int]:
    """Delete the version rows beyond the newest ``keep``; returns the deleted version numbers."""
    doomed = list(
        (
            await session.scalars(
                select(ModelVersion.version)
                .where(ModelVersion.model_id == model_id)
                .order_by(ModelVersion.version.desc())
                .offset(keep)
            )
        ).all()
    )
    if doomed:
        await session.execute(
            delete(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.version.in_(doomed))
        )
    return sorted(doomed)


async def list_predictions(
    session: AsyncSession, model_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[Prediction], int]:
    total = await session.scalar(select(func.count()).where(Prediction.model_id == model_id)) or 0
    rows = await session.scalars(
        select(Prediction)
        .where(Prediction.model_id == model_id)
        .order_by(Prediction.timestamp.desc(), Prediction.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total)


async def unresolved_predictions(session: AsyncSession, model_id: uuid.UUID, *, through: datetime) -> list[Prediction]:
    """Unresolved predictions whose target bar opened at or before ``through``."""
    rows = await session.scalars(
        select(Prediction)
        .where(
            Prediction.model_id == model_id,
            Prediction.resolved_at.is_(None),
            Prediction.target_time.is_not(None),
            Prediction.target_time <= through,
        )
        .order_by(Prediction.target_time)
    )
    return list(rows.all())


async def recent_outcomes(
    session: AsyncSession, model_id: uuid.UUID, *, version: int, horizon: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The outcomes of the latest ``limit`` resolved predictions of one version at its own horizon (newest
    first), and how many such predictions have resolved in all."""
    where = (
        Prediction.model_id == model_id,
        Prediction.version == version,
        Prediction.horizon == horizon,
        Prediction.actual_value.is_not(None),
    )
    total = await session.scalar(select(func.count()).where(*where)) or 0
    rows = await session.scalars(
        select(Prediction.outcome).where(*where).order_by(Prediction.target_time.desc()).limit(limit)
    )
    return [dict(o) for o in rows.all() if o], int(total)


async def training_models_with_jobs(
    session: AsyncSession, model_ids: Sequence[uuid.UUID] | None = None
) -> list[tuple[MLModel, Job | None]]:
    """Models marked ``training``, each with its training job (``None`` when the job row is gone)."""
    query = (
        select(MLModel, Job)
        .outerjoin(Job, Job.id == MLModel.training_job_id)
        .where(MLModel.training_status == "training")
    )
    if model_ids is not None:
        query = query.where(MLModel.id.in_(list(model_ids)))
    result = await session.execute(query)
    return [(model, job) for model, job in result.all()]
