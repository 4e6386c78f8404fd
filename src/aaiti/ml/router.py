"""/api/models: algorithms, CRUD, train (a job), versions, compare, predict, predictions. Owner-only: another
user's model answers 404. Viewers read their own models and change nothing (403)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from aaiti.auth.dependencies import CurrentUser, Trader
from aaiti.core.dependencies import Paging, ReadSession, UoW, audit_context
from aaiti.ml import service
from aaiti.ml.dependencies import ML
from aaiti.ml.schemas import (
    AlgorithmsOut,
    CompareIn,
    CompareOut,
    ModelCreate,
    ModelOut,
    ModelPage,
    ModelUpdate,
    PredictIn,
    PredictionOut,
    PredictionPage,
    PredictOut,
    TrainOut,
    VersionOut,
    VersionPage,
)

router = APIRouter(prefix="/api/models", tags=["models"])
StatusFilter = Annotated[Literal["untrained", "training", "trained", "failed"] | None, Query(alias="status")]


@router.get("/algorithms", response_model=AlgorithmsOut)
async def list_algorithms(_: CurrentUser) -> AlgorithmsOut:
    """Every algorithm with its parameters' JSON Schema, defaults and availability (with the reason)."""
    return service.algorithms()


@router.get("", response_model=ModelPage)
async def list_models(
    principal: CurrentUser, session: ReadSession, page: Paging, status_: StatusFilter = None
) -> ModelPage:
    items, total = await service.list_models(session, principal, limit=page.limit, offset=page.offset, status=status_)
    return ModelPage(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
async def create_model(body: ModelCreate, request: Request, principal: Trader, uow: UoW, ml: ML) -> ModelOut:
    model = await service.create_model(uow, ml, audit_context(request), principal, body)
    await uow.commit()
    return service.model_out(model, None)


@router.post("/compare", response_model=CompareOut)
async def compare_models(body: CompareIn, principal: CurrentUser, session: ReadSession) -> CompareOut:
    """Rank models trained on the same data and scored on the same test window (422 when they are not)."""
    return await service.compare(session, principal, body)


@router.get("/{model_id}", response_model=ModelOut)
async def get_model(model_id: uuid.UUID, principal: CurrentUser, session: ReadSession) -> ModelOut:
    return await service.model_detail(session, principal, model_id)


@router.patch("/{model_id}", response_model=ModelOut)
async def update_model(
    model_id: uuid.UUID, body: ModelUpdate, request: Request, principal: Trader, uow: UoW, ml: ML
) -> ModelOut:
    await service.update_model(uow, ml, audit_context(request), principal, model_id, body)
    await uow.commit()
    async with ml.core.db.read() as session:
        return await service.model_detail(session, principal, model_id)


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_model(model_id: uuid.UUID, request: Request, principal: Trader, uow: UoW, ml: ML) -> Response:
    await service.delete_model(uow, ml, audit_context(request), principal, model_id)
    await uow.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{model_id}/train", response_model=TrainOut, status_code=status.HTTP_202_ACCEPTED)
async def train_model(model_id: uuid.UUID, request: Request, principal: Trader, uow: UoW, ml: ML) -> TrainOut:
    """Queue a training job (progress on ``job:{id}``, ``model_trained`` in ``user:{id}`` when it ends).
    Cancel it with ``POST /api/jobs/{job_id}/cancel``."""
    job, model, version = await service.start_training(uow, ml, audit_context(request), principal, model_id)
    await uow.commit()
    ref = service.job_ref(job)
    assert ref is not None
    return TrainOut(job=ref, model=service.model_out(model, job), version=version)


@router.get("/{model_id}/versions", response_model=VersionPage)
async def list_versions(model_id: uuid.UUID, principal: CurrentUser, session: ReadSession, page: Paging) -> VersionPage:
    rows, total = await service.list_versions(session, principal, model_id, limit=page.limit, offset=page.offset)
    return VersionPage(
        items=[VersionOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/{model_id}/predict", response_model=PredictOut)
async def predict(
    model_id: uuid.UUID, request: Request, principal: Trader, uow: UoW, ml: ML, body: PredictIn | None = None
) -> PredictOut:
    """Forecast from the latest candle (or ``as_of``) with the latest version, verified by SHA-256."""
    row, resolved, live = await service.predict(
        uow, ml, audit_context(request), principal, model_id, body or PredictIn()
    )
    await uow.commit()
    return PredictOut(prediction=PredictionOut.model_validate(row), resolved=resolved, live=live)


@router.get("/{model_id}/predictions", response_model=PredictionPage)
async def list_predictions(
    model_id: uuid.UUID, principal: CurrentUser, session: ReadSession, page: Paging
) -> PredictionPage:
    rows, total = await service.list_predictions(session, principal, model_id, limit=page.limit, offset=page.offset)
    return PredictionPage(
        items=[PredictionOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )
