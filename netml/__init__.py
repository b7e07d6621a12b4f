"""Compatibility facade for scripts written for the original netml 0.x."""
