"""Headless Debian Chromium on a machine with no network, for the screenshot tools.

Without the background-networking flags it stalls on refused connections (the BRIEF).
"""

OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
