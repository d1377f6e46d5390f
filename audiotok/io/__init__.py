"""Keyed tables, audio decoding and output writers shared by every command."""
