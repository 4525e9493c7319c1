"""Evaluation: zero-shot classification and retrieval for teachers, students and bundles."""
