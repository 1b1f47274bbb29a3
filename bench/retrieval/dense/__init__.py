"""Dense retrieval: `encode` (DenseEncoder: our batching over sentence-transformers modules, prompts, precision),
`cache` (the on-disk embedding cache, torch-free: `bench cache` reads it), `backends` (int8 and ONNX beside the
fp32 reference), `search` (exact or FAISS top-k, full-pool scores) and `retriever` (DenseRetriever, what the
runner calls). Nothing is imported here, so `bench.retrieval.dense.cache` loads without torch."""
