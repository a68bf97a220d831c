"""The durable-work tables an instance runs, gathered from the packages that define them.

Each provider is ``"module:function"``; the function takes the settings and returns machines.
Providers are imported lazily so that the web process never imports the render pipeline: a
render machine's module imports torch only inside its handlers.
"""

from __future__ import annotations

import importlib
from datetime import timedelta

from fedisora.config import Settings
from fedisora.work.engine import Engine, Machine

__all__ = ["PROVIDERS", "build_engine", "build_machines"]

# Filled as capabilities land: the render queue, deliveries, the inbox, consent revocations.
PROVIDERS: list[str] = [
    "render.queue:machines",
    "render.model_pulls:machines",
    "fedisora.federation.inbox:machines",
    "fedisora.federation.delivery:machines",
    "fedisora.federation.media_check:machines",
    "fedisora.federation.quote_verify:machines",
    "fedisora.federation.cameo_verify:machines",
    "fedisora.work.housekeeping:machines",
    "fedisora.services.outbox:machines",
    "fedisora.services.mail:machines",
    "fedisora.for_you.candidates:machines",
    "fedisora.services.fingerprints:machines",
]


def build_machines(settings: Settings, providers: list[str] | None = None) -> list[Machine]:
    machines: list[Machine] = []
    for provider in PROVIDERS if providers is None else providers:
        module_name, _, func_name = provider.partition(":")
        module = importlib.import_module(module_name)
        machines.extend(getattr(module, func_name)(settings))
    return machines


def build_engine(settings: Settings, providers: list[str] | None = None) -> Engine:
    return Engine(
        build_machines(settings, providers),
        lease=timedelta(seconds=settings.worker_lease_seconds),
        context={"settings": settings},
    )
