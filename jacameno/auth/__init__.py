"""Authentication: password hashing, access tokens (JWT) and refresh-token sessions."""
