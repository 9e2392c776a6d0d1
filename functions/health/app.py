"""Placeholder: the handler lands in the next commit."""
