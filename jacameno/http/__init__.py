"""The HTTP layer: errors, middleware, declared operations and the OpenAPI document."""
