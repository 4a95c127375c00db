"""Questions out: retrieval from the store, re-ranking by sentence, the sentence and span readers, the
no-answer decision and `Answer`. May import the foundation modules, `retrieval.models` and `retrieval.stores`."""
