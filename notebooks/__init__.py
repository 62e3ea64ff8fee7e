"""The labs as Jupyter notebooks: generated from the same lab definitions (``generate.py``) and run
through an IPython extension (``magics.py``) that drives the same runner, checks and observers as
the TUI. Nothing here imports textual: notebooks are a front end of their own.
"""
