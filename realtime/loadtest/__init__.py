"""``manage.py loadtest``: N WebSocket clients × M events/s for T seconds.

The pieces: ``clients`` (worker processes holding the sockets and counting what they
receive), ``producer`` (changes through the public REST API at a fixed rate),
``bare_server`` (a bare ``websockets`` broadcast server, the Python practical limit),
``servers`` (starting daphne or the bare server), ``runner`` (one cell of the grid and
the search for the highest sustainable rate). docs/BENCHMARKS.md has the results.
"""
