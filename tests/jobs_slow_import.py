"""Imported by a warm worker in the job tests: an import that takes long (the worker must still die
with its parent meanwhile)."""
import time

time.sleep(30)
