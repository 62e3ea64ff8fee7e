"""The workshop's labs: a lab is a folder of text and a small file of logic.

    labs/03-uts/
        lab.toml          logic: minutes, prerequisites, steps (observe, setup, checks, solution)
        intro.md          text: title and goal (front matter), then the introduction
        steps/NAME.md     text: one per step; commands in ```run blocks; hints under "## Hints"
        finish.md         text: what the learner has seen
        i18n/LANG/...     the same text files, translated (optional)

This package reads labs (``loader``), checks them (``lint``), checks a learner's end state
(``checks``) and drives a lab from start to finish (``runner``, progress in ``progress``). It has
no user interface: the ``workshop`` command, the TUI and the notebooks all use it.
"""

from __future__ import annotations

import os

LABS_DIR = os.path.dirname(os.path.abspath(__file__))
