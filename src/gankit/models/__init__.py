"""Model families, one room each; every one is a `gankit.engine.GenerativeModel`."""
