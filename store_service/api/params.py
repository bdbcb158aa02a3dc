"""Path and query parameters shared by the routers, with the rules the schemas define."""

from typing import Annotated

from fastapi import Path, Query

from store_service.api.schemas import OPERATION_ID_PATTERN, SKU_PATTERN

SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, max_length=64, examples=["SKU-1001"])]
OperationIdPath = Annotated[
    str,
    Path(
        pattern=OPERATION_ID_PATTERN,
        max_length=128,
        examples=["6f1c2a52-3f0e-4d7e-9d6c-1b2a3c4d5e6f"],
    ),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
