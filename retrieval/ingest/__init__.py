"""Articles in: files, web pages and feeds become Haystack Documents, split into sentence passages and
written to a passage store. May import the foundation modules, `retrieval.models` and `retrieval.stores`."""
