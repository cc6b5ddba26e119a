"""A Toxiproxy-compatible TCP fault proxy in asyncio: the harness's fallback server.

Same HTTP API (port 8474 style) and toxic semantics as Shopify's Toxiproxy 2.x, so that the
harness drives it with the ``toxiproxy-python`` client exactly as it would drive a real
``toxiproxy-server``. See docs/links.md for what is implemented and what differs.
"""
