"""Tessera inside other frameworks: thin skins over the Python API, like the CLI and the service.

`tessera.integrations.langchain` (`pip install 'tessera[langchain]'`) and
`tessera.integrations.llama_index` (`pip install 'tessera[llama-index]'`): a retriever over one
index or several fused, Tessera's encoders as the framework's embeddings, and the framework's
vector store over one index directory (`store.IndexStore`)."""
