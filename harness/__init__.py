"""The one test and benchmark harness, shared by `tests/` and `load/` (and imported by nothing
else): settings for a server under test, users and tokens made over REST, throwaway databases,
`jacameno serve` as a subprocess, free ports, and waiting for a condition with a deadline.

Before it existed each of these was written three to five times, so that a change to login,
settings or project creation had to be made in every copy."""
