"""What the tests and the benchmarks share: the fake OpenAI server, network helpers, the simulated editor."""
