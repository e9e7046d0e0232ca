"""The running bot, one responsibility per module; `CareBot` in runtime.py wires them."""

from bot.runtime.runtime import CareBot, install_signal_handlers

__all__ = ["CareBot", "install_signal_handlers"]
