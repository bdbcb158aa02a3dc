"""Sync routes: trigger, refresh, operator actions (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["sync"])
