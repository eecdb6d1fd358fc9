"""Capture: fetch pages and their requisites and write them as WARC records."""
