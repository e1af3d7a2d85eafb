"""Live data to open browsers and API streams (DESIGN.md §5, §7, §18).

- `buffer.py`: one tag's recent readings, shared by all its viewers (resume without gaps).
- `fanout.py`: a tick's readings encoded once per audience, written to every viewer.
- `transport.py`: the server's own `send`, non-blocking writes, the live SSE response.
- `hub.py`: the fixed-rate feeds, stream lifecycle, credential checks, hooks for others.
- `grid.py`: the overview's card grids, one render per tick per tenant and locale.
"""
