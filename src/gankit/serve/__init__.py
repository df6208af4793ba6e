"""`gankit serve`: a secure real-time service for generation, imputation and synthesis.

Needs the `serve` extra (fastapi, uvicorn, prometheus-client). `create_app` builds the FastAPI
app; `gankit serve MODEL_DIR ...` runs it under uvicorn.
"""

from __future__ import annotations

from gankit.serve.app import ServeOptions, create_app
from gankit.serve.auth import KeyStore, add_key
from gankit.serve.batching import BatchConfig
from gankit.serve.limits import Limits

__all__ = ["BatchConfig", "KeyStore", "Limits", "ServeOptions", "add_key", "create_app"]
