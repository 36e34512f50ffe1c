"""Real components that both the tests and the benchmarks start (a Ray cluster on this machine's loopback). Tests
and benchmarks import from here; nothing here imports either of them."""
