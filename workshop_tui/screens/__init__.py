"""The workshop TUI's screens: home (the labs), lab (a step and the host-vs-container views), dialogs."""
