"""Panels of the main window: inspector, weights tree, jobs, convert targets, and the model tab."""
