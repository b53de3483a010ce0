"""Guided call scripts: the format (model), the checker, the run engine and the library.

Pure Python, no UI: the console's player pane and the CLI are built on these.
"""
