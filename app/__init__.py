"""Tensorbridge desktop application."""
