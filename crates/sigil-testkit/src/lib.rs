//! Cluster fixtures for Sigil's tests.
