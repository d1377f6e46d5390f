"""audiotok: turn speech corpora into discrete tokens with small composable commands."""

__version__ = "0.1.0"
