"""Load harness and benchmarks (`make bench`). Not run by the test suite."""
