"""The agent console: the aiohttp app (sign-in, tickets, transfers) and its static page."""
