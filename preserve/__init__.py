"""preserve: archival ingest and preservation of web pages.

Capture pages into WARC 1.1 files, describe them, store them in object storage
with verified digests, catalogue them, retrieve them and audit their fixity.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
