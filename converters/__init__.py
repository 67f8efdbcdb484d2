"""Tensorbridge engine: formats, graph model, conversion, runners, comparison, jobs, CLI. No Qt here."""
