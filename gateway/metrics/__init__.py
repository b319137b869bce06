"""The gateway's Prometheus metrics: their definitions (``registry.py``), the calls and screen-pops they follow
(``calls.py``, ``screenpops.py``), the page that serves them (``page.py``) and what ``hotline stack status`` reads
from it (``headline.py``). See docs/metrics.md."""
