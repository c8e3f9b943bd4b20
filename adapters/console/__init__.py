"""The local console: the same pipeline as the chat platforms, read and written in a terminal."""

from adapters.console.render import ConsoleAdapter, render_text

__all__ = ["ConsoleAdapter", "render_text"]
