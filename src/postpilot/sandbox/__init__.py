"""A separate HTTP server that speaks each supported platform's publishing contract, with latency,
rate limits, token expiry and fault injection, and records what it received. Demo, tests and
benchmarks publish to it; real accounts publish to the real APIs."""
