"""The workspace search index."""
