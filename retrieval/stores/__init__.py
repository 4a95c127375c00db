"""Where passages live: the `PassageStore` seam, the embedded index folder and Milvus, each with its
retrievers. May import the foundation modules and `retrieval.models`; knows nothing of ingest or answering."""
