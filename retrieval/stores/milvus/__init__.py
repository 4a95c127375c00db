"""The Milvus backend: passages in a Milvus collection (Milvus Lite or a server), searched inside Milvus.
Part of `retrieval.stores`, under its rule."""
