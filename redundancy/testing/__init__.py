"""Public testing helpers: hypothesis strategies shared by the test suite and by users."""
