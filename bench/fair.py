"""What the echo baseline borrows from carebot so that the comparison is fair: the sync filter
and the number of rooms the outbox sends to at once. Imported from carebot, not copied, so a
change there changes the baseline too."""

from bot.runtime.outbox import PARALLEL_ROOMS as OUTBOX_PARALLEL_ROOMS
from bot.runtime.runtime import SYNC_FILTER

__all__ = ["OUTBOX_PARALLEL_ROOMS", "SYNC_FILTER"]
