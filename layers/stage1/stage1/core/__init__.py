"""Cross-cutting pieces: settings, logging, errors, the app factory and the backing-service clients."""
