"""Security tests: a fuzz suite over the window's open path and an adversarial corpus of hostile files."""
