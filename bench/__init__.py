"""Benchmarks for carebot against a throwaway Synapse (`make bench`)."""
