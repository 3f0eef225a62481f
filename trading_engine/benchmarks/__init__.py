"""Repeatable benchmarks behind ``trading-engine bench``; each prints one JSON object."""
