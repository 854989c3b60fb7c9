"""Tessera inside other frameworks: thin skins over the Python API, like the CLI and the service.

`tessera.integrations.langchain`: `TesseraRetriever` and `TesseraEmbeddings` for LangChain
(`pip install 'tessera[langchain]'`)."""
