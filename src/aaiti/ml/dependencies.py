"""FastAPI dependencies of /api/models."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aaiti.core.errors import Unavailable
from aaiti.ml.service import MLRuntime


async def get_ml_runtime(request: Request) -> MLRuntime:
    runtime: MLRuntime | None = getattr(request.app.state, "ml", None)
    if runtime is None:
        raise Unavailable("the models service is not running")
    return runtime


ML = Annotated[MLRuntime, Depends(get_ml_runtime)]
