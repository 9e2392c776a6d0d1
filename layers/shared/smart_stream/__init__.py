"""Smart Stream's shared layer: the domain, its ports (Storage, Catalog) and their adapters.

Handlers in ``functions/`` are glue; everything they do is here, so the local server and the
Lambda functions run the same code.
"""
