"""Tiny real models for the tests, built by the frameworks themselves (never mocked, never downloaded).

Each ``tests/models/<family>_models.py`` module defines ``MODELS = {"file name": builder}`` where
``builder(out_path: str) -> dict`` writes that file (or folder) and returns the facts the tests check
(inputs, outputs, node_count, param_count, …). All models of one module are built together in one
subprocess (one framework import), once per test session, and cached under ``tests/.cache/models``
keyed by the module's source hash. The pytest process itself never imports torch or TensorFlow for them.
"""
