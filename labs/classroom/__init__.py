"""A class run by an instructor: attendees' progress events, a class service, pacing, broadcasts.

UI-free, like the rest of ``labs``: ``protocol.py`` (what an event is, and what is refused),
``server.py`` (the class service, on aiohttp, state in SQLite), ``client.py`` (joining a class,
and the attendee's queue of events, which survives the service being away). The board that shows
it all is a front end (``workshop class board``).
"""
