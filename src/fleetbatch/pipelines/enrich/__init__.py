"""Enrichment pipeline: users enriched through a flaky HTTP API, with retries and fallbacks.

``service`` is a simulator of that API (a real HTTP server), ``client`` calls it with retries,
a TTL cache and fallback records, and ``output`` writes each chunk's results to one file.
"""
