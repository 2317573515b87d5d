"""Every saga the orchestrator runs. The recovery worker goes over the stale sagas of each kind listed here, and
FAILPOINTS may name any step boundary of them (docs/sagas.md)."""
from __future__ import annotations

from trcommon.saga import Saga

from .event_cancel import EVENT_CANCEL
from .purchase import PURCHASE
from .refunds import REFUND
from .transfers import CONFIRM, RELEASE, REVERSAL

SAGAS: tuple[Saga, ...] = (PURCHASE, REFUND, CONFIRM, REVERSAL, RELEASE, EVENT_CANCEL)
