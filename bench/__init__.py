"""Benchmarks: each prints its figure beside a comparison point measured in the same run."""
