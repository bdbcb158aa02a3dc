"""Path and query parameters shared by the routers, with the domain's input rules."""

from typing import Annotated

from fastapi import Path, Query

from store_service.domain import (
    OPERATION_ID_MAX_LENGTH,
    OPERATION_ID_PATTERN,
    SKU_MAX_LENGTH,
    SKU_PATTERN,
)

SkuPath = Annotated[
    str, Path(pattern=SKU_PATTERN, max_length=SKU_MAX_LENGTH, examples=["SKU-1001"])
]
SkuQuery = Annotated[str | None, Query(pattern=SKU_PATTERN, max_length=SKU_MAX_LENGTH)]
OperationIdPath = Annotated[
    str,
    Path(
        pattern=OPERATION_ID_PATTERN,
        max_length=OPERATION_ID_MAX_LENGTH,
        examples=["6f1c2a52-3f0e-4d7e-9d6c-1b2a3c4d5e6f"],
    ),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
