"""Turning an outcome into words: the diagnosis (cause, remedy) and the rendered report."""
