"""The embedded backend (the default): an index folder on this machine, searched by bm25s and numpy.
Part of `retrieval.stores`, under its rule."""
